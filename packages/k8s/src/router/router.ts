// The sandbox router: one address in front of every sandbox's runtime. A request names its
// sandbox by upstream's headers (X-Sandbox-ID, -Namespace, -Port, -Pod-IP, -Timeout; reference
// section 3) or, as v1.0.1's Go router allows for browsers, by its path
// (<prefix>/<namespace>/<id>/<port>/<rest>, --path-routing-prefix), with upstream's status codes
// and messages. Credentials: the router token (v0.5's bearer token) and/or v1.0.1's scoped tokens
// (one sandbox each), from the Authorization header or, for browsers, a session cookie that a
// URL parameter bootstraps (session.ts); never forwarded to the sandbox. Bodies stream both ways
// without buffering; WebSocket upgrades are spliced through. Dials that fail (a sandbox not yet
// listening) are retried as upstream's Go router retries them. Hostile clients are bounded as the
// engine bounds them (packages/http-guard): header size and time, bodies that stop arriving, and
// refusals that close the connection instead of reading the refused body to its end. Bodies are
// never held: their size is the sandbox's business (the runtime agent caps what it reads).
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
import {
  DNS_LABEL,
  bootstrapLocation,
  cookiePath,
  isAllowedOrigin,
  parsePathRoute,
  redirectBody,
  requestOrigin,
  scopedSecret,
  sessionCookie,
  splitTarget,
  stripCookie,
  stripQueryParam,
  tokenFromRequest,
  validCookieValue,
  validateBrowserOptions,
  verifyScopedToken,
  type CookieSessionOptions,
  type Refusal,
  type TokenLocations,
} from './session.ts';

export interface RouterOptions {
  /** ROUTER_AUTH_TOKEN: required as `Authorization: Bearer …` unless allowUnauthenticated. */
  token?: string;
  allowUnauthenticated?: boolean;
  /** --authz-mode=scoped-token with --authz-scoped-token-secret-file (v1.0.1): tokens that open
   *  one sandbox each (upstream's MintScopedToken, `mintScopedToken` in session.ts). With a router
   *  token too, either credential is accepted. */
  scopedTokenSecret?: Buffer | string;
  /** CLUSTER_DOMAIN (default cluster.local): targets are <id>.<ns>.svc.<domain>. */
  clusterDomain?: string;
  /** PROXY_TIMEOUT_SECONDS (default 180): the longest a request may take; X-Sandbox-Timeout may lower it. */
  proxyTimeoutS?: number;
  /** Pod IPs the router may be sent to by X-Sandbox-Pod-IP. Default: private and CGNAT ranges
   *  only, never loopback, link-local (cloud metadata) or public addresses (SSRF). */
  podIpAllowed?: (ip: string) => boolean;
  /** --allow-loopback-pod-ip: loopback too (a sandbox beside the router in its pod). */
  allowLoopbackPodIp?: boolean;
  /** Replaces DNS: `<id>.<ns>` → host (tests, or a router outside the cluster). */
  resolve?: (id: string, namespace: string) => string | undefined;
  /** ROUTER_BACKEND=host[:port]: every sandbox is reached at this address, whatever DNS or
   *  X-Sandbox-Pod-IP say: a router outside the cluster pointed at one runtime (development,
   *  and the tests on a simulated cluster whose pods have no network). */
  backend?: { host: string; port?: number };
  /** --path-routing-prefix (v1.0.1): `<prefix>/<namespace>/<id>/<port>/<rest>` is routed by its
   *  path, `<rest>` going to the sandbox; other paths are routed by the headers. */
  pathRoutingPrefix?: string;
  /** --authz-cookie-* (v1.0.1): browser sessions on path-routed URLs. */
  cookie?: CookieSessionOptions;
  /** --upstream-max-retries (3), --upstream-retry-initial-delay (200 ms), --upstream-retry-max-delay
   *  (800 ms): a dial that fails (no such host yet, refused) is tried again, doubling the wait. */
  retries?: { max?: number; initialDelayMs?: number; maxDelayMs?: number };
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

const isLoopback = (ip: string) => (net.isIPv4(ip) ? ip.startsWith('127.') : ip === '::1');

interface Target {
  host: string;
  port: number;
  id: string;
  namespace: string;
  timeoutMs: number;
}

/** Validates the routing headers: a target, or upstream's refusal. */
export function targetOf(headers: http.IncomingHttpHeaders, o: RouterOptions): Target | Refusal {
  const h = (name: string) => {
    const v = headers[name];
    return Array.isArray(v) ? v[0] : v;
  };
  const id = h('x-sandbox-id');
  if (!id) return { status: 400, body: { detail: 'X-Sandbox-ID header is required.' } };
  if (!DNS_LABEL.test(id)) return { status: 400, body: { detail: 'Invalid sandbox ID format.' } };
  const namespace = h('x-sandbox-namespace') || 'default';
  if (!DNS_LABEL.test(namespace)) return { status: 400, body: { detail: 'Invalid namespace format.' } };
  const portText = h('x-sandbox-port') || '8888';
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
    const allowed = o.podIpAllowed ?? isPrivatePodIp;
    if (!net.isIP(podIp) || !(allowed(podIp) || (o.allowLoopbackPodIp && isLoopback(podIp))))
      return { status: 400, body: { detail: 'Invalid target IP address.' } };
    host = podIp;
  } else {
    host = dnsHost(id, namespace, o);
  }
  if (o.backend)
    return { host: o.backend.host, port: o.backend.port ?? port, id, namespace, timeoutMs: timeoutS * 1000 };
  return { host, port, id, namespace, timeoutMs: timeoutS * 1000 };
}

