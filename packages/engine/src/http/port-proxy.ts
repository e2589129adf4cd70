// Exposed ports: a client's request for a sandbox's port other than its runtime API (upstream's
// router protocol, `X-Sandbox-Port`) goes to the server listening on that port inside the sandbox,
// through the agent's tunnel (a local sandbox has no network; the agent dials its own loopback).
// HTTP is forwarded one request per tunnel (the engine keeps the client's connection, and its
// keep-alive, to itself); a WebSocket's upgrade takes the tunnel for as long as it lasts. A
// preview host (exposed-ports.ts) is the same, for a browser: its token instead of the engine's.
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { Duplex } from 'node:stream';
import type { LocalWorkloads } from '../workloads.ts';
import { EngineError } from '../errors.ts';
import { PREVIEW_COOKIE, PREVIEW_PARAM, RUNTIME_PORT, exposedPorts, previewTokenMatches } from '../exposed-ports.ts';

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
]);

export interface PortRequestOpts {
  /** The request's Authorization is not the engine's token (a preview's): the server gets it. */
  keepAuthorization?: boolean;
}

/** An upgrade keeps its connection and upgrade headers: they are the request. */
const UPGRADE_DROPS = new Set(['proxy-connection']);

/** The client's headers as the sandbox's server should see them: not the engine's token (a
 *  preview's request may carry the app's own Authorization: that one goes), not the routing
 *  headers, not what belongs to the client's connection only. */
function forwardedHeaders(
  req: IncomingMessage,
  keepAuthorization: boolean,
  hopByHop = HOP_BY_HOP,
): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(req.headers)) {
    if (v === undefined || hopByHop.has(k) || k.startsWith('x-sandbox-')) continue;
    if (k === 'authorization' && !keepAuthorization) continue;
    if (k === 'cookie') {
      const kept = withoutPreviewCookie(String(v));
      if (kept) out[k] = kept;
      continue;
    }
    out[k] = v;
  }
  return out;
}

/** A Cookie header without the preview token: the sandbox's server has no use for it. */
function withoutPreviewCookie(header: string): string {
  return header
    .split(';')
    .map((c) => c.trim())
    .filter((c) => c && !c.startsWith(`${PREVIEW_COOKIE}=`))
    .join('; ');
}

function previewCookie(header: string | undefined): string | undefined {
  for (const c of (header ?? '').split(';')) {
    const [k, ...v] = c.trim().split('=');
    if (k === PREVIEW_COOKIE) return v.join('=');
  }
  return undefined;
}

export interface PreviewAccess extends PortRequestOpts {
  ok: boolean;
  fromUrl?: { token: string; location: string };
}

/**
 * Whether a request to a preview host may pass: with the engine's token, or the preview token of
 * that sandbox and port (in the URL once, then as a cookie). `fromUrl` says the token came in the
 * URL: the token, and where to send the browser without it. Never the runtime API.
 */
export function previewAccess(
  req: IncomingMessage,
  target: { namespace: string; name: string; port: number },
  sandboxes: LocalWorkloads,
  secret: string,
  engineToken: boolean,
): PreviewAccess {
  if (target.port === RUNTIME_PORT) return { ok: false };
  if (engineToken) return { ok: true };
  const sb = sandboxes.sandboxObject(target.namespace, target.name);
  if (!sb) return { ok: false };
  const url = new URL(req.url ?? '/', 'http://preview');
  const inUrl = url.searchParams.get(PREVIEW_PARAM);
  if (inUrl !== null && previewTokenMatches(secret, sb, target.port, inUrl)) {
    url.searchParams.delete(PREVIEW_PARAM);
    return { ok: true, fromUrl: { token: inUrl, location: url.pathname + url.search }, keepAuthorization: true };
  }
  const cookie = previewCookie(req.headers.cookie);
  return {
    ok: cookie !== undefined && previewTokenMatches(secret, sb, target.port, cookie),
    keepAuthorization: true,
  };
}

/** Serves a request to a preview host whose access was granted (previewAccess). */
export async function servePreview(
  req: IncomingMessage,
  res: ServerResponse,
  target: { namespace: string; name: string; port: number },
  access: PreviewAccess,
  sandboxes: LocalWorkloads,
): Promise<void> {
  if (access.fromUrl) {
    // The token leaves the URL (history, a Referer) for a cookie of this host only.
    res.writeHead(303, {
      location: access.fromUrl.location,
      'set-cookie': `${PREVIEW_COOKIE}=${access.fromUrl.token}; Path=/; HttpOnly; SameSite=Lax`,
      'content-length': '0',
    });
    res.end();
    return;
  }
  await proxyToPort(req, res, sandboxes, target.namespace, target.name, target.port, access);
}

/** A tunnel to `port` in the sandbox, or the error a client gets: not declared, nothing listening. */
async function openTunnel(sandboxes: LocalWorkloads, namespace: string, id: string, port: number): Promise<Duplex> {
  const agent = await sandboxes.agentOf(namespace, id);
  const sb = sandboxes.sandboxObject(namespace, id);
  if (!sb || !exposedPorts(sb).includes(port))
    throw new EngineError(
      'BadGateway',
      `Could not connect to the backend sandbox: ${id} (port ${port} is not exposed: declare it in the template's container ports, or ask for it with \`asb url ${id} ${port}\`)`,
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

/**
 * The tunnel as the socket of node's HTTP client, each write one Buffer. Given the stream itself,
 * the client's corked writes (its request head as a string, then the body's first chunk) reached
 * the server with the head's first bytes overwritten (node 20's Http2Stream writev).
 */
function asSocket(tunnel: Duplex): Duplex {
  const socket = new Duplex({
    write(chunk: Buffer, _encoding, done) {
      tunnel.write(chunk, done);
    },
    writev(chunks, done) {
      tunnel.write(Buffer.concat(chunks.map((c) => c.chunk as Buffer)), done);
    },
    final(done) {
      tunnel.end();
      done();
    },
    read() {
      tunnel.resume();
    },
    destroy(err, done) {
      tunnel.destroy();
      done(err);
    },
  });
  tunnel.on('data', (d: Buffer) => {
    if (!socket.push(d)) tunnel.pause();
  });
  tunnel.once('end', () => socket.push(null));
  tunnel.once('error', (err: Error) => socket.destroy(err));
  return socket;
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
  opts: PortRequestOpts = {},
): Promise<void> {
  const tunnel = await openTunnel(sandboxes, namespace, id, port);
  await new Promise<void>((resolve, reject) => {
    const out = http.request({
      method: req.method,
      path: req.url,
      headers: { ...forwardedHeaders(req, opts.keepAuthorization === true), connection: 'close' },
      createConnection: () => asSocket(tunnel),
    });
    out.once('response', (answer) => {
      const headers: Record<string, string | string[]> = {};
      for (const [k, v] of Object.entries(answer.headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) headers[k] = v;
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
  opts: PortRequestOpts = {},
): Promise<void> {
  const tunnel = await openTunnel(sandboxes, namespace, id, port);
  const lines = [`${req.method} ${req.url} HTTP/1.1`];
  for (const [k, v] of Object.entries(forwardedHeaders(req, opts.keepAuthorization === true, UPGRADE_DROPS)))
    for (const one of Array.isArray(v) ? v : [v]) lines.push(`${k}: ${one}`);
  // Header values are latin1 as node decoded them: so they go back byte for byte.
  tunnel.write(Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'));
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
