// The egress proxy: where a sandbox's connections to ports 80 and 443 go when its template has an
// allow-list of names or credentials (the firewall sends them here, nft.ts). Each connection is
// judged by the name the sandbox actually uses (TLS SNI on 443, the Host header of each request
// on 80), then by where that name leads (the engine resolves it itself, and the address must pass
// the template's rules: a public name that resolves to a private address is refused). Allowed TLS
// passes through untouched, but for a destination with a credential: there the proxy terminates
// TLS with the engine CA's certificate for that name, adds the header, and speaks TLS to the real
// destination. Plain HTTP to a credential's destination leaves the engine as HTTPS. The secret is
// masked wherever it comes back in a response. Every connection is logged with its verdict.
import { Duplex, Transform, type TransformCallback } from 'node:stream';
import { promises as dns } from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import type { Logger } from 'pino';
import type { EngineCa } from './engine-ca.ts';
import { headerValue, secretValue } from './credentials.ts';
import { addressAllowed, nameAllowed, type EgressPolicy } from './policy.ts';
import { MAX_HELLO_BYTES, parseClientHello } from './tls-hello.ts';
import type { Upstream } from './dns.ts';

type Egress = Extract<EgressPolicy, { kind: 'egress' }>;

/** Who is behind a sandbox address, and what it may reach. */
export interface ProxiedSandbox {
  namespace: string;
  name: string;
  policy: Egress;
}

export interface ProxyVerdict {
  sandbox?: string;
  namespace?: string;
  host: string;
  port: number;
  via: 'tls' | 'http' | 'credential';
  verdict: 'allowed' | 'refused';
  reason?: string;
  address?: string;
}

export interface EgressProxyOptions {
  address: string;
  upstream: Upstream[];
  /** The sandbox at a source address (undefined: none that goes through the proxy). */
  sandboxAt: (address: string) => ProxiedSandbox | undefined;
  ca: () => Promise<EngineCa>;
  /** Where secrets are read ($ASB_HOME). */
  home: string;
  /** Extra roots the proxy trusts for destinations (ASB_EGRESS_CA_FILE), beside the system's. */
  upstreamCa?: string;
  onConnection: (v: ProxyVerdict) => void;
  log: Logger;
}

/** Connections (and requests in flight) one sandbox may have open through the proxy at once
 *  (LIMITS.md): each holds two sockets of the engine's. */
export const MAX_PROXIED_PER_SANDBOX = 256;

/** A ClientHello that has not come within this long is not coming. */
const HELLO_TIMEOUT_MS = 10_000;
/** TLS alert: fatal, unrecognized_name (what a server says to a name it does not serve). */
const ALERT_UNRECOGNIZED_NAME = Buffer.from([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x70]);

class Refused extends Error {}

export class EgressProxy {
  private tlsServer?: net.Server;
  private httpServer?: http.Server;
  /** Serves the requests of TLS connections it terminated (credential destinations). */
  private readonly credentialServer: http.Server;
  private readonly resolver = new dns.Resolver({ timeout: 3000, tries: 2 });
  /** Kept-alive connections to destinations, reused across requests (each request is judged). */
  private readonly agents = { http: new http.Agent({ keepAlive: true }), https: new https.Agent({ keepAlive: true }) };
  private readonly ca?: string[];
  /** Open connections per sandbox address (MAX_PROXIED_PER_SANDBOX). */
  private readonly open = new Map<string, number>();
  /** The connections it terminated: from which sandbox address, for which name. */
  private readonly terminated = new WeakMap<net.Socket, { from: string; serverName: string }>();
  ports = { http: 0, tls: 0 };

  constructor(private readonly o: EgressProxyOptions) {
    if (o.upstream.length) this.resolver.setServers(o.upstream.map((u) => `${u.host}:${u.port}`));
    this.ca = o.upstreamCa ? [...tls.rootCertificates, o.upstreamCa] : undefined;
    this.credentialServer = http.createServer((req, res) => void this.forward(req, res, 'credential'));
  }

