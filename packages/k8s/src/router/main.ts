// sandbox-router: configured by the environment as upstream's (ROUTER_AUTH_TOKEN,
// ALLOW_UNAUTHENTICATED_ROUTER, CLUSTER_DOMAIN, PROXY_TIMEOUT_SECONDS), on :8080; ROUTER_BACKEND
// (ours) sends every sandbox's traffic to one address; ROUTER_MAX_HEADER_BYTES,
// ROUTER_HEADERS_TIMEOUT_SECONDS, ROUTER_BODY_IDLE_TIMEOUT_SECONDS and ROUTER_MAX_CONNECTIONS
// (ours) bound slow, oversized and too many clients.
import type { AddressInfo } from 'node:net';
import { limitFromEnv } from '@asb/http-guard';
import { createRouter, parseBackend, ROUTER_LIMITS } from './router.ts';

export function routerFromEnv(env: NodeJS.ProcessEnv = process.env) {
  return createRouter({
    token: env.ROUTER_AUTH_TOKEN || undefined,
    allowUnauthenticated: env.ALLOW_UNAUTHENTICATED_ROUTER === 'true',
    clusterDomain: env.CLUSTER_DOMAIN || undefined,
    backend: env.ROUTER_BACKEND ? parseBackend(env.ROUTER_BACKEND) : undefined,
    proxyTimeoutS: env.PROXY_TIMEOUT_SECONDS ? Number(env.PROXY_TIMEOUT_SECONDS) : undefined,
    log: (msg, fields) => process.stderr.write(JSON.stringify({ msg, ...fields }) + '\n'),
    limits: {
      maxHeaderBytes: limitFromEnv(env, 'ROUTER_MAX_HEADER_BYTES', ROUTER_LIMITS.maxHeaderBytes),
      headersTimeoutMs:
        limitFromEnv(env, 'ROUTER_HEADERS_TIMEOUT_SECONDS', ROUTER_LIMITS.headersTimeoutMs / 1000) * 1000,
      bodyIdleTimeoutMs:
        limitFromEnv(env, 'ROUTER_BODY_IDLE_TIMEOUT_SECONDS', ROUTER_LIMITS.bodyIdleTimeoutMs / 1000) * 1000,
      maxConnections: limitFromEnv(env, 'ROUTER_MAX_CONNECTIONS', ROUTER_LIMITS.maxConnections),
    },
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const server = routerFromEnv();
  const port = Number(process.env.PORT ?? 8080);
  // The port actually bound (PORT=0: any free one), for whoever started the router.
  server.listen(port, process.env.HOST ?? '0.0.0.0', () =>
    process.stderr.write(`sandbox-router listening on :${(server.address() as AddressInfo).port}\n`),
  );
  const stop = () => server.close(() => process.exit(0));
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}
