// Run inside the mini internet's network namespace (mini-internet.ts starts it there): a DNS server
// for the test names, and HTTP servers on the test addresses that answer with what they saw
// (their own address, the Host header, the headers, the client's address). Prints "ready" when
// every socket listens. Config: the JSON of MINI_INTERNET (see mini-internet.ts).
import dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { join } from 'node:path';
import dnsPacket from 'dns-packet';

interface Config {
  dns: string;
  zone: Record<string, string>;
  http: Array<{ address: string; port: number; tls?: boolean }>;
  /** The servers' certificate (every test name) and key. */
  cert: string;
  key: string;
  /** Served at /simple/ and /packages/ (a PyPI simple index). */
  index: string;
}
const config = JSON.parse(process.env.MINI_INTERNET!) as Config;

const udp = dgram.createSocket('udp4');
udp.on('message', (msg, rinfo) => {
  const q = dnsPacket.decode(msg);
  const question = q.questions?.[0];
  const name = question?.name.toLowerCase() ?? '';
  const address = config.zone[name];
  const answers =
    address && question?.type === 'A' ? [{ type: 'A' as const, name: question.name, ttl: 5, data: address }] : [];
  const reply = dnsPacket.encode({
    type: 'response',
    id: q.id,
    flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE | (address ? 0 : 3),
    questions: q.questions,
    answers,
  });
  udp.send(reply, rinfo.port, rinfo.address);
});

/** What each server saw last (GET /__last from the host: the credential tests' upstream view). */
const last = new Map<string, unknown>();

const servers = config.http.map(
  ({ address, port, tls }) =>
    new Promise<void>((resolve) => {
      const key = `${address}:${port}`;
      const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          if (req.url === '/__last') {
            res.setHeader('content-type', 'application/json');
            return res.end(JSON.stringify(last.get(key) ?? null));
          }
          if (req.url?.startsWith('/simple/') || req.url?.startsWith('/packages/')) {
            // The index: a directory, index.html for directories.
            const path = join(config.index, decodeURIComponent(req.url.split('?')[0]!));
            try {
              const body = readFileSync(path.endsWith('/') ? join(path, 'index.html') : path);
              res.writeHead(200, { 'content-type': path.endsWith('/') ? 'text/html' : 'application/octet-stream' });
              return res.end(body);
            } catch {
              res.writeHead(404);
              return res.end('not found\n');
            }
          }
          if (req.url?.startsWith('/bytes/')) {
            // A download of N bytes, for throughput.
            const n = Number(req.url.slice('/bytes/'.length));
            res.writeHead(200, { 'content-length': n, 'content-type': 'application/octet-stream' });
            const chunk = Buffer.alloc(Math.min(n, 1 << 20), 120);
            let left = n;
            const pump = () => {
              while (left > 0) {
                const part = left >= chunk.length ? chunk : chunk.subarray(0, left);
                left -= part.length;
                if (!res.write(part)) return void res.once('drain', pump);
              }
              res.end();
            };
            return pump();
          }
          const seen = {
            server: key,
            tls: tls === true,
            host: req.headers.host,
            path: req.url,
            headers: req.headers,
            client: req.socket.remoteAddress,
            body: Buffer.concat(chunks).toString(),
          };
          last.set(key, seen);
          res.setHeader('content-type', 'application/json');
          res.end(JSON.stringify(seen));
        });
      };
      const server = tls
        ? https.createServer({ cert: readFileSync(config.cert), key: readFileSync(config.key) }, handler)
        : http.createServer(handler);
      server.listen(port, address, () => resolve());
    }),
);

udp.bind(53, config.dns, () => {
  void Promise.all(servers).then(() => process.stdout.write('ready\n'));
});
