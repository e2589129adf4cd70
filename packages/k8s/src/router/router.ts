// The sandbox router: one address in front of every sandbox's runtime, chosen per request by
// upstream's headers (X-Sandbox-ID, -Namespace, -Port, -Pod-IP, -Timeout), with upstream's
// status codes and messages (reference section 3). Bodies stream both ways without buffering;
// WebSocket upgrades are spliced through. Bearer-token auth as in v0.5; the token is never
// forwarded to the sandbox. Hostile clients are bounded as the engine bounds them
// (packages/http-guard): header size and time, bodies that stop arriving, and refusals that
// close the connection instead of reading the refused body to its end. Bodies are never held:
// their size is the sandbox's business (the runtime agent caps what it reads).
import http from 'node:http';
import net from 'node:net';
import { timingSafeEqual } from 'node:crypto';
import {
  answer,
  answerClientErrors,
  closeStalled,
  closeWhenAnsweredEarly,
  limitConnections,
  serverOptions,
  watchBodyProgress,
  type ServerLimits,
} from '@asb/http-guard';

export interface RouterOptions {
  /** ROUTER_AUTH_TOKEN: required as `Authorization: Bearer …` unless allowUnauthenticated. */
  token?: string;
  allowUnauthenticated?: boolean;
  /** CLUSTER_DOMAIN (default cluster.local): targets are <id>.<ns>.svc.<domain>. */
  clusterDomain?: string;
  /** PROXY_TIMEOUT_SECONDS (default 180): the longest a request may take; X-Sandbox-Timeout may lower it. */
  proxyTimeoutS?: number;
  /** Pod IPs the router may be sent to by X-Sandbox-Pod-IP. Default: private and CGNAT ranges
   *  only, never loopback, link-local (cloud metadata) or public addresses (SSRF). */
  podIpAllowed?: (ip: string) => boolean;
  /** Replaces DNS: `<id>.<ns>` → host (tests, or a router outside the cluster). */
  resolve?: (id: string, namespace: string) => string | undefined;
  /** ROUTER_BACKEND=host[:port]: every sandbox is reached at this address, whatever DNS or
   *  X-Sandbox-Pod-IP say: a router outside the cluster pointed at one runtime (development,
   *  and the tests on a simulated cluster whose pods have no network). */
  backend?: { host: string; port?: number };
  log?: (msg: string, fields?: Record<string, unknown>) => void;
  /** ROUTER_MAX_HEADER_BYTES, ROUTER_HEADERS_TIMEOUT_SECONDS, ROUTER_BODY_IDLE_TIMEOUT_SECONDS, ROUTER_MAX_CONNECTIONS. */
  limits?: Partial<ServerLimits>;
}

export const ROUTER_LIMITS: ServerLimits = {
  maxHeaderBytes: 16 * 1024,
  headersTimeoutMs: 30_000,
  bodyIdleTimeoutMs: 60_000,
  maxConnections: 10_000,
};

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const NAMESPACE = /^[a-zA-Z0-9-]+$/;

/** RFC 1918, CGNAT (100.64/10) and IPv6 ULA: where pods live; not loopback or link-local. */
export function isPrivatePodIp(ip: string): boolean {
  if (net.isIPv4(ip)) {
    const [a, b] = ip.split('.').map(Number) as [number, number];
    return (
      a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || (a === 100 && b >= 64 && b <= 127)
    );
  }
  if (net.isIPv6(ip)) return /^f[cd][0-9a-f]{2}:/i.test(ip);
  return false;
}

interface Target {
  host: string;
  port: number;
  id: string;
  timeoutMs: number;
}

type Refusal = { status: number; body: unknown };

