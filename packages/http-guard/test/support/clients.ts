// Hostile HTTP clients over raw sockets, for the hostile-client suites of the engine, the router
// and the MCP server: a body far over any cap (with Content-Length, or chunked), a header block
// over the size limit, headers that never end (slowloris), a body that stops arriving. Each
// resolves with what the server answered and when it closed the connection.
import http from 'node:http';
import net from 'node:net';
import { readFileSync } from 'node:fs';

export interface RawAnswer {
  /** 0 when the server closed without answering. */
  status: number;
  headers: Record<string, string>;
  body: string;
  /** From the first byte sent to the server's close. */
  closedAfterMs: number;
  /** Body bytes the client got to send before the server answered or closed. */
  bodyBytesSent: number;
}

function parse(raw: Buffer): Pick<RawAnswer, 'status' | 'headers' | 'body'> {
  const text = raw.toString('latin1');
  const end = text.indexOf('\r\n\r\n');
  const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
  if (!m || end < 0) return { status: 0, headers: {}, body: text };
  const headers: Record<string, string> = {};
  for (const line of text.slice(0, end).split('\r\n').slice(1)) {
    const i = line.indexOf(':');
    headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  return { status: Number(m[1]), headers, body: Buffer.from(text.slice(end + 4), 'latin1').toString('utf8') };
}

interface Script {
  /** Sent at once: the request line and headers (and whatever else). */
  head: string;
  /** Called once the head is sent; return a function that stops sending. */
  then?: (socket: net.Socket, sent: (n: number) => void) => (() => void) | void;
  /** Give up (and report status 0) after this long: a server that never closes fails the test. */
  giveUpMs?: number;
}

export function rawExchange(url: string, script: Script): Promise<RawAnswer> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const t0 = Date.now();
    const chunks: Buffer[] = [];
    let bodyBytesSent = 0;
    let stop: (() => void) | void;
    const socket = net.connect(Number(port), hostname.replace(/^\[|\]$/g, ''));
    const giveUp = setTimeout(() => socket.destroy(), script.giveUpMs ?? 120_000);
    socket.on('connect', () => {
      socket.write(script.head);
      stop = script.then?.(socket, (n) => {
        bodyBytesSent += n;
      });
    });
    socket.on('data', (d) => chunks.push(d));
    socket.on('error', () => {
      /* a reset ends it as a close does */
    });
    socket.on('close', () => {
      clearTimeout(giveUp);
      stop?.();
      resolve({ ...parse(Buffer.concat(chunks)), closedAfterMs: Date.now() - t0, bodyBytesSent });
    });
  });
}

const head = (method: string, path: string, headers: Record<string, string>) =>
  `${method} ${path} HTTP/1.1\r\nhost: localhost\r\n${Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('')}\r\n`;

/** Streams zeros (as fast as the server takes them) until the server answers or closes. */
export function oversizedBody(
  url: string,
  opts: { method?: string; path: string; headers?: Record<string, string>; totalBytes: number; chunked: boolean },
): Promise<RawAnswer> {
  const headers = {
    'content-type': 'application/json',
    ...opts.headers,
    ...(opts.chunked ? { 'transfer-encoding': 'chunked' } : { 'content-length': String(opts.totalBytes) }),
  };
  return rawExchange(url, {
    head: head(opts.method ?? 'POST', opts.path, headers),
    then: (socket, sent) => {
      const block = Buffer.alloc(256 * 1024, 0x61);
      const frame = opts.chunked
        ? Buffer.concat([Buffer.from(`${block.length.toString(16)}\r\n`), block, Buffer.from('\r\n')])
        : block;
      let total = 0;
      let answered = false;
      socket.once('data', () => {
        answered = true;
      });
      const pump = () => {
        while (!answered && total < opts.totalBytes && !socket.destroyed) {
          total += block.length;
          sent(block.length);
          if (!socket.write(frame)) {
            socket.once('drain', pump);
            return;
          }
        }
        if (!answered && total >= opts.totalBytes && opts.chunked && !socket.destroyed) socket.write('0\r\n\r\n');
      };
      pump();
    },
  });
}

/** One header line of `bytes` bytes. */
export function oversizedHeader(
  url: string,
  opts: { path: string; bytes: number; headers?: Record<string, string> },
): Promise<RawAnswer> {
  return rawExchange(url, { head: head('GET', opts.path, { ...opts.headers, 'x-padding': 'a'.repeat(opts.bytes) }) });
}