  async listen(): Promise<{ http: number; tls: number }> {
    this.tlsServer = net.createServer((s) => this.acceptTls(s));
    this.httpServer = http.createServer((req, res) => void this.forward(req, res, 'http'));
    this.httpServer.on('connection', (s: net.Socket) => void this.admit(s));
    this.httpServer.on('upgrade', (req, socket, head) => void this.upgrade(req, socket as net.Socket, head));
    const listen = (server: net.Server) =>
      new Promise<number>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, this.o.address, () => resolve((server.address() as net.AddressInfo).port));
      });
    this.ports = { http: await listen(this.httpServer), tls: await listen(this.tlsServer) };
    return this.ports;
  }

  close(): void {
    this.agents.http.destroy();
    this.agents.https.destroy();
    this.tlsServer?.close();
    this.httpServer?.close();
    this.httpServer?.closeAllConnections();
  }

  /** Counts a new connection from a sandbox; false (and it is closed) past the limit. */
  private admit(socket: net.Socket): boolean {
    const from = socket.remoteAddress ?? '';
    const n = (this.open.get(from) ?? 0) + 1;
    if (n > MAX_PROXIED_PER_SANDBOX) {
      const who = this.o.sandboxAt(from);
      this.o.onConnection({
        sandbox: who?.name,
        namespace: who?.namespace,
        host: '',
        port: socket.localPort ?? 0,
        via: 'tls',
        verdict: 'refused',
        reason: `more than ${MAX_PROXIED_PER_SANDBOX} connections open through the proxy`,
      });
      socket.destroy();
      return false;
    }
    this.open.set(from, n);
    socket.once('close', () => {
      const left = (this.open.get(from) ?? 1) - 1;
      if (left > 0) this.open.set(from, left);
      else this.open.delete(from);
    });
    return true;
  }

  /** The first bytes of a TLS connection: its name, judged, then passed through or terminated. */
  private acceptTls(socket: net.Socket): void {
    if (!this.admit(socket)) return;
    let buf = Buffer.alloc(0);
    socket.on('error', () => undefined);
    socket.setTimeout(HELLO_TIMEOUT_MS, () => socket.destroy());
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      const hello = parseClientHello(buf.subarray(0, MAX_HELLO_BYTES));
      if (hello.kind === 'incomplete') return;
      socket.off('data', onData);
      socket.pause();
      socket.setTimeout(0);
      void this.routeTls(socket, buf, hello.kind === 'hello' ? hello.serverName : undefined);
    };
    socket.on('data', onData);
  }

  private async routeTls(socket: net.Socket, hello: Buffer, serverName: string | undefined): Promise<void> {
    const who = this.o.sandboxAt(socket.remoteAddress ?? '');
    const base = { sandbox: who?.name, namespace: who?.namespace, host: serverName ?? '', port: 443 };
    try {
      if (!who) throw new Refused('not a sandbox that goes through the proxy');
      if (!serverName) throw new Refused('no server name (SNI) in the TLS hello');
      const credential = who.policy.proxy!.credentials.find((c) => c.host === serverName);
      const address = await this.judge(who, serverName, 443);
      if (credential) {
        // Terminated here: the requests get the header (forward), then go out over TLS.
        this.o.onConnection({ ...base, via: 'credential', verdict: 'allowed', address });
        const context = await (await this.o.ca()).contextFor(serverName);
        // (Through a stream that gives the hello back first: TLS on the socket's own handle would
        // read past what was already taken from it.)
        const secure = new tls.TLSSocket(replaying(socket, hello), { isServer: true, secureContext: context });
        secure.on('error', () => socket.destroy());
        this.terminated.set(secure, { from: socket.remoteAddress ?? '', serverName });
        this.credentialServer.emit('connection', secure);
        return;
      }
      this.o.onConnection({ ...base, via: 'tls', verdict: 'allowed', address });
      const upstream = net.connect(443, address);
      upstream.on('error', () => socket.destroy());
      socket.on('error', () => upstream.destroy());
      upstream.once('connect', () => {
        upstream.write(hello);
        socket.pipe(upstream).pipe(socket);
        socket.resume();
      });
    } catch (err) {
      this.o.onConnection({ ...base, via: 'tls', verdict: 'refused', reason: (err as Error).message });
      socket.end(ALERT_UNRECOGNIZED_NAME);
    }
  }

  /** Allowed by name, resolved by the engine, and the address allowed by the rules: the address. */
  private async judge(who: ProxiedSandbox, host: string, port: number): Promise<string> {
    if (!nameAllowed(who.policy.proxy!, host))
      throw new Refused(`${host} is not on the allow-list of template ${who.policy.template}`);
    let addresses: string[];
    if (net.isIPv4(host)) addresses = [host];
    else {
      try {
        addresses = await this.resolver.resolve4(host);
      } catch (err) {
        throw new Refused(`${host} does not resolve (${(err as NodeJS.ErrnoException).code})`);
      }
    }
    const address = addresses.find((a) => addressAllowed(who.policy.rules, a, port));
    if (!address)
      throw new Refused(`${host} resolves to ${addresses.join(', ')}, which the template's rules do not allow`);
    return address;
  }

  /** One HTTP request (plain, or from a terminated TLS connection), judged by its Host. */
  private async forward(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    via: 'http' | 'credential',
  ): Promise<void> {
    const opened = via === 'credential' ? this.terminated.get(req.socket) : undefined;
    const from = opened ? opened.from : req.socket.remoteAddress;
    const who = this.o.sandboxAt(from ?? '');
    const host = hostOf(req.headers.host) ?? '';
    const base = { sandbox: who?.name, namespace: who?.namespace, host, port: via === 'credential' ? 443 : 80 };
    try {
      if (!who) throw new Refused('not a sandbox that goes through the proxy');
      if (!host) throw new Refused('no Host header');
      // A terminated connection serves the name it was opened for, and no other.
      if (via === 'credential' && opened?.serverName !== host)
        throw new Refused(`Host ${host} on a connection opened for ${opened?.serverName}`);
      const credential = who.policy.proxy!.credentials.find((c) => c.host === host);
      // A credential's destination is reached over TLS whatever the sandbox spoke.
      const secure = credential !== undefined;
      const address = await this.judge(who, host, secure ? 443 : 80);
      const headers = { ...req.headers };
      let secret: string | undefined;
      if (credential) {
        secret = secretValue(this.o.home, who.namespace, credential);
        headers[credential.header.toLowerCase()] = headerValue(credential, secret);
        // The response is read for the secret: it must come uncompressed.
        headers['accept-encoding'] = 'identity';
      }
      if (via === 'http')
        this.o.onConnection({ ...base, via: credential ? 'credential' : 'http', verdict: 'allowed', address });
      const options = {
        host: address,
        port: secure ? 443 : 80,
        method: req.method,
        path: req.url,
        headers,
        servername: secure ? host : undefined,
        ca: this.ca,
        agent: secure ? this.agents.https : this.agents.http,
      };
      const upstream = (secure ? https : http).request(options, (up) => {
        const out = secret ? redactor(secret) : undefined;
        const upHeaders = out ? maskHeaders(up.headers, secret!) : up.headers;
        res.writeHead(up.statusCode ?? 502, upHeaders);
        (out ? up.pipe(out) : up).pipe(res);
      });
      upstream.on('error', (err) => {
        this.o.log.warn({ ...base, err: err.message }, 'egress upstream error');
        if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
        res.end(`asb egress: ${host}: ${err.message}\n`);
      });
      req.pipe(upstream);
    } catch (err) {
      const reason = (err as Error).message;
      this.o.onConnection({ ...base, via, verdict: 'refused', reason });
      if (!(err instanceof Refused)) this.o.log.warn({ ...base, err: reason }, 'egress proxy error');
      res.writeHead(err instanceof Refused ? 403 : 502, { 'content-type': 'text/plain' });
      res.end(`asb egress: ${reason}\n`);
    }
  }

  /** An upgrade (WebSocket) on port 80: judged by its Host, then the bytes pass through. */
  private async upgrade(req: http.IncomingMessage, socket: net.Socket, head: Buffer): Promise<void> {
    const who = this.o.sandboxAt(socket.remoteAddress ?? '');
    const host = hostOf(req.headers.host) ?? '';
    const base = { sandbox: who?.name, namespace: who?.namespace, host, port: 80, via: 'http' as const };
    socket.on('error', () => undefined);
    try {
      if (!who) throw new Refused('not a sandbox that goes through the proxy');
      if (who.policy.proxy!.credentials.some((c) => c.host === host))
        throw new Refused(`${host} gets a credential: upgrades to it are not proxied`);
      const address = await this.judge(who, host, 80);
      this.o.onConnection({ ...base, verdict: 'allowed', address });
      const upstream = net.connect(80, address, () => {
        const lines = [`${req.method} ${req.url} HTTP/${req.httpVersion}`];
        for (let i = 0; i < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
        upstream.write(`${lines.join('\r\n')}\r\n\r\n`);
        if (head.length) upstream.write(head);
        socket.pipe(upstream).pipe(socket);
      });
      upstream.on('error', () => socket.destroy());
    } catch (err) {
      this.o.onConnection({ ...base, verdict: 'refused', reason: (err as Error).message });
      socket.end(
        `HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\nasb egress: ${(err as Error).message}\n`,
      );
    }
  }
}

