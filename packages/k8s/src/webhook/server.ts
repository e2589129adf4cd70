// The webhook's HTTPS server (/convert), on the certificates certs.ts makes. The certificate can
// be swapped while serving (rotation): new connections get the new one.
import https from 'node:https';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { convertReview, type ConversionReview } from './conversion.ts';
import type { ServingCerts } from './certs.ts';

const MAX_BODY = 32 * 1024 * 1024;

export interface WebhookServer {
  port: number;
  setCerts(c: ServingCerts): void;
  close(): Promise<void>;
}

export async function serveWebhook(
  certs: ServingCerts,
  opts: { host?: string; port: number; templateOfPool?: (ns: string, pool: string) => string | undefined },
): Promise<WebhookServer> {
  let context = tls.createSecureContext({ cert: certs.certPem, key: certs.keyPem });
  const server = https.createServer(
    { SNICallback: (_name, cb) => cb(null, context), cert: certs.certPem, key: certs.keyPem },
    (req, res) => {
      const reply = (status: number, body: unknown) => {
        const t = JSON.stringify(body);
        res.writeHead(status, { 'content-type': 'application/json' }).end(t);
      };
      if (req.method === 'GET' && req.url === '/healthz') return reply(200, { status: 'ok' });
      if (req.method !== 'POST' || !req.url?.startsWith('/convert'))
        return reply(404, { message: 'the conversion webhook serves POST /convert' });
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_BODY) {
          reply(413, { message: 'ConversionReview too large' });
          req.destroy();
        } else chunks.push(c);
      });
      req.on('end', () => {
        if (res.headersSent) return;
        let review: ConversionReview;
        try {
          review = JSON.parse(Buffer.concat(chunks).toString('utf8')) as ConversionReview;
        } catch {
          return reply(400, { message: 'the body is not JSON' });
        }
        try {
          reply(200, convertReview(review, opts.templateOfPool));
        } catch (err) {
          reply(400, { message: (err as Error).message });
        }
      });
    },
  );
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host ?? '0.0.0.0', resolve);
  });
  return {
    port: (server.address() as AddressInfo).port,
    setCerts(c) {
      context = tls.createSecureContext({ cert: c.certPem, key: c.keyPem });
      server.setSecureContext({ cert: c.certPem, key: c.keyPem });
    },
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