/** Validates the routing headers: a target, or upstream's refusal. */
export function targetOf(headers: http.IncomingHttpHeaders, o: RouterOptions): Target | Refusal {
  const h = (name: string) => {
    const v = headers[name];
    return Array.isArray(v) ? v[0] : v;
  };
  const id = h('x-sandbox-id');
  if (!id) return { status: 400, body: { detail: 'X-Sandbox-ID header is required.' } };
  if (!DNS_LABEL.test(id)) return { status: 400, body: { detail: 'Invalid sandbox ID format.' } };
  const namespace = h('x-sandbox-namespace') ?? 'default';
  if (!NAMESPACE.test(namespace)) return { status: 400, body: { detail: 'Invalid namespace format.' } };
  const portText = h('x-sandbox-port') ?? '8888';
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port < 1 || port > 65535)
    return { status: 400, body: { detail: 'Invalid port format.' } };
  const maxS = o.proxyTimeoutS ?? 180;
  let timeoutS = maxS;
  const t = h('x-sandbox-timeout');
  if (t !== undefined) {
    const n = Number(t);
    if (!Number.isFinite(n) || n <= 0) return { status: 400, body: { detail: 'Invalid timeout format.' } };
    timeoutS = Math.min(n, maxS);
  }
  const podIp = h('x-sandbox-pod-ip');
  let host: string;
  if (podIp) {
    if (!net.isIP(podIp) || !(o.podIpAllowed ?? isPrivatePodIp)(podIp))
      return { status: 400, body: { detail: 'Invalid pod IP.' } };
    host = podIp;
  } else {
    host = o.resolve?.(id, namespace) ?? `${id}.${namespace}.svc.${o.clusterDomain ?? 'cluster.local'}`;
  }
  if (o.backend) return { host: o.backend.host, port: o.backend.port ?? port, id, timeoutMs: timeoutS * 1000 };
  return { host, port, id, timeoutMs: timeoutS * 1000 };
}

/** `host[:port]` (IPv6 in brackets) → the router's backend override. */
export function parseBackend(text: string): { host: string; port?: number } {
  const m = /^(?:\[([0-9a-fA-F:]+)\]|([^:[\]]+))(?::(\d{1,5}))?$/.exec(text.trim());
  const port = m?.[3] ? Number(m[3]) : undefined;
  if (!m || (port !== undefined && (port < 1 || port > 65535)))
    throw new Error(`ROUTER_BACKEND must be host[:port], not "${text}"`);
  return { host: m[1] ?? m[2]!, port };
}

const HOP_BY_HOP = new Set([
  'connection',
  'upgrade',
  'keep-alive',
  'te',
  'trailer',
  'transfer-encoding',
  'proxy-connection',
]);

/** Headers for the sandbox: routing, auth and hop-by-hop headers dropped; Host is the target's. */
function forwardHeaders(headers: http.IncomingHttpHeaders, keepUpgrade: boolean): http.OutgoingHttpHeaders {
  const out: http.OutgoingHttpHeaders = {};
  const hop = new Set(['host', 'authorization', 'proxy-authorization', ...HOP_BY_HOP]);
  if (keepUpgrade) {
    hop.delete('connection');
    hop.delete('upgrade');
  }
  for (const [k, v] of Object.entries(headers)) {
    if (hop.has(k) || k.startsWith('x-sandbox-')) continue;
    out[k] = v;
  }
  return out;
}

/** The sandbox's answer for the client: hop-by-hop headers are the router's own, not the sandbox's
 *  (its "Connection: keep-alive" would override the router's "close" for a refused body). */
function responseHeaders(headers: http.IncomingHttpHeaders): http.OutgoingHttpHeaders {
  const out: http.OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(headers)) if (!HOP_BY_HOP.has(k)) out[k] = v;
  return out;
}

function authorized(req: http.IncomingMessage, o: RouterOptions): boolean {
  if (o.allowUnauthenticated) return true;
  if (!o.token) return false;
  const got = Buffer.from(req.headers.authorization ?? '');
  const want = Buffer.from(`Bearer ${o.token}`);
  return got.length === want.length && timingSafeEqual(got, want);
}

/** An answer in upstream's shape ({"detail": …}); a body still on its way is not read. */
function sendJson(req: http.IncomingMessage, res: http.ServerResponse, status: number, body: unknown): void {
  answer(req, res, { status, contentType: 'application/json', text: JSON.stringify(body) });
}

/** The sandbox could not be reached or went away: not the router's own failure. */
const BACKEND_ERRORS = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ECONNRESET',
  'ENETUNREACH',
  'EPIPE',
  'ECONNABORTED',
]);

