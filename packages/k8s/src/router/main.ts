// sandbox-router: configured by the environment as upstream's Python router (ROUTER_AUTH_TOKEN,
// ALLOW_UNAUTHENTICATED_ROUTER, CLUSTER_DOMAIN, PROXY_TIMEOUT_SECONDS), on :8080 (PORT, HOST), and
// by the flags of v1.0.1's Go router for what that router added (path routing, scoped tokens,
// browser sessions, dial retries, probes); a flag wins over the environment. ROUTER_BACKEND
// (ours) sends every sandbox's traffic to one address; ROUTER_MAX_HEADER_BYTES,
// ROUTER_HEADERS_TIMEOUT_SECONDS, ROUTER_BODY_IDLE_TIMEOUT_SECONDS and ROUTER_MAX_CONNECTIONS
// (ours) bound slow, oversized and too many clients. Go router flags for what this router does
// not do (metrics, tracing, the pod cache) are accepted and logged as ignored; those whose absence
// would change what a client sees (TLS, mTLS, TokenReview, a body cap, a config file) are refused.
import http from 'node:http';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { limitFromEnv } from '@asb/http-guard';
import { createRouter, parseBackend, ROUTER_LIMITS, type RouterOptions } from './router.ts';
import type { SameSite } from './session.ts';

const BOOL_FLAGS = new Set([
  'allow-loopback-pod-ip',
  'authz-cookie-insecure',
  'authz-trust-forwarded-proto',
  'authz-tokenreview-require-token',
  'access-log',
  'cache-enabled',
  'enable-tracing',
  'enable-otel-metrics',
  'version',
]);
const VALUE_FLAGS = new Set([
  'http-bind-address',
  'https-bind-address',
  'health-probe-bind-address',
  'metrics-bind-address',
  'cluster-domain',
  'proxy-timeout',
  'response-header-timeout',
  'shutdown-timeout',
  'upstream-max-retries',
  'upstream-retry-initial-delay',
  'upstream-retry-max-delay',
  'max-request-body-bytes',
  'path-routing-prefix',
  'authz-mode',
  'authz-scoped-token-secret-file',
  'authz-tokenreview-ttl',
  'authz-tokenreview-cache-size',
  'authz-tokenreview-audiences',
  'authz-cookie-name',
  'authz-cookie-query-param',
  'authz-cookie-samesite',
  'authz-cookie-allowed-origins',
  'tls-cert-file',
  'tls-key-file',
  'tls-client-ca-file',
  'mtls-mode',
  'cache-namespace',
  'kubeconfig',
  'config',
]);
/** Accepted so that upstream's Deployment args run unchanged; this router does not do these. */
const IGNORED = new Set([
  'metrics-bind-address',
  'enable-tracing',
  'enable-otel-metrics',
  'access-log',
  'cache-enabled',
  'cache-namespace',
  'kubeconfig',
  'response-header-timeout',
  'authz-tokenreview-ttl',
  'authz-tokenreview-cache-size',
  'authz-tokenreview-audiences',
  'authz-tokenreview-require-token',
]);

/** Go's flag package: -name or --name, =value or (not for booleans) the next argument. */
export function parseFlags(args: string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--' || !arg.startsWith('-') || arg === '-') break;
    const body = arg.replace(/^--?/, '');
    const eq = body.indexOf('=');
    const name = eq < 0 ? body : body.slice(0, eq);
    // controller-runtime's zap flags ride along in upstream's binary.
    if (name.startsWith('zap-')) {
      if (eq < 0 && !['zap-devel'].includes(name)) i++;
      continue;
    }
    if (BOOL_FLAGS.has(name)) {
      const v = eq < 0 ? 'true' : body.slice(eq + 1);
      if (!['true', 'false', '1', '0', 't', 'f', 'TRUE', 'FALSE', 'True', 'False'].includes(v))
        throw new Error(`invalid boolean value "${v}" for -${name}`);
      out.set(name, String(['true', '1', 't', 'TRUE', 'True'].includes(v)));
    } else if (VALUE_FLAGS.has(name)) {
      if (eq >= 0) out.set(name, body.slice(eq + 1));
      else if (i + 1 < args.length) out.set(name, args[++i]!);
      else throw new Error(`flag needs an argument: -${name}`);
    } else throw new Error(`flag provided but not defined: -${name}`);
  }
  return out;
}

