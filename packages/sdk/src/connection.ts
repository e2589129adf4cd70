// Where the SDK finds the engine: explicit options, then ASB_ENGINE_URL/ASB_TOKEN, then the
// state file and token a local engine writes under $ASB_HOME (default ~/.asb).
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
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
  url: string; token: string; namespace: string; requestTimeoutMs: number;
  /** What is at `url`, for the error when it cannot be reached. @default the local engine */
  unreachable?: string;
}

export function resolveConnection(opts: ConnectionOpts = {}, env: NodeJS.ProcessEnv = process.env): ResolvedConnection {
  const home = env.ASB_HOME ?? join(homedir(), '.asb');
  let url = opts.url ?? env.ASB_ENGINE_URL;
  if (!url) {
    try { url = (JSON.parse(readFileSync(join(home, 'engine.json'), 'utf8')) as { url: string }).url; } catch {
      throw new UnavailableError(`no local engine is running (no ${join(home, 'engine.json')}): start one with \`asb engine start\`, or set ASB_ENGINE_URL`);
    }
  }
  let token = opts.token ?? env.ASB_TOKEN;
  if (!token) {
    try { token = readFileSync(join(home, 'token'), 'utf8').trim(); } catch {
      throw new UnavailableError(`no token found at ${join(home, 'token')}: pass { token } or set ASB_TOKEN`);
    }
  }
  return { url: url.replace(/\/$/, ''), token, namespace: opts.namespace ?? 'default', requestTimeoutMs: opts.requestTimeoutMs ?? 60_000 };
}

export interface CallOpts {
  method?: string;
  body?: RequestInit['body'];
  headers?: Record<string, string>;
  /** Route to a sandbox's runtime (router header protocol). */
  sandbox?: { id: string; namespace: string };
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** One HTTP call; non-2xx becomes a typed error. Returns the raw Response for streaming. */
export async function call(conn: ResolvedConnection, path: string, what: string, opts: CallOpts = {}): Promise<Response> {
  const headers: Record<string, string> = { authorization: `Bearer ${conn.token}`, ...opts.headers };
  if (opts.sandbox) {
    headers['x-sandbox-id'] = opts.sandbox.id;
    headers['x-sandbox-namespace'] = opts.sandbox.namespace;
    headers['x-sandbox-port'] = '8888';
  }
  const timeoutMs = opts.timeoutMs ?? conn.requestTimeoutMs;
  const signals = [AbortSignal.timeout(timeoutMs), ...(opts.signal ? [opts.signal] : [])];
  let res: Response;
  try {
    res = await fetch(conn.url + path, { method: opts.method ?? 'GET', headers, body: opts.body, signal: AbortSignal.any(signals), duplex: 'half' } as RequestInit);
  } catch (err) {
    const e = err as Error;
    if (e.name === 'TimeoutError') throw new TimeoutError(`${what}: no answer within ${timeoutMs} ms (raise timeoutMs)`);
    const cause = (e.cause as Error | undefined)?.message ?? e.message;
    throw new UnavailableError(`${what}: ${conn.unreachable ? `cannot reach ${conn.unreachable} (${cause})` : `cannot reach the engine at ${conn.url} (${cause}); is it running? \`asb engine status\``}`);
  }
  if (!res.ok) {
    const text = await res.text();
    let body: unknown;
    try { body = JSON.parse(text); } catch { body = { message: text.slice(0, 500) }; }
    throw errorFromResponse(res.status, body, what);
  }
  return res;
}

export async function callJson<T>(conn: ResolvedConnection, path: string, what: string, opts: CallOpts & { json?: unknown } = {}): Promise<T> {
  const { json, ...rest } = opts;
  const res = await call(conn, path, what, json === undefined ? rest : { ...rest, method: rest.method ?? 'POST', body: JSON.stringify(json), headers: { 'content-type': 'application/json', ...rest.headers } });
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  try { return JSON.parse(text) as T; } catch { throw new SandboxError(`${what}: the server answered something that is not JSON: ${text.slice(0, 200)}`); }
}