export function createRouter(o: RouterOptions): http.Server {
  if (!o.token && !o.allowUnauthenticated)
    throw new Error('the router needs ROUTER_AUTH_TOKEN, or ALLOW_UNAUTHENTICATED_ROUTER=true');
  const limits = { ...ROUTER_LIMITS, ...o.limits };
  const server = http.createServer(serverOptions(limits), (req, res) => {
    if (req.url === '/healthz' && req.method === 'GET') {
      sendJson(req, res, 200, { status: 'ok' });
      return;
    }
    if (!authorized(req, o)) {
      sendJson(req, res, 401, { detail: 'Unauthorized: send Authorization: Bearer <router token>.' });
      return;
    }
    const target = targetOf(req.headers, o);
    if ('status' in target) {
      sendJson(req, res, target.status, target.body);
      return;
    }
    watchBodyProgress(req, limits.bodyIdleTimeoutMs, () =>
      closeStalled(req, res, {
        status: 408,
        contentType: 'application/json',
        text: JSON.stringify({
          detail: `The request body stopped arriving: nothing for ${limits.bodyIdleTimeoutMs / 1000} s.`,
        }),
      }),
    );
    closeWhenAnsweredEarly(req, res);
    const upstream = http.request({
      host: target.host,
      port: target.port,
      method: req.method,
      path: req.url,
      headers: forwardHeaders(req.headers, false),
      timeout: target.timeoutMs,
    });
    let answered = false;
    upstream.on('response', (up) => {
      answered = true;
      res.writeHead(up.statusCode ?? 502, responseHeaders(up.headers));
      up.pipe(res);
      up.on('error', () => res.destroy());
    });
    upstream.on('timeout', () => upstream.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
    upstream.on('error', (err: NodeJS.ErrnoException) => {
      if (answered) {
        res.destroy();
        return;
      }
      o.log?.('proxy error', { id: target.id, code: err.code, message: err.message });
      if (err.code === 'ETIMEDOUT')
        sendJson(req, res, 504, { detail: `The backend sandbox did not answer in time: ${target.id}` });
      else if (BACKEND_ERRORS.has(err.code ?? ''))
        sendJson(req, res, 502, { detail: `Could not connect to the backend sandbox: ${target.id}` });
      else sendJson(req, res, 500, { detail: 'An internal error occurred in the proxy.' });
    });
    // The client went away: so does the request to the sandbox.
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    req.pipe(upstream);
  });

  limitConnections(server, limits.maxConnections);
  answerClientErrors(
    server,
    { ...limits, headerHint: 'ROUTER_MAX_HEADER_BYTES', timeoutHint: 'ROUTER_HEADERS_TIMEOUT_SECONDS' },
    (_status, message) => ({
      contentType: 'application/json',
      text: JSON.stringify({ detail: `${message[0]!.toUpperCase()}${message.slice(1)}.` }),
    }),
  );

  // WebSockets (and any Upgrade): the handshake is forwarded, then the two sockets are spliced.
  server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
    const refuse = (status: number, body: unknown) => {
      const text = JSON.stringify(body);
      socket.end(
        `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(text)}\r\nconnection: close\r\n\r\n${text}`,
      );
    };
    if (!authorized(req, o)) return refuse(401, { detail: 'Unauthorized: send Authorization: Bearer <router token>.' });
    const target = targetOf(req.headers, o);
    if ('status' in target) return refuse(target.status, target.body);
    const up = net.connect(target.port, target.host);
    let connected = false;
    up.once('connect', () => {
      connected = true;
      const headers = forwardHeaders(req.headers, true);
      const lines = [`${req.method} ${req.url} HTTP/1.1`, `host: ${target.host}:${target.port}`];
      for (const [k, v] of Object.entries(headers))
        for (const one of Array.isArray(v) ? v : [v]) lines.push(`${k}: ${one}`);
      up.write(lines.join('\r\n') + '\r\n\r\n');
      if (head.length) up.write(head);
      up.pipe(socket);
      socket.pipe(up);
    });
    up.once('error', () => {
      if (!connected && !socket.destroyed)
        refuse(502, { detail: `Could not connect to the backend sandbox: ${target.id}` });
      else socket.destroy();
    });
    socket.once('error', () => up.destroy());
    socket.once('close', () => up.destroy());
    up.once('close', () => socket.destroy());
  });
  return server;
}
