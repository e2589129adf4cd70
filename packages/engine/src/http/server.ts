// One HTTP server on loopback: bearer-token auth for everything but /healthz, then either the
// sandbox proxy (X-Sandbox-ID present, as on upstream's router) or the engine's API.
import http from 'node:http';
import { timingSafeEqual } from 'node:crypto';
import { getRequestListener } from '@hono/node-server';
import type { Hono } from 'hono';
import type { Registry } from 'prom-client';
import type { LocalWorkloads } from '../workloads.ts';
import { EngineError } from '../errors.ts';
import { proxyToSandbox, routerError } from './proxy.ts';

export interface ServerOptions {
  token: string;
  maxUploadBytes: number;
  /** Served at /metrics (Prometheus text). */
  metrics?: Registry;
}

function authorized(header: string | undefined, token: string): boolean {
  if (!header?.startsWith('Bearer ')) return false;
  const given = Buffer.from(header.slice(7));
  const want = Buffer.from(token);
  return given.length === want.length && timingSafeEqual(given, want);
}

export function createEngineServer(api: Hono, sandboxes: LocalWorkloads, opts: ServerOptions): http.Server {
  const apiListener = getRequestListener(api.fetch);
  const server = http.createServer((req, res) => {
    if (req.url === '/healthz' && req.method === 'GET') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"status":"ok"}');
      return;
    }
    if (!authorized(req.headers.authorization, opts.token)) {
      req.resume();
      routerError(res, new EngineError('Unauthorized', 'missing or wrong bearer token: send "Authorization: Bearer <token>" with the token from $ASB_HOME/token (asb engine status prints where it is)'));
      return;
    }
    if (req.url === '/metrics' && req.method === 'GET' && opts.metrics) {
      const registry = opts.metrics;
      void registry.metrics().then((text) => { res.writeHead(200, { 'content-type': registry.contentType }); res.end(text); }, (err: Error) => routerError(res, new EngineError('Internal', `metrics: ${err.message}`)));
      return;
    }
    if (req.headers['x-sandbox-id'] !== undefined) {
      void proxyToSandbox(req, res, sandboxes, opts.maxUploadBytes);
      return;
    }
    void apiListener(req, res);
  });
  // Many SDK calls reuse one connection; keep it open between calls.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  server.requestTimeout = 0; // long-running commands stream for as long as they run
  return server;
}
