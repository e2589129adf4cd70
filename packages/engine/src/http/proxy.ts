// Requests that carry X-Sandbox-ID are the runtime API of one sandbox: they are streamed, both
// ways and unbuffered, to that sandbox's agent. Same header protocol as upstream's router, so a
// client speaks to the local engine and to a Kubernetes router alike.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import { readCappedBody } from '@asb/http-guard';
import { EXEC_LANE_MAX_BODY, type ExecLane } from '../workloads/exec-lane.ts';
import type { LocalWorkloads } from '../workloads.ts';
import { proxyToPort } from './port-proxy.ts';
import { RUNTIME_PORT } from '../exposed-ports.ts';
import { EngineError, statusBody, toEngineError } from '../errors.ts';

export const MAX_UPLOAD_BYTES_DEFAULT = 256 * 1024 * 1024;
const NAMESPACE_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export function routerError(res: ServerResponse, err: EngineError): void {
  if (res.headersSent) {
    res.destroy(err);
    return;
  }
  res.writeHead(err.status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(statusBody(err.reason, err.message, err.causes)));
}

/** What the exec lane serves: streamed commands, and upstream's buffered /execute. */
const LANE_ROUTES: Record<string, (lane: ExecLane, body: Buffer, res: ServerResponse) => boolean> = {
  '/v1/exec': (lane, body, res) => lane.serve(body, res),
  '/execute': (lane, body, res) => lane.serveExecute(body, res),
};

/** decodeURIComponent's rule: every % starts an escape, and the escapes spell UTF-8. */
function isValidUriEncoding(path: string): boolean {
  try {
    decodeURIComponent(path);
    return true;
  } catch {
    return false;
  }
}

export async function proxyToSandbox(
  req: IncomingMessage,
  res: ServerResponse,
  sandboxes: LocalWorkloads,
  maxUploadBytes: number,
): Promise<void> {
  try {
    const id = String(req.headers['x-sandbox-id'] ?? '');
    const namespace = String(req.headers['x-sandbox-namespace'] ?? 'default');
    if (!id) throw new EngineError('BadRequest', 'X-Sandbox-ID header is required.');
    if (!NAMESPACE_RE.test(namespace)) throw new EngineError('BadRequest', 'Invalid namespace format.');
    const port = req.headers['x-sandbox-port'];
    if (port !== undefined && (!/^\d{1,5}$/.test(String(port)) || Number(port) < 1 || Number(port) > 65535))
      throw new EngineError('BadRequest', 'Invalid port format.');
    // The runtime API is the sandbox's port 8888, as on Kubernetes; any other port the sandbox
    // declares is its own server's, reached through the agent's tunnel (port-proxy.ts).
    if (port !== undefined && Number(port) !== RUNTIME_PORT) {
      await proxyToPort(req, res, sandboxes, namespace, id, Number(port));
      return;
    }
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > maxUploadBytes) {
      // Refuse before reading a byte: the client learns the limit, the engine spends nothing
      // (the server closes the connection after an answer given before the body: http-guard).
      throw new EngineError(
        'PayloadTooLarge',
        `request body of ${declared} bytes exceeds the limit of ${maxUploadBytes} bytes (ASB_MAX_UPLOAD_BYTES)`,
      );
    }
    // A path that is not valid percent-encoding is refused here with the agent's own answer: an
    // HTTP/2 server (the Go agent's) resets such a stream before any handler sees it.
    const path = (req.url ?? '/').split('?')[0]!;
    if (!isValidUriEncoding(path)) throw new EngineError('Invalid', `path "${path}" is not valid URL encoding`);
    const agent = await sandboxes.agentOf(namespace, id);
    const headers: Record<string, string | string[] | undefined> = {};
    for (const [k, v] of Object.entries(req.headers)) {
      if (k.startsWith('x-sandbox-') || k === 'authorization' || k === 'host') continue;
      headers[k] = v;
    }
    const hasBody = req.method !== 'GET' && req.method !== 'HEAD';
    let body: Readable | Buffer | undefined = hasBody ? req : undefined;
    // A foreground command (/v1/exec, upstream's /execute) goes through the sandbox's exec lane
    // when it has one (exec-lane.ts), its body read whole to decide; what the lane does not take
    // goes to the agent with it.
    const laneRoute = req.method === 'POST' ? LANE_ROUTES[req.url ?? ''] : undefined;
    if (laneRoute && declared > 0 && declared <= EXEC_LANE_MAX_BODY) {
      const lane = sandboxes.execLaneOf(namespace, id);
      if (lane) {
        body = await readCappedBody(req, EXEC_LANE_MAX_BODY);
        if (laneRoute(lane, body, res)) return;
      }
    }
    const upstream = await agent.request(req.method ?? 'GET', req.url ?? '/', headers, body);
    const out: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(upstream.headers)) if (!k.startsWith(':') && v !== undefined) out[k] = v;
    res.writeHead(upstream.status, out);
    // NDJSON streams must reach the client event by event.
    res.flushHeaders();
    upstream.body.pipe(res);
    upstream.body.on('error', (err: Error) => res.destroy(err));
    // Closed before its end without an error (the sandbox stopped mid-answer): the client's
    // answer is cut, not left open, so it learns at once that it is incomplete.
    upstream.body.on('close', () => {
      if (!upstream.body.readableEnded) res.destroy();
    });
    // A client that went away mid-response cancels the agent's stream. One that was answered in
    // full must not: a reset of a finished stream is a frame the agent's nghttp2 counts against
    // its flood limit (1,000, refilled at 33 a second), and past it the agent ends the whole
    // connection with GOAWAY: every sandbox died after ~1,100 quick requests.
    res.on('close', () => {
      if (!upstream.body.destroyed && !upstream.body.readableEnded) upstream.body.destroy();
    });
  } catch (err) {
    routerError(res, toEngineError(err));
  }
}