/** The socket as a stream that first yields `head` (bytes already read from it), then the rest. */
function replaying(socket: net.Socket, head: Buffer): Duplex {
  const d = new Duplex({
    read: () => void socket.resume(),
    write: (chunk: Buffer, _enc, done) => void socket.write(chunk, done),
    final: (done) => {
      socket.end();
      done();
    },
    destroy: (err, done) => {
      socket.destroy();
      done(err);
    },
  });
  d.push(head);
  socket.on('data', (c: Buffer) => {
    if (!d.push(c)) socket.pause();
  });
  socket.on('end', () => d.push(null));
  socket.on('close', () => d.destroy());
  socket.resume();
  return d;
}

function hostOf(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const h = header.startsWith('[') ? header.slice(0, header.indexOf(']') + 1) : header.split(':')[0]!;
  return h.toLowerCase().replace(/\.$/, '') || undefined;
}

function maskHeaders(headers: http.IncomingHttpHeaders, secret: string): http.IncomingHttpHeaders {
  const mask = '*'.repeat(secret.length);
  const out: http.IncomingHttpHeaders = {};
  for (const [k, v] of Object.entries(headers)) {
    out[k] = Array.isArray(v) ? v.map((x) => x.replaceAll(secret, mask)) : v?.replaceAll(secret, mask);
  }
  return out;
}

/** A stream that replaces every occurrence of the secret by as many '*' (the length stays, and
 *  so does a Content-Length), across chunk boundaries. */
function redactor(secret: string): Transform {
  const needle = Buffer.from(secret);
  const mask = Buffer.alloc(needle.length, '*');
  let tail = Buffer.alloc(0);
  const scrub = (b: Buffer) => {
    for (let i = b.indexOf(needle); i !== -1; i = b.indexOf(needle, i + needle.length)) mask.copy(b, i);
    return b;
  };
  return new Transform({
    transform(chunk: Buffer, _enc, done: TransformCallback) {
      const b = scrub(Buffer.concat([tail, chunk]));
      // The last needle-1 bytes may begin an occurrence that the next chunk completes.
      const keep = Math.min(b.length, needle.length - 1);
      tail = Buffer.from(b.subarray(b.length - keep));
      done(null, b.subarray(0, b.length - keep));
    },
    flush(done: TransformCallback) {
      done(null, scrub(tail));
    },
  });
}
