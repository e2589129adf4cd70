// One HTTP server on loopback: bearer-token auth for everything but /healthz, then either the
// sandbox proxy (X-Sandbox-ID present, as on upstream's router) or the engine's API.
//
// Bounded on every input (packages/http-guard): headers by size and by time (node's
// maxHeaderSize and headersTimeout), every body by idleness (a body that stops arriving is
// refused with 408), API bodies by size while they are read (413 past ASB_MAX_API_BODY_BYTES,
// before a byte is read when Content-Length says so) and all together (503 past
// ASB_MAX_API_BODIES_BYTES held at once), connections by number (ASB_MAX_CONNECTIONS; those over
// are closed as accepted). A request refused before its body was read (401, 413, 503, 408)
// closes its connection, so the engine reads nothing more of it.
import http from 'node:http';
import type { Duplex } from 'node:stream';
import { timingSafeEqual } from 'node:crypto';
import { getRequestListener } from '@hono/node-server';
import type { Hono } from 'hono';
import type { Registry } from 'prom-client';
import {
  answer,
  answerClientErrors,
  closeStalled,
  closeWhenAnsweredEarly,
  limitConnections,
  readCappedBody,
  serverOptions,
  watchBodyProgress,
  BodyBudget,
  BodyBudgetError,
  BodyTooLargeError,
} from '@asb/http-guard';
import type { LocalWorkloads } from '../workloads.ts';
import type { EngineConfig } from '../config.ts';
import { EngineError, statusBody, toEngineError } from '../errors.ts';
import { proxyToSandbox, routerError } from './proxy.ts';
import { previewAccess, servePreview, upgradeToPort } from './port-proxy.ts';
import { RUNTIME_PORT, parsePreviewHost } from '../exposed-ports.ts';

export interface ServerOptions {
  token: string;
  maxUploadBytes: number;
  limits: EngineConfig['http'];
  /** Served at /metrics (Prometheus text). */
  metrics?: Registry;
  /** Called for each connection closed as accepted, past ASB_MAX_CONNECTIONS. */
  onConnectionDropped?: () => void;
}

/** One answer for every refused preview: a wrong token, no such sandbox, the runtime API. */
function previewRefused(p: { namespace: string; name: string; port: number }): EngineError {
  return new EngineError(
    'Unauthorized',
    `this preview of port ${p.port} needs its token: \`asb url ${p.name} ${p.port}${p.namespace === 'default' ? '' : ` -n ${p.namespace}`}\` prints the URL with it (the runtime API, port 8888, has no preview)`,
  );
}

function authorized(header: string | undefined, token: string): boolean {
  if (!header?.startsWith('Bearer ')) return false;
  const given = Buffer.from(header.slice(7));
  const want = Buffer.from(token);
  return given.length === want.length && timingSafeEqual(given, want);
}

/** What node refused before a handler ran (header block too large or too slow, malformed HTTP). */
const clientErrorBody = (status: number, message: string) => {
  const reason = status === 431 ? 'RequestHeaderFieldsTooLarge' : status === 408 ? 'RequestTimeout' : 'BadRequest';
  return { contentType: 'application/json', text: JSON.stringify(statusBody(reason, message)) };
};

function refuse(req: http.IncomingMessage, res: http.ServerResponse, err: EngineError): void {
  answer(req, res, {
    status: err.status,
    contentType: 'application/json',
    text: JSON.stringify(statusBody(err.reason, err.message, err.causes)),
  });
}