/** Slowloris: a header line every `everyMs`, and never the blank line that ends them. */
export function endlessHeaders(url: string, opts: { everyMs: number; giveUpMs?: number }): Promise<RawAnswer> {
  return rawExchange(url, {
    head: 'GET /healthz HTTP/1.1\r\nhost: localhost\r\n',
    giveUpMs: opts.giveUpMs,
    then: (socket) => {
      let i = 0;
      const timer = setInterval(() => {
        if (!socket.destroyed) socket.write(`x-slow-${i++}: 1\r\n`);
      }, opts.everyMs);
      return () => clearInterval(timer);
    },
  });
}

/** Headers, then `sendBytes` of a body that declares more (or is chunked), then silence. */
export function stalledBody(
  url: string,
  opts: {
    method?: string;
    path: string;
    headers?: Record<string, string>;
    sendBytes: number;
    chunked?: boolean;
    giveUpMs?: number;
  },
): Promise<RawAnswer> {
  const headers = {
    'content-type': 'application/json',
    ...opts.headers,
    ...(opts.chunked ? { 'transfer-encoding': 'chunked' } : { 'content-length': String(opts.sendBytes + 1_000_000) }),
  };
  return rawExchange(url, {
    head: head(opts.method ?? 'POST', opts.path, headers),
    giveUpMs: opts.giveUpMs,
    then: (socket, sent) => {
      const body = Buffer.alloc(opts.sendBytes, 0x61);
      socket.write(
        opts.chunked
          ? Buffer.concat([Buffer.from(`${body.length.toString(16)}\r\n`), body, Buffer.from('\r\n')])
          : body,
      );
      sent(body.length);
    },
  });
}

/** A body that keeps flowing slowly: `chunkBytes` every `everyMs`, `chunks` times, then its end. */
export function tricklingBody(
  url: string,
  opts: {
    method?: string;
    path: string;
    headers?: Record<string, string>;
    chunkBytes: number;
    everyMs: number;
    chunks: number;
  },
): Promise<RawAnswer> {
  const total = opts.chunkBytes * opts.chunks;
  return rawExchange(url, {
    head: head(opts.method ?? 'POST', opts.path, {
      'content-type': 'application/json',
      ...opts.headers,
      'content-length': String(total),
      connection: 'close',
    }),
    then: (socket, sent) => {
      let n = 0;
      const timer = setInterval(() => {
        if (socket.destroyed || n >= opts.chunks) {
          clearInterval(timer);
          return;
        }
        // A JSON string, so that a route that parses it can: '"aaaa…a"'.
        const chunk = Buffer.alloc(opts.chunkBytes, 0x61);
        if (n === 0) chunk[0] = 0x22;
        if (n === opts.chunks - 1) chunk[chunk.length - 1] = 0x22;
        socket.write(chunk);
        sent(chunk.length);
        n++;
      }, opts.everyMs);
      return () => clearInterval(timer);
    },
  });
}

/** Resident memory of a process, bytes (Linux). */
export function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) * 1024;
}

export const MiB = 1024 * 1024;

/** A TCP connection to `port` on loopback, once connected. */
export function connected(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => resolve(socket));
    socket.on('error', () => undefined); // a dropped connection may be reset
    socket.once('error', reject);
  });
}

/** A POST declaring `declared` bytes that sends `first` of them, then the rest on finish(). */
export function partialBody(url: string, declared: number, first: number, headers: Record<string, string> = {}) {
  const { hostname, port, pathname } = new URL(url);
  const req = http.request({
    host: hostname,
    port,
    method: 'POST',
    path: pathname,
    headers: { ...headers, 'content-length': String(declared) },
  });
  const answer = new Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }>((resolve, reject) => {
    req.on('response', (res) => {
      let body = '';
      res.on('data', (d) => {
        body += d;
      });
      res.on('end', () => resolve({ status: res.statusCode!, body, headers: res.headers }));
    });
    req.on('error', reject);
  });
  const sent = new Promise<void>((resolve) => req.write(Buffer.alloc(first), () => setTimeout(resolve, 200)));
  return { sent, answer, finish: () => req.end(Buffer.alloc(declared - first)) };
}

/** Sends `request` on `socket`: true once any answer arrives, false when the server closes the
 *  connection without one (as it does to connections past its limit). */
export function answers(socket: net.Socket, request = 'GET / HTTP/1.1\r\nhost: x\r\n\r\n'): Promise<boolean> {
  return new Promise((resolve) => {
    socket.once('data', () => resolve(true));
    socket.once('close', () => resolve(false));
    socket.write(request);
  });
}
