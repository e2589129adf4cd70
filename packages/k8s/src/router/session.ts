// What v1.0.1's Go router (sandbox-router/proxy/pathroute.go, browsersession.go, authz/) adds for
// browsers, as pure functions: path routing (<prefix>/<namespace>/<id>/<port>/<rest>), where a
// request's credential comes from (Authorization header, then the bootstrap query parameter,
// then the session cookie), scoped tokens (v1.<payload>.<signature>, HMAC-SHA256 bound to one
// sandbox, upstream's wire format), the session cookie and its bootstrap redirect, and the Origin
// check a cookie-borne credential must pass. router.ts wires them into the server.
import { createHmac, timingSafeEqual } from 'node:crypto';

/** DNS-1123 label: what a Kubernetes name or namespace is, and all the router lets into a host name. */
export const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

export type Refusal = { status: number; body: { detail: string } };
const refusal = (status: number, detail: string): Refusal => ({ status, body: { detail } });

export interface PathRoute {
  id: string;
  namespace: string;
  port: number;
  /** What the sandbox is asked for: the rest of the path as it arrived (escapes kept), and the query. */
  upstreamPath: string;
}

/** Go's url.PathUnescape: every %XX to its byte (as one char); undefined when a % starts no escape. */
function pathUnescape(s: string): string | undefined {
  if (/%(?![0-9a-fA-F]{2})/.test(s)) return undefined;
  return s.replace(/%([0-9a-fA-F]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16)));
}

/**
 * Upstream's ParsePathRoute. `rawPath` is the request's path as it arrived (no query). Not
 * matched (the request is header-routed) unless it is the prefix followed by "/"; once matched, a
 * malformed route is refused, never retried against the headers.
 */
export function parsePathRoute(
  prefix: string,
  rawPath: string,
  rawQuery: string | undefined,
): { matched: false } | { matched: true; refusal: Refusal } | { matched: true; route: PathRoute } {
  if (!prefix || !rawPath.startsWith(prefix) || rawPath[prefix.length] !== '/') return { matched: false };
  const rest = rawPath.slice(prefix.length + 1);
  const parts = splitN(rest, '/', 4);
  if (parts.length < 3 || !parts[0] || !parts[1] || !parts[2])
    return {
      matched: true,
      refusal: refusal(400, 'Path-routed request must have the form <prefix>/<namespace>/<id>/<port>/...'),
    };
  const [namespace, id, portText] = [pathUnescape(parts[0]), pathUnescape(parts[1]), pathUnescape(parts[2])];
  if (namespace === undefined || id === undefined || portText === undefined)
    return { matched: true, refusal: refusal(400, 'Invalid percent-encoding in path.') };
  if (!DNS_LABEL.test(namespace)) return { matched: true, refusal: refusal(400, 'Invalid namespace format.') };
  if (!DNS_LABEL.test(id)) return { matched: true, refusal: refusal(400, 'Invalid sandbox ID format.') };
  // Go's strconv.Atoi: an optional sign, then decimal digits.
  const port = /^[+-]?\d{1,10}$/.test(portText) ? Number(portText) : NaN;
  if (!Number.isInteger(port) || port < 1 || port > 65535)
    return { matched: true, refusal: refusal(400, 'Invalid port format.') };
  // The rest goes to the sandbox byte for byte ("%2F" stays "%2F"). A malformed escape there is
  // refused, as upstream's HTTP server refuses it (400) before its router sees the request.
  const remainder = parts[3] ?? '';
  if (pathUnescape(remainder) === undefined)
    return { matched: true, refusal: refusal(400, 'Invalid percent-encoding in path.') };
  const upstreamPath = `/${remainder}${rawQuery !== undefined && rawQuery !== '' ? `?${rawQuery}` : ''}`;
  return { matched: true, route: { id, namespace, port, upstreamPath } };
}

/** Go's strings.SplitN. */
function splitN(s: string, sep: string, n: number): string[] {
  const out: string[] = [];
  let rest = s;
  while (out.length < n - 1) {
    const i = rest.indexOf(sep);
    if (i < 0) break;
    out.push(rest.slice(0, i));
    rest = rest.slice(i + sep.length);
  }
  out.push(rest);
  return out;
}