/** Go's time.ParseDuration ("180s", "1m30s", "500ms"), in milliseconds. */
export function parseDuration(text: string): number {
  const units: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  if (text === '0') return 0;
  const m = /^([+-]?)((?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|ms|s|m|h))+$/.exec(text);
  if (!m) throw new Error(`time: invalid duration "${text}"`);
  let ms = 0;
  for (const [, n, u] of text.matchAll(/(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/g)) ms += Number(n) * units[u!]!;
  return m[1] === '-' ? -ms : ms;
}

/** ":8080" / "host:port" / "[::1]:8080" → where to listen. */
export function parseBindAddress(text: string): { host?: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(text);
  if (!m || Number(m[3]) > 65535) throw new Error(`invalid bind address "${text}" (want [host]:port)`);
  return { host: m[1] ?? (m[2] || undefined), port: Number(m[3]) };
}

export interface RouterMain {
  options: RouterOptions;
  listen: { host: string; port: number };
  probes?: { host?: string; port: number };
  shutdownTimeoutMs: number;
  ignored: string[];
  version?: boolean;
}

/** The router's configuration from its flags and environment. Throws on what it cannot honour. */
export function routerConfig(args: string[], env: NodeJS.ProcessEnv = process.env): RouterMain {
  const f = parseFlags(args);
  const refuse = (name: string, why: string) => {
    throw new Error(`--${name} is not supported by this router: ${why}`);
  };
  if (f.get('https-bind-address')) refuse('https-bind-address', 'TLS terminates in front of it (a Gateway)');
  for (const name of ['tls-cert-file', 'tls-key-file', 'tls-client-ca-file'])
    if (f.get(name)) refuse(name, 'TLS terminates in front of it (a Gateway)');
  if ((f.get('mtls-mode') ?? 'off') !== 'off') refuse('mtls-mode', 'no TLS listener');
  if (Number(f.get('max-request-body-bytes') ?? 0) !== 0)
    refuse('max-request-body-bytes', 'bodies stream to the sandbox, whose runtime caps them');
  if (f.get('config') || env.SANDBOX_ROUTER_CONFIG) refuse('config', 'configure it by flags and environment');
  const mode = f.get('authz-mode');
  if (mode !== undefined && !['allow-all', 'scoped-token', 'tokenreview'].includes(mode))
    throw new Error(`invalid --authz-mode "${mode}" (want allow-all, tokenreview, or scoped-token)`);
  if (mode === 'tokenreview') refuse('authz-mode=tokenreview', 'use the router token or scoped tokens');

  const secretFile = f.get('authz-scoped-token-secret-file');
  if (mode === 'scoped-token' && !secretFile)
    throw new Error('--authz-scoped-token-secret-file is required when --authz-mode=scoped-token');
  const cookieName = f.get('authz-cookie-name') || undefined;
  for (const name of ['authz-cookie-query-param', 'authz-cookie-allowed-origins', 'authz-trust-forwarded-proto'])
    if (!cookieName && f.get(name) && f.get(name) !== 'false')
      throw new Error(`--${name} requires --authz-cookie-name`);

  const durationS = (name: string) => (f.has(name) ? parseDuration(f.get(name)!) / 1000 : undefined);
  const proxyTimeoutS =
    durationS('proxy-timeout') ?? (env.PROXY_TIMEOUT_SECONDS ? Number(env.PROXY_TIMEOUT_SECONDS) : undefined);
  if (proxyTimeoutS !== undefined && !(proxyTimeoutS > 0)) throw new Error('--proxy-timeout must be positive');
  const retriesText = f.get('upstream-max-retries');
  if (retriesText !== undefined && !/^\d+$/.test(retriesText))
    throw new Error(`--upstream-max-retries must be non-negative, got ${retriesText}`);
  const initial = durationS('upstream-retry-initial-delay');
  const max = durationS('upstream-retry-max-delay');
  if ((initial ?? 0) < 0 || (max ?? 0) < 0) throw new Error('--upstream-retry-*-delay must be non-negative');

  const listen = f.has('http-bind-address')
    ? parseBindAddress(f.get('http-bind-address')!)
    : { host: env.HOST, port: Number(env.PORT ?? 8080) };
  const options: RouterOptions = {
    token: env.ROUTER_AUTH_TOKEN || undefined,
    // A token set is enforced, whatever else says otherwise (upstream's Python router checks
    // ROUTER_AUTH_TOKEN whenever it is set; its ALLOW_UNAUTHENTICATED_ROUTER only permits none).
    allowUnauthenticated:
      !env.ROUTER_AUTH_TOKEN && (env.ALLOW_UNAUTHENTICATED_ROUTER === 'true' || mode === 'allow-all'),
    scopedTokenSecret: secretFile ? readFileSync(secretFile) : undefined,
    clusterDomain: f.get('cluster-domain') || env.CLUSTER_DOMAIN || undefined,
    backend: env.ROUTER_BACKEND ? parseBackend(env.ROUTER_BACKEND) : undefined,
    proxyTimeoutS,
    allowLoopbackPodIp: f.get('allow-loopback-pod-ip') === 'true',
    pathRoutingPrefix: f.get('path-routing-prefix') || undefined,
    cookie: cookieName
      ? {
          name: cookieName,
          queryParam: f.get('authz-cookie-query-param') || undefined,
          sameSite: (f.get('authz-cookie-samesite') ?? 'lax') as SameSite,
          insecure: f.get('authz-cookie-insecure') === 'true',
          allowedOrigins: (f.get('authz-cookie-allowed-origins') ?? '')
            .split(',')
            .map((s) => s.trim())
            .filter(Boolean),
          trustForwardedProto: f.get('authz-trust-forwarded-proto') === 'true',
        }
      : undefined,
    retries: {
      max: retriesText !== undefined ? Number(retriesText) : undefined,
      initialDelayMs: initial !== undefined ? initial * 1000 : undefined,
      maxDelayMs: max !== undefined ? max * 1000 : undefined,
    },
    log: (msg, fields) => process.stderr.write(JSON.stringify({ msg, ...fields }) + '\n'),
    limits: {
      maxHeaderBytes: limitFromEnv(env, 'ROUTER_MAX_HEADER_BYTES', ROUTER_LIMITS.maxHeaderBytes),
      headersTimeoutMs:
        limitFromEnv(env, 'ROUTER_HEADERS_TIMEOUT_SECONDS', ROUTER_LIMITS.headersTimeoutMs / 1000) * 1000,
      bodyIdleTimeoutMs:
        limitFromEnv(env, 'ROUTER_BODY_IDLE_TIMEOUT_SECONDS', ROUTER_LIMITS.bodyIdleTimeoutMs / 1000) * 1000,
      maxConnections: limitFromEnv(env, 'ROUTER_MAX_CONNECTIONS', ROUTER_LIMITS.maxConnections),
    },
  };
  // Undefined retry fields fall back to upstream's defaults in createRouter.
  options.retries = Object.fromEntries(Object.entries(options.retries!).filter(([, v]) => v !== undefined));
  const probeText = f.get('health-probe-bind-address');
  return {
    options,
    listen: { host: listen.host ?? '0.0.0.0', port: listen.port },
    probes: probeText ? parseBindAddress(probeText) : undefined,
    shutdownTimeoutMs: f.has('shutdown-timeout') ? parseDuration(f.get('shutdown-timeout')!) : 30_000,
    ignored: [...f.keys()].filter((k) => IGNORED.has(k)),
    version: f.get('version') === 'true',
  };
}

export function routerFromEnv(env: NodeJS.ProcessEnv = process.env, args: string[] = []) {
  return createRouter(routerConfig(args, env).options);
}

/** /healthz (always {"status":"ok"}) and /readyz (200 "ok" while serving, 503 "draining" after). */
function probeServer(ready: () => boolean): http.Server {
  return http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/healthz') res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
    else if (path === '/readyz') res.writeHead(ready() ? 200 : 503).end(ready() ? 'ok' : 'draining');
    else res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('404 page not found\n');
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  let config: RouterMain;
  try {
    config = routerConfig(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`sandbox-router: ${(err as Error).message}\n`);
    process.exit(2);
  }
  if (config.version) {
    process.stdout.write('sandbox-router (agent-sandbox-ts)\n');
    process.exit(0);
  }
  if (config.ignored.length)
    process.stderr.write(
      `sandbox-router: ignoring flags this router does not implement: ${config.ignored.join(', ')}\n`,
    );
  const server = createRouter(config.options);
  let ready = false;
  const probes = config.probes ? probeServer(() => ready) : undefined;
  // The port actually bound (PORT=0: any free one), for whoever started the router.
  server.listen(config.listen.port, config.listen.host, () => {
    ready = true;
    process.stderr.write(`sandbox-router listening on :${(server.address() as AddressInfo).port}\n`);
  });
  probes?.listen(config.probes!.port, config.probes!.host, () =>
    process.stderr.write(`sandbox-router probes on :${(probes.address() as AddressInfo).port}\n`),
  );
  const stop = () => {
    ready = false;
    probes?.close();
    server.close(() => process.exit(0));
    server.closeIdleConnections();
    setTimeout(() => process.exit(0), config.shutdownTimeoutMs).unref();
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}
