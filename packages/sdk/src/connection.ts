// Where the SDK finds the engine: explicit options, then ASB_ENGINE_URL/ASB_TOKEN, then the
// state file and token a local engine writes under $ASB_HOME (default ~/.asb).
import { readFileSync } from 'node:fs';
import { request as httpRequest, Agent as HttpAgent, type ClientRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest, Agent as HttpsAgent } from 'node:https';
import { Readable } from 'node:stream';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { z } from 'zod';
import { parseReply } from '@asb/runtime/replies';
import { UnavailableError, TimeoutError, errorFromResponse, SandboxError } from './errors.ts';

export interface ConnectionOpts {
  /** Engine (or router) URL. @default env ASB_ENGINE_URL, else the running local engine's */
  url?: string;
  /** Bearer token. @default env ASB_TOKEN, else $ASB_HOME/token */
  token?: string;
  /** Namespace of sandboxes and templates. @default "default" */
  namespace?: string;
  /** Per-request timeout for control calls (not for commands). @default 60_000 */
  requestTimeoutMs?: number;
}

export interface ResolvedConnection {
  url: string;
  token: string;
  namespace: string;
  requestTimeoutMs: number;
  /** What is at `url`, for the error when it cannot be reached. @default the local engine */
  unreachable?: string;
}

export function resolveConnection(opts: ConnectionOpts = {}, env: NodeJS.ProcessEnv = process.env): ResolvedConnection {
  const home = env.ASB_HOME ?? join(homedir(), '.asb');
  let url = opts.url ?? env.ASB_ENGINE_URL;
  if (!url) {
    try {
      url = (JSON.parse(readFileSync(join(home, 'engine.json'), 'utf8')) as { url: string }).url;
    } catch {
      throw new UnavailableError(
        `no local engine is running (no ${join(home, 'engine.json')}): start one with \`asb engine start\`, or set ASB_ENGINE_URL`,
      );
    }
  }
  let token = opts.token ?? env.ASB_TOKEN;
  if (!token) {
    try {
      token = readFileSync(join(home, 'token'), 'utf8').trim();
    } catch {
      throw new UnavailableError(`no token found at ${join(home, 'token')}: pass { token } or set ASB_TOKEN`);
    }
  }
  return {
    url: url.replace(/\/$/, ''),
    token,
    namespace: opts.namespace ?? 'default',
    requestTimeoutMs: opts.requestTimeoutMs ?? 60_000,
  };
}

export interface CallOpts {
  method?: string;
  body?: string | Uint8Array | Blob;
  headers?: Record<string, string>;
  /** Route to a sandbox's runtime (router header protocol). */
  sandbox?: { id: string; namespace: string };
  timeoutMs?: number;
  signal?: AbortSignal;
}

function headersOf(conn: ResolvedConnection, opts: CallOpts): Record<string, string> {
  const headers: Record<string, string> = { authorization: `Bearer ${conn.token}`, ...opts.headers };
  if (opts.sandbox) {
    headers['x-sandbox-id'] = opts.sandbox.id;
    headers['x-sandbox-namespace'] = opts.sandbox.namespace;
    headers['x-sandbox-port'] = '8888';
  }
  return headers;
}