const dnsHost = (id: string, namespace: string, o: RouterOptions) =>
  o.resolve?.(id, namespace) ?? `${id}.${namespace}.svc.${o.clusterDomain ?? 'cluster.local'}`;

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

/** The client's address as upstream's router reports it (an IPv4 client as IPv4). */
const clientIp = (req: http.IncomingMessage) => (req.socket.remoteAddress ?? '').replace(/^::ffff:(?=\d+\.)/, '');

/**
 * Headers for the sandbox: routing, credential and hop-by-hop headers dropped (the session cookie
 * too; the app's own cookies stay); Host is the target's; X-Forwarded-For/-Host/-Proto are the
 * router's own (a client cannot forge them), as upstream's router sets them. On an upgrade,
 * Origin goes: the sandbox sees its own address as Host, and would refuse the browser's Origin.
 */
function forwardHeaders(req: http.IncomingMessage, upgrade: boolean, o: RouterOptions): http.OutgoingHttpHeaders {
  const out: http.OutgoingHttpHeaders = {};
  const hop = new Set([
    'host',
    'authorization',
    'proxy-authorization',
    'forwarded',
    'x-forwarded-for',
    'x-forwarded-host',
    'x-forwarded-proto',
    ...HOP_BY_HOP,
  ]);
  if (upgrade) {
    hop.delete('connection');
    hop.delete('upgrade');
    hop.add('origin');
  }
  for (const [k, v] of Object.entries(req.headers)) {
    if (hop.has(k) || k.startsWith('x-sandbox-')) continue;
    out[k] = v;
  }
  if (o.cookie && typeof out.cookie === 'string') {
    const kept = stripCookie(out.cookie, o.cookie.name);
    if (kept) out.cookie = kept;
    else delete out.cookie;
  }
  out['x-forwarded-for'] = clientIp(req);
  out['x-forwarded-host'] = req.headers.host ?? '';
  out['x-forwarded-proto'] = 'http';
  return out;
}

/** The sandbox's answer for the client: hop-by-hop headers are the router's own, not the sandbox's
 *  (its "Connection: keep-alive" would override the router's "close" for a refused body). */
function responseHeaders(headers: http.IncomingHttpHeaders): http.OutgoingHttpHeaders {
  const out: http.OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(headers)) if (!HOP_BY_HOP.has(k)) out[k] = v;
  return out;
}

const sameText = (a: string, b: string) => {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
};

const UNAUTHORIZED = 'Unauthorized: send Authorization: Bearer <router token>.';

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

/** A request let through: where it goes, and what the sandbox is asked for. */
interface Admitted {
  target: Target;
  upstreamPath: string;
  /** The bootstrap: answer with the cookie and this redirect instead of proxying. */
  bootstrap?: { cookie: string; location: string };
}

