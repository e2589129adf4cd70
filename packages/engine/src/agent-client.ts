// The engine's side of the agent connection: an HTTP/2 session over the socketpair that is the
// agent's fd 0. Requests to the sandbox's runtime API are multiplexed over it as streams.
import http2 from 'node:http2';
import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import type { z } from 'zod';
import { parseReply } from '@asb/runtime/replies';

export interface AgentResponse {
  status: number;
  headers: http2.IncomingHttpHeaders;
  body: http2.ClientHttp2Stream;
}

export class AgentUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AgentUnavailableError';
  }
}

/** The agent answered, but not as the runtime API says it does (a malformed reply). */
export class AgentReplyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AgentReplyError';
  }
}

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'host',
  'te',
  'http2-settings',
]);

/** Flow-control windows of the engine's side of the agent connection (bytes). */
const STREAM_WINDOW = 1 << 20;
const CONNECTION_WINDOW = 4 << 20;

export class AgentClient {
  private readonly session: http2.ClientHttp2Session;
  private closedReason: string | undefined;

  constructor(socket: Socket, onClose?: (reason: string) => void) {
    this.session = http2.connect('http://sandbox-agent', {
      createConnection: () => socket,
      peerMaxConcurrentStreams: 1000,
      // HTTP/2's default windows (64 KiB a stream and a connection) held a 100 MiB download from
      // the sandbox to 39-40 MB/s; these to 56-75 (bench/ports.ts, runs one after the other). What one
      // sandbox can have in flight to the engine is bounded by the connection's window.
      settings: { initialWindowSize: STREAM_WINDOW },
    });
    this.session.once('connect', () => this.session.setLocalWindowSize(CONNECTION_WINDOW));
    this.session.on('error', (err: Error) => {
      this.closedReason = err.message;
    });
    this.session.on('close', () => {
      this.closedReason ??= 'the connection to the sandbox agent closed';
      onClose?.(this.closedReason);
    });
    // An idle session must not keep the engine's event loop alive on its own.
    this.session.unref();
  }

  get closed(): boolean {
    return this.closedReason !== undefined || this.session.closed || this.session.destroyed;
  }

  /** Sends one request; resolves when the response headers arrive (the body streams after).
   *  An abort (signal) destroys the stream, before or after its headers. */
  request(
    method: string,
    path: string,
    headers: Record<string, string | string[] | undefined>,
    body?: Readable | Buffer | string,
    signal?: AbortSignal,
  ): Promise<AgentResponse> {
    if (this.closed) return Promise.reject(new AgentUnavailableError(this.closedReason ?? 'agent connection closed'));
    const h2headers: http2.OutgoingHttpHeaders = { ':method': method, ':path': path };
    for (const [k, v] of Object.entries(headers)) {
      const key = k.toLowerCase();
      if (v === undefined || HOP_BY_HOP.has(key) || key.startsWith(':')) continue;
      h2headers[key] = v;
    }
    const stream = this.session.request(h2headers, { endStream: body === undefined, ...(signal ? { signal } : {}) });
    return new Promise((resolve, reject) => {
      let answered = false;
      stream.once('response', (respHeaders) => {
        answered = true;
        resolve({ status: Number(respHeaders[':status']), headers: respHeaders, body: stream });
      });
      stream.once('error', (err: Error) => {
        if (!answered) reject(new AgentUnavailableError(`sandbox agent request failed: ${err.message}`));
      });
      // A session destroyed without an error (the sandbox stopped, was deleted) closes its
      // streams without an 'error' event: without this, a request still waiting for its answer
      // (a command that was running) would wait for ever.
      stream.once('close', () => {
        if (!answered)
          reject(
            new AgentUnavailableError(this.closedReason ?? 'the sandbox agent closed the stream before answering'),
          );
      });
      if (body === undefined) return;
      if (typeof body === 'string' || Buffer.isBuffer(body)) stream.end(body);
      else {
        body.on('error', (err) => stream.destroy(err));
        body.pipe(stream);
      }
    });
  }

  /**
   * A byte stream to a server on the sandbox's own loopback, `port` (the agent's tunnel: the
   * sandbox has no network): writes go to the server, reads are what it sends. When the agent
   * cannot connect, its answer's status and body instead.
   */
  async tunnel(
    port: number,
  ): Promise<{ ok: true; stream: http2.ClientHttp2Stream } | { ok: false; status: number; body: string }> {
    if (this.closed) throw new AgentUnavailableError(this.closedReason ?? 'agent connection closed');
    const stream = this.session.request(
      { ':method': 'POST', ':path': `/v1/ports/${port}/tunnel` },
      { endStream: false },
    );
    const headers = await new Promise<http2.IncomingHttpHeaders>((resolve, reject) => {
      stream.once('response', resolve);
      stream.once('error', (err: Error) => reject(new AgentUnavailableError(`sandbox agent tunnel: ${err.message}`)));
      stream.once('close', () =>
        reject(new AgentUnavailableError(this.closedReason ?? 'the sandbox agent closed the tunnel')),
      );
    });
    const status = Number(headers[':status']);
    if (status === 200) return { ok: true, stream };
    const chunks: Buffer[] = [];
    stream.end();
    for await (const c of stream) chunks.push(c as Buffer);
    return { ok: false, status, body: Buffer.concat(chunks).toString('utf8') };
  }

  /**
   * A small JSON call made by the engine itself. A 2xx reply is parsed with `schema` (the
   * runtime's: the sandbox is the untrusted side), and one that does not match is an error that
   * says so; other replies are returned as they came, for their status.
   */
  async json<S extends z.ZodType>(
    method: string,
    path: string,
    schema: S,
    payload?: unknown,
    timeoutMs = 10_000,
  ): Promise<{ ok: true; status: number; body: z.infer<S> } | { ok: false; status: number; body: unknown }> {
    const headers = payload === undefined ? {} : { 'content-type': 'application/json' };
    // One bound for the whole call: an agent that never answers (its headers never come) must not
    // hold its caller (a readiness wait, a resume) for ever.
    const signal = AbortSignal.timeout(timeoutMs);
    let status: number;
    let text: string;
    try {
      const body = payload === undefined ? undefined : JSON.stringify(payload);
      const res = await this.request(method, path, headers, body, signal);
      const chunks: Buffer[] = [];
      for await (const c of res.body) chunks.push(c as Buffer);
      status = res.status;
      text = Buffer.concat(chunks).toString('utf8');
    } catch (err) {
      if (signal.aborted)
        throw new AgentUnavailableError(`${method} ${path}: no answer from the sandbox agent within ${timeoutMs} ms`);
      throw err;
    }
    const what = `${method} ${path}`;
    let body: unknown;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      const start = text.slice(0, 200);
      throw new AgentReplyError(`${what}: the sandbox agent answered something that is not JSON: ${start}`);
    }
    if (status < 200 || status > 299) return { ok: false, status, body };
    try {
      return { ok: true, status, body: parseReply(schema, body, what) };
    } catch (err) {
      throw new AgentReplyError((err as Error).message);
    }
  }

  close(): void {
    this.closedReason ??= 'closed by the engine';
    this.session.destroy();
  }
}