/** The typed error for a call that got no answer. */
function unanswered(conn: ResolvedConnection, what: string, err: unknown, timeoutMs: number): SandboxError {
  const e = err as Error;
  // fetch rejects with the signal's TimeoutError; node:http with an AbortError caused by it.
  if (e.name === 'TimeoutError' || (e.cause as Error | undefined)?.name === 'TimeoutError')
    return new TimeoutError(`${what}: no answer within ${timeoutMs} ms (raise timeoutMs)`);
  const cause = (e.cause as Error | undefined)?.message ?? e.message;
  return new UnavailableError(
    `${what}: ${conn.unreachable ? `cannot reach ${conn.unreachable} (${cause})` : `cannot reach the engine at ${conn.url} (${cause}); is it running? \`asb engine status\``}`,
  );
}

function errorOf(status: number, text: string, what: string): SandboxError {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = { message: text.slice(0, 500) };
  }
  return errorFromResponse(status, body, what);
}

/** Connections kept open between calls: a command's round trip is a few milliseconds, and a new
 *  TCP connection for each would be a good part of it. */
const keepAlive = { http: new HttpAgent({ keepAlive: true }), https: new HttpsAgent({ keepAlive: true }) };

/** Statuses whose answer has no body (a Response refuses one). */
const NULL_BODY_STATUS = new Set([101, 103, 204, 205, 304]);

/** A call's body as bytes node:http sends. */
async function bodyBytes(body: CallOpts['body']): Promise<string | Uint8Array | undefined> {
  if (body === undefined || typeof body === 'string' || body instanceof Uint8Array) return body;
  return new Uint8Array(await body.arrayBuffer());
}

/**
 * One HTTP call, its answer as node's own stream; non-2xx becomes a typed error (its body read).
 * Sent with node:http rather than fetch: undici's fetch adds ~1 ms to every call here, node:http
 * ~0.1 ms. The timeout and the caller's signal bound the whole call, the answer's body included.
 * They are a timer and a listener released when the call ends, not AbortSignal.timeout and
 * AbortSignal.any, and `run` reads node's stream, not a WHATWG one made of it: together 0.3-0.9 ms
 * less CPU per exec of `true`, p50 0.1-1.6 ms lower (old and new SDK alternated in one process,
 * 4 rounds of 300).
 */
export async function send(
  conn: ResolvedConnection,
  path: string,
  what: string,
  opts: CallOpts = {},
): Promise<IncomingMessage> {
  const timeoutMs = opts.timeoutMs ?? conn.requestTimeoutMs;
  const method = opts.method ?? 'GET';
  const { signal } = opts;
  if (signal?.aborted) throw signal.reason;
  let req: ClientRequest;
  let res: IncomingMessage | undefined;
  let timer: NodeJS.Timeout | undefined;
  // Once the answer has begun, it is the answer that is ended with the error (its reader gets
  // this error; ending the request would give it a bare "aborted").
  const end = (err: Error) => (res ?? req).destroy(err);
  const onAbort = () => end(signal!.reason as Error);
  const release = () => {
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
  };
  try {
    const url = new URL(conn.url + path);
    const body = await bodyBytes(opts.body);
    const https = url.protocol === 'https:';
    res = await new Promise<IncomingMessage>((resolve, reject) => {
      req = (https ? httpsRequest : httpRequest)(url, {
        method,
        headers: headersOf(conn, opts),
        agent: https ? keepAlive.https : keepAlive.http,
      });
      timer = setTimeout(
        () => end(new TimeoutError(`${what}: no answer within ${timeoutMs} ms (raise timeoutMs)`)),
        timeoutMs,
      );
      signal?.addEventListener('abort', onAbort, { once: true });
      req.once('close', release);
      req.once('response', (answer: IncomingMessage) => resolve((res = answer)));
      req.once('error', reject);
      req.end(body);
    });
  } catch (err) {
    release();
    if (err instanceof SandboxError || (signal?.aborted && err === signal.reason)) throw err;
    throw unanswered(conn, what, err, timeoutMs);
  }
  res.once('close', release);
  const status = res.statusCode ?? 0;
  if (status < 200 || status > 299) {
    const chunks: Buffer[] = [];
    for await (const c of res) chunks.push(c as Buffer);
    throw errorOf(status, Buffer.concat(chunks).toString('utf8'), what);
  }
  return res;
}

/** One HTTP call; non-2xx becomes a typed error. Returns the answer as a Response, for callers
 *  that read it as one (text, JSON, a download's web stream). */
export async function call(
  conn: ResolvedConnection,
  path: string,
  what: string,
  opts: CallOpts = {},
): Promise<Response> {
  const res = await send(conn, path, what, opts);
  const status = res.statusCode ?? 0;
  const headers = new Headers();
  for (const [k, v] of Object.entries(res.headers)) {
    for (const value of Array.isArray(v) ? v : v === undefined ? [] : [v]) headers.append(k, value);
  }
  const empty = NULL_BODY_STATUS.has(status) || (opts.method ?? 'GET') === 'HEAD';
  if (empty) res.resume();
  return new Response(empty ? null : (Readable.toWeb(res) as ReadableStream<Uint8Array>), {
    status,
    statusText: res.statusMessage,
    headers,
  });
}

/** The most of an answer to an upload that is read (its JSON is a line or two). */
const MAX_UPLOAD_ANSWER_BYTES = 1024 * 1024;

/** A call whose body is a stream, sent with node:http instead of fetch: fetch (undici) keeps
 *  every chunk of a streamed request body in memory until the request ends (nodejs/undici#4058;
 *  a 250 MB upload took 400 MB). The body is sent as it is read; when the server answers before
 *  the end (413: over the limit), sending stops there and the answer is the result. */
export async function callStreaming<T>(
  conn: ResolvedConnection,
  path: string,
  what: string,
  opts: CallOpts & { stream: AsyncIterable<Uint8Array> },
): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? conn.requestTimeoutMs;
  const signal = AbortSignal.any([AbortSignal.timeout(timeoutMs), ...(opts.signal ? [opts.signal] : [])]);
  const url = new URL(conn.url + path);
  const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, {
    method: opts.method ?? 'PUT',
    headers: headersOf(conn, opts),
    agent: false,
    signal,
  });
  const source = opts.stream instanceof Readable ? opts.stream : Readable.from(opts.stream, { objectMode: false });
  let res: IncomingMessage;
  try {
    res = await new Promise<IncomingMessage>((resolve, reject) => {
      req.once('response', resolve);
      req.once('error', reject);
      // A local read error (the file went away) is the caller's, as it is.
      source.once('error', (err) => {
        reject(Object.assign(err, { local: true }));
        req.destroy();
      });
      source.pipe(req);
    });
  } catch (err) {
    source.destroy();
    if ((err as { local?: boolean }).local) throw err;
    throw unanswered(conn, what, err, timeoutMs);
  } finally {
    source.unpipe(req);
  }
  // A write the server's close cuts after it answered changes nothing: the answer stands.
  req.on('error', () => undefined);
  try {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const c of res) {
      size += (c as Buffer).length;
      if (size <= MAX_UPLOAD_ANSWER_BYTES) chunks.push(c as Buffer);
    }
    const text = Buffer.concat(chunks).toString('utf8');
    const status = res.statusCode ?? 0;
    if (status < 200 || status > 299) throw errorOf(status, text, what);
    if (status === 204) return undefined as T;
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new SandboxError(`${what}: the server answered something that is not JSON: ${text.slice(0, 200)}`);
    }
  } finally {
    // Unsent rest of an answered upload: the connection (ours alone, agent: false) goes with it.
    source.destroy();
    req.destroy();
  }
}

export async function callJson<T>(
  conn: ResolvedConnection,
  path: string,
  what: string,
  opts: CallOpts & { json?: unknown } = {},
): Promise<T> {
  const { json, ...rest } = opts;
  // node's stream read whole: a Response over a web stream cost ~0.4 ms of CPU per call here.
  const res = await send(
    conn,
    path,
    what,
    json === undefined
      ? rest
      : {
          ...rest,
          method: rest.method ?? 'POST',
          body: JSON.stringify(json),
          headers: { 'content-type': 'application/json', ...rest.headers },
        },
  );
  const chunks: Buffer[] = [];
  for await (const c of res) chunks.push(c as Buffer);
  if (res.statusCode === 204) return undefined as T;
  const text = Buffer.concat(chunks).toString('utf8');
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new SandboxError(`${what}: the server answered something that is not JSON: ${text.slice(0, 200)}`);
  }
}

/** callJson for a reply of the sandbox (its agent's, through the engine or the router): parsed
 *  with the runtime's schema, so a malformed reply is an error that says so, not a wrong value. */
export async function callReply<S extends z.ZodType>(
  conn: ResolvedConnection,
  path: string,
  what: string,
  schema: S,
  opts: CallOpts & { json?: unknown } = {},
): Promise<z.infer<S>> {
  return parseSandboxReply(schema, await callJson<unknown>(conn, path, what, opts), what);
}

export function parseSandboxReply<S extends z.ZodType>(schema: S, body: unknown, what: string): z.infer<S> {
  try {
    return parseReply(schema, body, what);
  } catch (err) {
    throw new SandboxError((err as Error).message, 502, 'BadGateway');
  }
}