export function createEngineServer(api: Hono, sandboxes: LocalWorkloads, opts: ServerOptions): http.Server {
  const { limits } = opts;
  // The body is read (capped) before Hono sees the request and handed over whole as rawBody:
  // nothing is left for @hono/node-server to drain, so its clean-up is off.
  const apiListener = getRequestListener(api.fetch, {
    autoCleanupIncoming: false,
    errorHandler: (err) =>
      new Response(JSON.stringify(statusBody('BadRequest', `bad request: ${(err as Error).message}`)), {
        status: 400,
        headers: { 'content-type': 'application/json' },
      }),
  });
  const bodies = new BodyBudget(limits.maxApiBodiesBytes);
  const stalled = new EngineError(
    'RequestTimeout',
    `the request body stopped arriving: nothing for ${limits.bodyIdleTimeoutMs} ms (ASB_BODY_IDLE_TIMEOUT_MS)`,
  );

  const serveApi = async (req: http.IncomingMessage, res: http.ServerResponse) => {
    let body: Buffer;
    try {
      body = await readCappedBody(req, limits.maxApiBodyBytes, bodies);
    } catch (err) {
      if (err instanceof BodyTooLargeError) {
        refuse(
          req,
          res,
          new EngineError(
            'PayloadTooLarge',
            `${err.message} (ASB_MAX_API_BODY_BYTES); uploads of files go to the sandbox (X-Sandbox-ID), up to ASB_MAX_UPLOAD_BYTES`,
          ),
        );
      } else if (err instanceof BodyBudgetError) {
        res.setHeader('retry-after', '1');
        refuse(req, res, new EngineError('Unavailable', `${err.message} (ASB_MAX_API_BODIES_BYTES)`));
      }
      return; // aborted: the client is gone, or the watchdog answered already
    }
    (req as http.IncomingMessage & { rawBody?: Buffer }).rawBody = body;
    await apiListener(req, res);
  };

  const watchBody = (req: http.IncomingMessage, res: http.ServerResponse) =>
    watchBodyProgress(req, limits.bodyIdleTimeoutMs, () =>
      closeStalled(req, res, {
        status: stalled.status,
        contentType: 'application/json',
        text: JSON.stringify(statusBody(stalled.reason, stalled.message)),
      }),
    );
  const server = http.createServer(serverOptions(limits), (req, res) => {
    if (req.url === '/healthz' && req.method === 'GET') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"status":"ok"}');
      return;
    }
    // A preview host (`<port>-<sandbox>.<namespace>.localhost`): a browser with the preview token.
    const preview = parsePreviewHost(req.headers.host);
    if (preview) {
      const engineToken = authorized(req.headers.authorization, opts.token);
      const access = previewAccess(req, preview, sandboxes, opts.token, engineToken);
      if (!access.ok) return refuse(req, res, previewRefused(preview));
      watchBody(req, res);
      closeWhenAnsweredEarly(req, res);
      void servePreview(req, res, preview, access, sandboxes).catch((err: unknown) =>
        routerError(res, toEngineError(err)),
      );
      return;
    }
    if (!authorized(req.headers.authorization, opts.token)) {
      refuse(
        req,
        res,
        new EngineError(
          'Unauthorized',
          'missing or wrong bearer token: send "Authorization: Bearer <token>" with the token from $ASB_HOME/token (asb engine status prints where it is)',
        ),
      );
      return;
    }
    watchBody(req, res);
    if (req.url === '/metrics' && req.method === 'GET' && opts.metrics) {
      const registry = opts.metrics;
      void registry.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': registry.contentType });
          res.end(text);
        },
        (err: Error) => refuse(req, res, new EngineError('Internal', `metrics: ${err.message}`)),
      );
      return;
    }
    if (req.headers['x-sandbox-id'] !== undefined) {
      // The sandbox may answer before it has read the whole body (413, 404): the rest is not read.
      closeWhenAnsweredEarly(req, res);
      void proxyToSandbox(req, res, sandboxes, opts.maxUploadBytes);
      return;
    }
    void serveApi(req, res);
  });
  // Upgrades (WebSockets) are for a sandbox's own servers (an exposed port); the runtime API has none.
  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    const refuseUpgrade = (err: EngineError) => {
      const body = JSON.stringify(statusBody(err.reason, err.message));
      socket.end(
        `HTTP/1.1 ${err.status} ${http.STATUS_CODES[err.status] ?? ''}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
      );
    };
    socket.on('error', () => socket.destroy());
    const engineToken = authorized(req.headers.authorization, opts.token);
    const preview = parsePreviewHost(req.headers.host);
    if (preview) {
      const access = previewAccess(req, preview, sandboxes, opts.token, engineToken);
      if (!access.ok) return refuseUpgrade(previewRefused(preview));
      upgradeToPort(req, socket, head, sandboxes, preview.namespace, preview.name, preview.port, access).catch(
        (err: unknown) => refuseUpgrade(toEngineError(err)),
      );
      return;
    }
    if (!engineToken) return refuseUpgrade(new EngineError('Unauthorized', 'missing or wrong bearer token'));
    const id = String(req.headers['x-sandbox-id'] ?? '');
    const namespace = String(req.headers['x-sandbox-namespace'] ?? 'default');
    const port = Number(req.headers['x-sandbox-port'] ?? RUNTIME_PORT);
    if (!id || !Number.isInteger(port) || port < 1 || port > 65535 || port === RUNTIME_PORT)
      return refuseUpgrade(
        new EngineError('BadRequest', 'an upgrade goes to a sandbox port: X-Sandbox-ID and X-Sandbox-Port (not 8888)'),
      );
    upgradeToPort(req, socket, head, sandboxes, namespace, id, port).catch((err: unknown) =>
      refuseUpgrade(toEngineError(err)),
    );
  });
  answerClientErrors(
    server,
    { ...limits, headerHint: 'ASB_MAX_HEADER_BYTES', timeoutHint: 'ASB_HEADERS_TIMEOUT_MS' },
    clientErrorBody,
  );
  limitConnections(server, limits.maxConnections, opts.onConnectionDropped);
  // Many SDK calls reuse one connection; keep it open between calls.
  server.keepAliveTimeout = 65_000;
  return server;
}