/** A request target (`/path?query`, or absolute-form) → its raw path and raw query. */
export function splitTarget(url: string): { path: string; query: string | undefined } {
  let target = url;
  const abs = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\/[^/?#]*/.exec(target);
  if (abs) target = target.slice(abs[0].length) || '/';
  const q = target.indexOf('?');
  return q < 0 ? { path: target, query: undefined } : { path: target.slice(0, q), query: target.slice(q + 1) };
}

// ---------------------------------------------------------------------------------------------
// Credentials

export type TokenSource = 'header' | 'query' | 'cookie';

export interface TokenLocations {
  /** --authz-cookie-query-param: the URL parameter that bootstraps the cookie. */
  queryParam?: string;
  /** --authz-cookie-name. */
  cookieName?: string;
}

/** Go's BearerTokenFromRequest: "Bearer " (any case), then the token, trimmed. */
export function bearerToken(authorization: string | undefined): string | undefined {
  if (!authorization || authorization.length < 7) return undefined;
  if (authorization.slice(0, 7).toLowerCase() !== 'bearer ') return undefined;
  const token = authorization.slice(7).trim();
  return token || undefined;
}

/** Upstream's TokenFromRequest: Authorization header, then query parameter, then cookie. */
export function tokenFromRequest(
  headers: { authorization?: string; cookie?: string },
  rawQuery: string | undefined,
  loc: TokenLocations,
): { token: string; source: TokenSource } | undefined {
  const fromHeader = bearerToken(headers.authorization);
  if (fromHeader) return { token: fromHeader, source: 'header' };
  if (loc.queryParam) {
    const v = queryGet(rawQuery, loc.queryParam);
    if (v) return { token: v, source: 'query' };
  }
  if (loc.cookieName) {
    const v = readCookie(headers.cookie, loc.cookieName);
    if (v) return { token: v, source: 'cookie' };
  }
  return undefined;
}

/** Go's url.QueryUnescape ("+" is a space); undefined for a malformed escape. */
function queryUnescape(s: string): string | undefined {
  const spaced = s.replace(/\+/g, ' ');
  if (/%(?![0-9a-fA-F]{2})/.test(spaced)) return undefined;
  try {
    return decodeURIComponent(spaced);
  } catch {
    // Bytes that are not UTF-8: one char per byte.
    return pathUnescape(spaced);
  }
}

/** Go's url.Values.Get over r.URL.Query(): the first value of `name` (pairs with ";" are dropped). */
export function queryGet(rawQuery: string | undefined, name: string): string | undefined {
  if (!rawQuery) return undefined;
  for (const pair of rawQuery.split('&')) {
    if (!pair || pair.includes(';')) continue;
    const eq = pair.indexOf('=');
    const key = queryUnescape(eq < 0 ? pair : pair.slice(0, eq));
    const value = queryUnescape(eq < 0 ? '' : pair.slice(eq + 1));
    if (key === undefined || value === undefined) continue;
    if (key === name) return value;
  }
  return undefined;
}

/** Upstream's stripQueryParam: drops every pair named `name`, leaving the others byte for byte. */
export function stripQueryParam(rawQuery: string | undefined, name: string | undefined): string | undefined {
  if (!name || !rawQuery) return rawQuery;
  const pairs = rawQuery.split('&');
  const kept = pairs.filter((p) => {
    const eq = p.indexOf('=');
    return queryUnescape(eq < 0 ? p : p.slice(0, eq)) !== name;
  });
  return kept.length === pairs.length ? rawQuery : kept.join('&');
}

const COOKIE_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** Go's Request.Cookie(name).Value: the first cookie of that name with a valid value, quotes removed. */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const p = part.trim();
    if (!p) continue;
    const eq = p.indexOf('=');
    const key = eq < 0 ? p : p.slice(0, eq);
    if (key !== name || !COOKIE_NAME.test(key)) continue;
    let value = eq < 0 ? '' : p.slice(eq + 1);
    if (value.length > 1 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    // Go's validCookieValueByte: printable ASCII (space included) but for '"', ';' and '\'.
    if (!/^[\x20-\x7e]*$/.test(value) || /["\\;]/.test(value)) continue;
    if (value) return value;
  }
  return undefined;
}

/** Upstream's stripCookieFromHeader: the session cookie never reaches the sandbox; the app's own do. */
export function stripCookie(header: string, name: string): string {
  return header
    .split(';')
    .map((p) => p.trim())
    .filter((p) => (p.indexOf('=') < 0 ? p : p.slice(0, p.indexOf('='))) !== name)
    .join('; ');
}

/** RFC 6265 cookie-octet: what a cookie can carry unchanged. */
export function validCookieValue(s: string): boolean {
  return s.length > 0 && /^[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]+$/.test(s);
}

// ---------------------------------------------------------------------------------------------
// Scoped tokens (authz/scopedtoken.go): v1.<base64url JSON {ns,name,exp}>.<base64url HMAC-SHA256>

const SCOPED_VERSION = 'v1';
const SCOPED_MAC_CONTEXT = `agent-sandbox/scoped-token/${SCOPED_VERSION}.`;
export const MIN_SCOPED_SECRET_BYTES = 32;

/** Go's bytes.TrimSpace, then upstream's minimum length: every token seen is an oracle for the secret. */
export function scopedSecret(secret: Buffer | string): Buffer {
  const trimmed = Buffer.from(Buffer.from(secret).toString('latin1').trim(), 'latin1');
  if (trimmed.length < MIN_SCOPED_SECRET_BYTES)
    throw new Error(
      `scopedtoken: secret must be at least ${MIN_SCOPED_SECRET_BYTES} bytes after trimming whitespace, got ${trimmed.length}`,
    );
  return trimmed;
}

const sign = (secret: Buffer, encPayload: string) =>
  createHmac('sha256', secret).update(SCOPED_MAC_CONTEXT).update(encPayload).digest();

/** Upstream's MintScopedToken: a token for one sandbox, valid for ttlS seconds. */
export function mintScopedToken(secret: Buffer | string, namespace: string, name: string, ttlS: number): string {
  const key = scopedSecret(secret);
  if (!namespace || !name) throw new Error('scopedtoken: namespace and name are required');
  if (!(ttlS >= 1)) throw new Error('scopedtoken: ttl must be at least 1s');
  const payload = Buffer.from(
    JSON.stringify({ ns: namespace, name, exp: Math.floor(Date.now() / 1000 + ttlS) }),
  ).toString('base64url');
  return `${SCOPED_VERSION}.${payload}.${sign(key, payload).toString('base64url')}`;
}

const BASE64URL = /^[A-Za-z0-9_-]*$/;
const decodeB64 = (s: string) => (BASE64URL.test(s) && s.length % 4 !== 1 ? Buffer.from(s, 'base64url') : undefined);

/** The token's (namespace, name) when its signature holds and it has not expired. */
export function verifyScopedToken(
  secret: Buffer,
  token: string,
  nowS = Date.now() / 1000,
): { namespace: string; name: string } | undefined {
  const dot = token.indexOf('.');
  if (dot < 0 || token.slice(0, dot) !== SCOPED_VERSION) return undefined;
  const rest = token.slice(dot + 1);
  const dot2 = rest.indexOf('.');
  if (dot2 < 0) return undefined;
  const encPayload = rest.slice(0, dot2);
  const sig = decodeB64(rest.slice(dot2 + 1));
  const want = sign(secret, encPayload);
  if (!sig || sig.length !== want.length || !timingSafeEqual(sig, want)) return undefined;
  const payload = decodeB64(encPayload);
  if (!payload) return undefined;
  let claims: unknown;
  try {
    claims = JSON.parse(payload.toString('utf8'));
  } catch {
    return undefined;
  }
  if (!claims || typeof claims !== 'object' || Array.isArray(claims)) return undefined;
  const { ns = '', name = '', exp = 0 } = claims as Record<string, unknown>;
  if (typeof ns !== 'string' || typeof name !== 'string' || typeof exp !== 'number' || !Number.isInteger(exp))
    return undefined;
  if (Math.floor(nowS) >= exp) return undefined;
  return { namespace: ns, name };
}

// ---------------------------------------------------------------------------------------------
// The session cookie

export type SameSite = 'lax' | 'strict' | 'none';

export interface CookieSessionOptions {
  /** --authz-cookie-name */
  name: string;
  /** --authz-cookie-query-param */
  queryParam?: string;
  /** --authz-cookie-samesite (default lax) */
  sameSite?: SameSite;
  /** --authz-cookie-insecure: no Secure attribute (plain-HTTP development only). */
  insecure?: boolean;
  /** --authz-cookie-allowed-origins: scheme://host[:port] */
  allowedOrigins?: string[];
  /** --authz-trust-forwarded-proto */
  trustForwardedProto?: boolean;
}

/** Upstream's bootstrapCookiePath: the cookie is sent back for this one sandbox and port only. */
export function cookiePath(prefix: string, r: { namespace: string; id: string; port: number }): string {
  return `${prefix}/${r.namespace}/${r.id}/${r.port}/`;
}

/** Go's http.Cookie.String() for the session cookie: no Max-Age or Expires (a browser-session cookie). */
export function sessionCookie(o: CookieSessionOptions, value: string, path: string): string {
  const sameSite = { lax: 'Lax', strict: 'Strict', none: 'None' }[o.sameSite ?? 'lax'];
  return `${o.name}=${value}; Path=${path}; HttpOnly${o.insecure ? '' : '; Secure'}; SameSite=${sameSite}`;
}

/** Go's path.Clean (keeping a trailing slash, as http.Redirect does). */
function cleanPath(p: string): string {
  const out: string[] = [];
  for (const seg of p.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') out.pop();
    else out.push(seg);
  }
  const cleaned = `/${out.join('/')}`;
  return p.endsWith('/') && cleaned !== '/' ? `${cleaned}/` : cleaned;
}

/**
 * Where the bootstrap redirect sends the browser: the same path (cleaned as Go's http.Redirect
 * cleans it) with the credential's parameter gone. Always a path on this router: it starts with
 * one "/", and anything that a browser could read as another host ("\", non-ASCII, controls) is
 * percent-encoded, so no request can make it an open redirect.
 */
export function bootstrapLocation(rawPath: string, rawQuery: string | undefined, param: string): string {
  const path = cleanPath(rawPath).replace(/[^A-Za-z0-9\-._~!$&'()*+,;=:@/%]/g, (c) =>
    Buffer.from(c, 'utf8')
      .toString('hex')
      .replace(/../g, (h) => `%${h.toUpperCase()}`),
  );
  const query = stripQueryParam(rawQuery, param);
  return `${path.startsWith('/') && !path.startsWith('//') ? path : '/'}${query ? `?${query}` : ''}`;
}

/** Go's http.Redirect body for a GET. */
export function redirectBody(location: string): string {
  const esc = location.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&#34;', "'": '&#39;' })[c]!,
  );
  return `<a href="${esc}">Found</a>.\n\n`;
}

/** scheme://host without the scheme's default port, so "https://h:443" and "https://h" are one origin. */
export function normalizeOrigin(o: string): string {
  const m = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\/([^/?#@]*?)(?::(\d*))?$/.exec(o);
  if (!m) return o;
  const [, scheme, host, port] = m;
  if ((scheme!.toLowerCase() === 'http' && port === '80') || (scheme!.toLowerCase() === 'https' && port === '443'))
    return `${scheme}://${host}`;
  return o;
}

/** The router's own origin as the client sees it (upstream's requestOrigin). */
export function requestOrigin(
  headers: { host?: string; 'x-forwarded-proto'?: string | string[] },
  tls: boolean,
  trustForwardedProto: boolean,
): string {
  let scheme = tls ? 'https' : 'http';
  const fwd = headers['x-forwarded-proto'];
  const first = (Array.isArray(fwd) ? fwd[0] : fwd)?.split(',')[0]?.trim().toLowerCase();
  if (trustForwardedProto && first) scheme = first;
  return `${scheme}://${headers.host ?? ''}`;
}

/** Upstream's isAllowedOrigin: no Origin, the router's own, or one on the allowlist. */
export function isAllowedOrigin(origin: string | undefined, selfOrigin: string, allowed: string[] = []): boolean {
  if (!origin) return true;
  const o = normalizeOrigin(origin).toLowerCase();
  if (o === normalizeOrigin(selfOrigin).toLowerCase()) return true;
  return allowed.some((a) => normalizeOrigin(a).toLowerCase() === o);
}

const TOKEN_NAME = /^[A-Za-z0-9\-_.~]+$/;

/** Upstream's Config.Validate for the options that touch path routing and the cookie. */
export function validateBrowserOptions(o: {
  pathRoutingPrefix?: string;
  cookie?: CookieSessionOptions;
  authenticated: boolean;
}): void {
  const p = o.pathRoutingPrefix;
  if (p !== undefined && p !== '') {
    if (!p.startsWith('/')) throw new Error(`--path-routing-prefix must start with "/", got "${p}"`);
    if (p.endsWith('/')) throw new Error(`--path-routing-prefix must not end with "/", got "${p}"`);
    // Upstream refuses whitespace and controls; we also refuse what would end a cookie attribute,
    // a query or a fragment, and non-ASCII (the prefix goes into the cookie's Path).
    if (!/^[\x21-\x7e]+$/.test(p) || /[;?#,]/.test(p))
      throw new Error(`--path-routing-prefix must be printable ASCII without ";", ",", "?" or "#", got "${p}"`);
  }
  const c = o.cookie;
  if (!c) return;
  if (!p) throw new Error('--authz-cookie-name requires --path-routing-prefix');
  if (!o.authenticated)
    throw new Error('--authz-cookie-name has no effect without authentication (the router lets every request in)');
  if (!TOKEN_NAME.test(c.name)) throw new Error(`--authz-cookie-name "${c.name}" must be a valid cookie-name token`);
  if (c.queryParam !== undefined && !TOKEN_NAME.test(c.queryParam))
    throw new Error(`--authz-cookie-query-param "${c.queryParam}" must be a valid token`);
  if (c.sameSite !== undefined && !['lax', 'strict', 'none'].includes(c.sameSite))
    throw new Error(`invalid --authz-cookie-samesite "${String(c.sameSite)}" (want lax, strict, or none)`);
  if (c.sameSite === 'none' && c.insecure)
    throw new Error(
      '--authz-cookie-samesite=none requires the cookie to be Secure; it is incompatible with --authz-cookie-insecure',
    );
  for (const origin of c.allowedOrigins ?? [])
    if (!/^[a-zA-Z][a-zA-Z0-9+.-]*:\/\/[^/?#@\s]+$/.test(origin))
      throw new Error(
        `--authz-cookie-allowed-origins entry "${origin}" must have the form scheme://host[:port], with no path/query/fragment`,
      );
}
