// The MCP server over its two transports. stdio: one process, one session, one sandbox (desktop
// agents and coding assistants spawn it). Streamable HTTP: many sessions, each with its own
// McpServer, transport and sandbox; loopback by default; every request needs the bearer token.
import { randomUUID, timingSafeEqual } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { Hono } from 'hono';
import { serve, type ServerType } from '@hono/node-server';
import { McpServer, ResourceTemplate } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js';
import type { FileEntry } from '@asb/sdk';
import { SandboxSession, type SessionOptions } from './session.ts';
import { DEFAULT_LIMITS, fileUri, isText, registerTools, type ToolLimits } from './tools.ts';

export const SERVER_NAME = 'agent-sandbox';
export const SERVER_VERSION = '0.1.0';

export interface McpOptions extends SessionOptions {
  limits?: Partial<ToolLimits>;
  log?: (msg: string) => void;
}

/** One McpServer bound to one session's sandbox: tools, and the sandbox's files as resources. */
export function createMcpServer(session: SandboxSession, limits: ToolLimits): McpServer {
  const server = new McpServer({ name: SERVER_NAME, version: SERVER_VERSION }, {
    instructions: 'Tools run in one isolated Linux sandbox (gVisor, no network) kept for this whole conversation: files and processes persist between calls. The workspace is /app.',
  });
  registerTools(server, session, limits);
  server.registerResource('sandbox-files', new ResourceTemplate('sandbox://files/{+path}', {
    // Listing shows what exists; it does not start a sandbox for a conversation that has none.
    list: async () => {
      const sb = await session.existing();
      if (!sb) return { resources: [] };
      const files = await walk((p) => sb.files.list(p), '.', 200).catch(() => []);
      return { resources: files.map((f) => ({ uri: fileUri(f.path), name: f.path, mimeType: 'application/octet-stream', size: f.size })) };
    },
  }), { title: 'Files in the sandbox', description: 'Files of this conversation\'s sandbox workspace' }, async (uri, vars) => {
    const path = decodeURIComponent(String(vars.path ?? ''));
    const { sandbox } = await session.sandbox();
    const bytes = await sandbox.files.read(path, { format: 'bytes' }) as Uint8Array;
    const text = isText(bytes) ? new TextDecoder().decode(bytes) : undefined;
    return { contents: [text !== undefined ? { uri: uri.href, mimeType: 'text/plain', text } : { uri: uri.href, mimeType: 'application/octet-stream', blob: Buffer.from(bytes).toString('base64') }] };
  });
  return server;
}

/** Serves one session on stdin/stdout until the client closes it; the sandbox goes with it. */
export async function serveStdio(opts: McpOptions): Promise<void> {
  const session = new SandboxSession(opts);
  const server = createMcpServer(session, { ...DEFAULT_LIMITS, ...opts.limits });
  const transport = new StdioServerTransport();
  const closed = new Promise<void>((resolve) => { transport.onclose = () => resolve(); });
  await server.connect(transport);
  // A client that simply exits closes our stdin.
  process.stdin.once('end', () => void server.close());
  await closed;
  await session.close();
}

export interface HttpServerHandle { url: string; sessions(): number; close(): Promise<void> }

/** Streamable HTTP on `host:port` (port 0: any free one) at /mcp, bearer token required. */
export async function serveHttp(opts: McpOptions & { host?: string; port: number; token: string }): Promise<HttpServerHandle> {
  const limits = { ...DEFAULT_LIMITS, ...opts.limits };
  const sessions = new Map<string, { transport: WebStandardStreamableHTTPServerTransport; session: SandboxSession }>();
  const expected = Buffer.from(`Bearer ${opts.token}`);
  const app = new Hono();
  app.use('*', async (c, next) => {
    const got = Buffer.from(c.req.header('authorization') ?? '');
    if (got.length !== expected.length || !timingSafeEqual(got, expected)) {
      return c.json({ jsonrpc: '2.0', error: { code: -32001, message: 'unauthorized: send Authorization: Bearer <token> (the engine\'s token, $ASB_HOME/token)' }, id: null }, 401);
    }
    await next();
  });
  app.all('/mcp', async (c) => {
    const id = c.req.header('mcp-session-id');
    if (id) {
      const known = sessions.get(id);
      if (!known) return c.json({ jsonrpc: '2.0', error: { code: -32001, message: `unknown or ended session ${id}: initialize a new one` }, id: null }, 404);
      return known.transport.handleRequest(c.req.raw);
    }
    if (c.req.method !== 'POST') return c.json({ jsonrpc: '2.0', error: { code: -32000, message: 'no mcp-session-id: start with an initialize request' }, id: null }, 400);
    // A new session: its own server, transport and (lazily) sandbox.
    const session = new SandboxSession(opts);
    const server = createMcpServer(session, limits);
    const end = (sid: string | undefined) => {
      if (sid) sessions.delete(sid);
      void session.close();
    };
    const transport: WebStandardStreamableHTTPServerTransport = new WebStandardStreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (sid) => { sessions.set(sid, { transport, session }); opts.log?.(`session ${sid} started`); },
      onsessionclosed: (sid) => { end(sid); opts.log?.(`session ${sid} ended`); },
    });
    transport.onclose = () => end(transport.sessionId);
    await server.connect(transport);
    const res = await transport.handleRequest(c.req.raw);
    // An initialize that failed leaves no session behind.
    if (!transport.sessionId) void session.close();
    return res;
  });
  app.notFound((c) => c.json({ error: `no route ${c.req.method} ${c.req.path}: the MCP endpoint is /mcp` }, 404));

  const host = opts.host ?? '127.0.0.1';
  const server: ServerType = await new Promise((resolve) => { const s = serve({ fetch: app.fetch, hostname: host, port: opts.port }, () => resolve(s)); });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}/mcp`,
    sessions: () => sessions.size,
    async close() {
      await Promise.all([...sessions.values()].map(async ({ transport, session }) => { await transport.close().catch(() => undefined); await session.close(); }));
      sessions.clear();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function walk(list: (p: string) => Promise<FileEntry[]>, dir: string, max: number): Promise<Array<{ path: string; size: number }>> {
  const out: Array<{ path: string; size: number }> = [];
  const queue = [dir];
  while (queue.length && out.length < max) {
    const d = queue.shift()!;
    for (const e of await list(d)) {
      const p = d === '.' ? e.name : `${d}/${e.name}`;
      if (e.type === 'directory') queue.push(p); else out.push({ path: p, size: e.size });
      if (out.length >= max) break;
    }
  }
  return out;
}
