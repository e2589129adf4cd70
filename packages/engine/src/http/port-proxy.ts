// Exposed ports: a client's request for a sandbox's port other than its runtime API (upstream's
// router protocol, `X-Sandbox-Port`) goes to the server listening on that port inside the sandbox,
// through the agent's tunnel (a local sandbox has no network; the agent dials its own loopback).
// HTTP is forwarded one request per tunnel (the engine keeps the client's connection, and its
// keep-alive, to itself); a WebSocket's upgrade takes the tunnel for as long as it lasts.
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { LocalWorkloads } from '../workloads.ts';
import { EngineError } from '../errors.ts';

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'authorization',
]);

/** The client's headers as the sandbox's server should see them: not the engine's token, not the
 *  routing headers, not what belongs to the client's connection only. */
function forwardedHeaders(req: IncomingMessage): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(req.headers)) {
    if (v === undefined || HOP_BY_HOP.has(k) || k.startsWith('x-sandbox-')) continue;
    out[k] = v;
  }
  return out;
}

/** A tunnel to `port` in the sandbox, or the error a client gets: not declared, nothing listening. */
async function openTunnel(sandboxes: LocalWorkloads, namespace: string, id: string, port: number): Promise<Duplex> {
  const agent = await sandboxes.agentOf(namespace, id);
  if (!sandboxes.declaredPorts(namespace, id).includes(port))
    throw new EngineError(
      'BadGateway',
      `Could not connect to the backend sandbox: ${id} (port ${port} is not exposed: declare it in the sandbox's container ports)`,
    );
  const t = await agent.tunnel(port);
  if (!t.ok) {
    let detail = t.body;
    try {
      detail = (JSON.parse(t.body) as { detail?: string }).detail ?? t.body;
    } catch {
      /* not JSON: as it came */
    }
    throw new EngineError('BadGateway', `Could not connect to the backend sandbox: ${id} (${detail})`);
  }
  return t.stream;
}

/** Forwards one HTTP request to `port` in the sandbox and its answer back. Rejects (for the
 *  caller's error answer) only before anything was sent to the client. */
export async function proxyToPort(
  req: IncomingMessage,
  res: ServerResponse,
  sandboxes: LocalWorkloads,
  namespace: string,
  id: string,
  port: number,
): Promise<void> {
  const tunnel = await openTunnel(sandboxes, namespace, id, port);
  await new Promise<void>((resolve, reject) => {
    const out = http.request({
      method: req.method,
      path: req.url,
      headers: { ...forwardedHeaders(req), connection: 'close' },
      createConnection: () => tunnel,
    });
    out.once('response', (answer) => {
      const headers: Record<string, string | string[]> = {};
      for (const [k, v] of Object.entries(answer.headers))
        if (v !== undefined && !HOP_BY_HOP.has(k) && k !== 'connection') headers[k] = v;
      res.writeHead(answer.statusCode ?? 502, answer.statusMessage, headers);
      res.flushHeaders();
      answer.pipe(res);
      answer.once('error', () => res.destroy());
      answer.once('close', () => {
        if (!answer.complete) res.destroy();
        tunnel.destroy();
        resolve();
      });
    });
    out.once('error', (err: Error) => {
      tunnel.destroy();
      if (res.headersSent) {
        res.destroy();
        resolve();
      } else reject(new EngineError('BadGateway', `Could not connect to the backend sandbox: ${id} (${err.message})`));
    });
    res.once('close', () => {
      if (!res.writableFinished) tunnel.destroy();
    });
    req.pipe(out);
  });
}

/** A WebSocket (any Upgrade) to `port` in the sandbox: the client's request head goes through the
 *  tunnel as it came (less the engine's token and routing headers), then bytes both ways. */
export async function upgradeToPort(
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  sandboxes: LocalWorkloads,
  namespace: string,
  id: string,
  port: number,
): Promise<void> {
  const tunnel = await openTunnel(sandboxes, namespace, id, port);
  const lines = [`${req.method} ${req.url} HTTP/1.1`];
  for (const [k, v] of Object.entries(req.headers)) {
    if (v === undefined || k === 'authorization' || k.startsWith('x-sandbox-')) continue;
    for (const one of Array.isArray(v) ? v : [v]) lines.push(`${k}: ${one}`);
  }
  tunnel.write(`${lines.join('\r\n')}\r\n\r\n`);
  if (head.length) tunnel.write(head);
  socket.pipe(tunnel).pipe(socket);
  const end = () => {
    socket.destroy();
    tunnel.destroy();
  };
  socket.once('close', end);
  tunnel.once('close', end);
  socket.once('error', end);
  tunnel.once('error', end);
}