export function createRouter(o: RouterOptions): http.Server {
  const secret = o.scopedTokenSecret !== undefined ? scopedSecret(o.scopedTokenSecret) : undefined;
  if (!o.token && !o.allowUnauthenticated && !secret)
    throw new Error('the router needs ROUTER_AUTH_TOKEN, or ALLOW_UNAUTHENTICATED_ROUTER=true');
  validateBrowserOptions({
    pathRoutingPrefix: o.pathRoutingPrefix,
    cookie: o.cookie,
    authenticated: !o.allowUnauthenticated,
  });
  const prefix = o.pathRoutingPrefix || undefined;
  const locations: TokenLocations = o.cookie ? { cookieName: o.cookie.name, queryParam: o.cookie.queryParam } : {};
  const retries = { max: 3, initialDelayMs: 200, maxDelayMs: 800, ...o.retries };
  const limits = { ...ROUTER_LIMITS, ...o.limits };

  /** Routing (path, then headers), then the Origin check for a cookie, then the credential. */
  const admit = (req: http.IncomingMessage, upgrade: boolean): Admitted | Refusal => {
    const { path, query } = splitTarget(req.url ?? '/');
    const byPath = prefix ? parsePathRoute(prefix, path, query) : { matched: false as const };
    let target: Target;
    let upstreamPath: string;
    if (byPath.matched) {
      if ('refusal' in byPath) return byPath.refusal;
      const r = byPath.route;
      target = {
        host: o.backend?.host ?? dnsHost(r.id, r.namespace, o),
        port: o.backend?.port ?? r.port,
        id: r.id,
        namespace: r.namespace,
        timeoutMs: (o.proxyTimeoutS ?? 180) * 1000,
      };
      upstreamPath = r.upstreamPath;
    } else {
      const t = targetOf(req.headers, o);
      if ('status' in t) return t;
      target = t;
      upstreamPath = `${path}${query !== undefined ? `?${query}` : ''}`;
    }

    const cred = tokenFromRequest(req.headers, query, locations);
    if (cred?.source === 'cookie') {
      // A cookie comes with whatever page made the request: a page elsewhere (a WebSocket
      // handshake in particular, which the same-origin policy does not stop) gets nothing.
      const self = requestOrigin(req.headers, false, o.cookie?.trustForwardedProto ?? false);
      if (!isAllowedOrigin(req.headers.origin, self, o.cookie?.allowedOrigins)) {
        o.log?.('origin not allowed for cookie-authenticated request', { origin: req.headers.origin, id: target.id });
        return { status: 403, body: { detail: 'origin not allowed for cookie-authenticated request' } };
      }
    }
    if (!o.allowUnauthenticated && !(cred && o.token && sameText(cred.token, o.token))) {
      if (!secret) return { status: 401, body: { detail: UNAUTHORIZED } };
      const claims = cred && verifyScopedToken(secret, cred.token);
      if (!claims) return { status: 401, body: { detail: 'unauthenticated' } };
      // Both would choose the pod after the token was checked against the sandbox it names.
      if (req.headers['x-sandbox-pod-ip'] || req.headers['x-sandbox-uid'])
        return { status: 403, body: { detail: 'forbidden' } };
      if (claims.namespace !== target.namespace || claims.name !== target.id)
        return { status: 403, body: { detail: 'forbidden' } };
    }

    if (
      o.cookie?.queryParam &&
      cred?.source === 'query' &&
      byPath.matched &&
      !upgrade &&
      (req.method === 'GET' || req.method === 'HEAD') &&
      validCookieValue(cred.token)
    ) {
      const r = (byPath as { route: { namespace: string; id: string; port: number } }).route;
      return {
        target,
        upstreamPath,
        bootstrap: {
          cookie: sessionCookie(o.cookie, cred.token, cookiePath(prefix!, r)),
          location: bootstrapLocation(path, query, o.cookie.queryParam),
        },
      };
    }
    // The bootstrap credential never reaches the sandbox.
    if (o.cookie?.queryParam) {
      const q = upstreamPath.indexOf('?');
      if (q >= 0) {
        const kept = stripQueryParam(upstreamPath.slice(q + 1), o.cookie.queryParam);
        upstreamPath = upstreamPath.slice(0, q) + (kept ? `?${kept}` : '');
      }
    }
    return { target, upstreamPath };
  };

  const server = http.createServer(serverOptions(limits), (req, res) => {
    if (splitTarget(req.url ?? '/').path === '/healthz') {
      sendJson(req, res, 200, { status: 'ok' });
      return;
    }
    const admitted = admit(req, false);
    if ('status' in admitted) {
      sendJson(req, res, admitted.status, admitted.body);
      return;
    }
    const { target, upstreamPath, bootstrap } = admitted;
    if (bootstrap) {
      const text = req.method === 'GET' ? redirectBody(bootstrap.location) : '';
      answer(req, res, {
        status: 302,
        contentType: 'text/html; charset=utf-8',
        text,
        headers: { location: bootstrap.location, 'set-cookie': bootstrap.cookie, 'cache-control': 'no-store' },
      });
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
    const headers = forwardHeaders(req, false, o);
    const startedAt = Date.now();
    let upstream: http.ClientRequest | undefined;
    let retryTimer: NodeJS.Timeout | undefined;
    let answered = false;
    let gone = false;
    const attempt = (n: number, delayMs: number) => {
      let connected = false;
      const up = http.request({
        host: target.host,
        port: target.port,
        method: req.method,
        path: upstreamPath,
        headers,
        timeout: target.timeoutMs,
      });
      upstream = up;
      // The body is read once connected: a dial that fails has taken none of it, and is retried.
      up.on('socket', (socket) => {
        const send = () => {
          if (connected) return;
          connected = true;
          req.pipe(up);
        };
        if (socket.connecting) socket.once('connect', send);
        else send();
      });
      up.on('response', (r) => {
        answered = true;
        res.writeHead(r.statusCode ?? 502, responseHeaders(r.headers));
        r.pipe(res);
        r.on('error', () => res.destroy());
      });
      up.on('timeout', () => up.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
      up.on('error', (err: NodeJS.ErrnoException) => {
        if (answered) {
          res.destroy();
          return;
        }
        if (gone) return;
        if (
          !connected &&
          BACKEND_ERRORS.has(err.code ?? '') &&
          n < retries.max &&
          Date.now() + delayMs - startedAt < target.timeoutMs
        ) {
          retryTimer = setTimeout(() => attempt(n + 1, Math.min(delayMs * 2, retries.maxDelayMs)), delayMs);
          return;
        }
        o.log?.('proxy error', { id: target.id, code: err.code, message: err.message, attempts: n + 1 });
        if (err.code === 'ETIMEDOUT')
          sendJson(req, res, 504, { detail: `The backend sandbox did not answer in time: ${target.id}` });
        else if (BACKEND_ERRORS.has(err.code ?? ''))
          sendJson(req, res, 502, { detail: `Could not connect to the backend sandbox: ${target.id}` });
        else sendJson(req, res, 500, { detail: 'An internal error occurred in the proxy.' });
      });
    };
    // The client went away: so does the request to the sandbox.
    res.on('close', () => {
      if (res.writableFinished) return;
      gone = true;
      clearTimeout(retryTimer);
      upstream?.destroy();
    });
    attempt(0, Math.min(retries.initialDelayMs, retries.maxDelayMs));
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

  // WebSockets (and any Upgrade): the handshake is forwarded, then the two sockets are spliced. No
  // proxy timeout: an upgraded connection lives as long as both ends keep it.
  server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
    const refuse = (status: number, body: unknown) => {
      const text = JSON.stringify(body);
      socket.end(
        `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(text)}\r\nconnection: close\r\n\r\n${text}`,
      );
    };
    const admitted = admit(req, true);
    if ('status' in admitted) return refuse(admitted.status, admitted.body);
    const { target, upstreamPath } = admitted;
    let up: net.Socket | undefined;
    socket.once('error', () => up?.destroy());
    socket.once('close', () => up?.destroy());
    const dial = (n: number, delayMs: number) => {
      const conn = net.connect(target.port, target.host);
      up = conn;
      let connected = false;
      conn.once('connect', () => {
        connected = true;
        const host = net.isIPv6(target.host) ? `[${target.host}]` : target.host;
        const lines = [`${req.method} ${upstreamPath} HTTP/1.1`, `host: ${host}:${target.port}`];
        for (const [k, v] of Object.entries(forwardHeaders(req, true, o)))
          for (const one of Array.isArray(v) ? v : [v]) lines.push(`${k}: ${String(one)}`);
        conn.write(lines.join('\r\n') + '\r\n\r\n');
        if (head.length) conn.write(head);
        conn.pipe(socket);
        socket.pipe(conn);
        conn.once('close', () => socket.destroy());
      });
      conn.once('error', (err: NodeJS.ErrnoException) => {
        if (socket.destroyed) return;
        if (connected) {
          socket.destroy();
          return;
        }
        if (BACKEND_ERRORS.has(err.code ?? '') && n < retries.max) {
          setTimeout(() => {
            if (!socket.destroyed) dial(n + 1, Math.min(delayMs * 2, retries.maxDelayMs));
          }, delayMs);
          return;
        }
        refuse(502, { detail: `Could not connect to the backend sandbox: ${target.id}` });
      });
    };
    dial(0, Math.min(retries.initialDelayMs, retries.maxDelayMs));
  });
  return server;
}
