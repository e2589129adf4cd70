// The MCP server over its two transports. stdio: one process, one session, one sandbox (desktop
// agents and coding assistants spawn it). Streamable HTTP: many sessions, each with its own
// McpServer, transport and sandbox; loopback by default; every request needs the bearer token.
import http from 'node:http';
import { randomUUID, timingSafeEqual } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { Hono } from 'hono';
import { getRequestListener, type HttpBindings } from '@hono/node-server';
import {
  answer,
  answerClientErrors,
  closeStalled,
  limitConnections,
  limitFromEnv,
  readCappedBody,
  serverOptions,
  watchBodyProgress,
  BodyBudget,
  BodyBudgetError,
  BodyTooLargeError,
  type ServerLimits,
} from '@asb/http-guard';
import { McpServer, ResourceTemplate } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js';
import type { FileEntry } from '@asb/sdk';
import { SandboxSession, type SessionOptions } from './session.ts';
import { DEFAULT_LIMITS, fileUri, isText, registerTools, type ToolLimits } from './tools.ts';
import { HttpSessions, type SessionLimits } from './http-sessions.ts';

export const SERVER_NAME = 'agent-sandbox';
export const SERVER_VERSION = '0.1.0';

export interface McpOptions extends SessionOptions {
  limits?: Partial<ToolLimits>;
  log?: (msg: string) => void;
}

/** One McpServer bound to one session's sandbox: tools, and the sandbox's files as resources. */
export function createMcpServer(session: SandboxSession, limits: ToolLimits): McpServer {
  const server = new McpServer(
    { name: SERVER_NAME, version: SERVER_VERSION },
    {
      instructions:
        'Tools run in one isolated Linux sandbox (gVisor, no network) kept for this whole conversation: files and processes persist between calls. The workspace is /app.',
    },
  );
  registerTools(server, session, limits);
  server.registerResource(
    'sandbox-files',
    new ResourceTemplate('sandbox://files/{+path}', {
      // Listing shows what exists; it does not start a sandbox for a conversation that has none.
      list: async () => {
        const sb = await session.existing();
        if (!sb) return { resources: [] };
        const files = await walk((p) => sb.files.list(p), '.', 200).catch(() => []);
        return {
          resources: files.map((f) => ({
            uri: fileUri(f.path),
            name: f.path,
            mimeType: 'application/octet-stream',
            size: f.size,
          })),
        };
      },
    }),
    { title: 'Files in the sandbox', description: "Files of this conversation's sandbox workspace" },
    async (uri, vars) => {
      const path = decodeURIComponent(String(vars.path ?? ''));
      const { sandbox } = await session.sandbox();
      const bytes = await sandbox.files.read(path, { format: 'bytes' });
      const text = isText(bytes) ? new TextDecoder().decode(bytes) : undefined;
      return {
        contents: [
          text !== undefined
            ? { uri: uri.href, mimeType: 'text/plain', text }
            : { uri: uri.href, mimeType: 'application/octet-stream', blob: Buffer.from(bytes).toString('base64') },
        ],
      };
    },
  );
  return server;
}

/** Serves one session on stdin/stdout until the client closes it; the sandbox goes with it. */
export async function serveStdio(opts: McpOptions): Promise<void> {
  const session = new SandboxSession(opts);
  const server = createMcpServer(session, { ...DEFAULT_LIMITS, ...opts.limits });
  const transport = new StdioServerTransport();
  const closed = new Promise<void>((resolve) => {
    transport.onclose = () => resolve();
  });
  await server.connect(transport);
  // A client that simply exits closes our stdin.
  process.stdin.once('end', () => void server.close());
  await closed;
  await session.close();
}

export interface HttpServerHandle {
  url: string;
  sessions(): number;
  close(): Promise<void>;
}

/** Bounds of `asb mcp --http` on its clients (README's limits table); the environment sets them. */
export interface HttpLimits extends ServerLimits, Omit<SessionLimits, 'idleTimeoutMs'> {
  /** ASB_MCP_MAX_BODY_BYTES: one request's body (write_file takes up to 16 MiB of content). */
  maxBodyBytes: number;
  /** ASB_MCP_MAX_BODIES_BYTES: bodies held while being read, all requests together. */
  maxBodiesBytes: number;
}

export function httpLimitsFromEnv(env: NodeJS.ProcessEnv = process.env): HttpLimits {
  return {
    maxSessions: limitFromEnv(env, 'ASB_MCP_MAX_SESSIONS', 100),
    unusedSessionTimeoutMs: limitFromEnv(env, 'ASB_MCP_UNUSED_SESSION_TIMEOUT_MS', 60_000),
    maxBodyBytes: limitFromEnv(env, 'ASB_MCP_MAX_BODY_BYTES', 20 * 1024 * 1024),
    maxHeaderBytes: limitFromEnv(env, 'ASB_MAX_HEADER_BYTES', 16 * 1024),
    headersTimeoutMs: limitFromEnv(env, 'ASB_HEADERS_TIMEOUT_MS', 30_000),
    bodyIdleTimeoutMs: limitFromEnv(env, 'ASB_BODY_IDLE_TIMEOUT_MS', 60_000),
    maxBodiesBytes: limitFromEnv(env, 'ASB_MCP_MAX_BODIES_BYTES', 128 * 1024 * 1024),
    maxConnections: limitFromEnv(env, 'ASB_MCP_MAX_CONNECTIONS', 256),
  };
}

/** A JSON-RPC error as the MCP transport answers its own (id null: it answers no one request). */
const rpcError = (status: number, code: number, message: string, headers?: Record<string, string>) => ({
  status,
  contentType: 'application/json',
  text: JSON.stringify({ jsonrpc: '2.0', error: { code, message }, id: null }),
  headers,
});

/**
 * Streamable HTTP on `host:port` (port 0: any free one) at /mcp, bearer token required. Before
 * the MCP transport sees a request, the server has checked its token (401 without reading its
 * body), bounded its headers, read its body with a cap (413) and parsed it (400): a refused
 * request costs nothing, and every session's lifetime is bounded (http-sessions.ts).
 */
export async function serveHttp(
  opts: McpOptions & { host?: string; port: number; token: string; httpLimits?: HttpLimits },
): Promise<HttpServerHandle> {
  const toolLimits = { ...DEFAULT_LIMITS, ...opts.limits };
  const limits = opts.httpLimits ?? httpLimitsFromEnv();
  const idleTimeoutMs = opts.idleTimeoutMs ?? 15 * 60_000;
  const sessions = new HttpSessions({ ...limits, idleTimeoutMs }, opts.log);
  const expected = Buffer.from(`Bearer ${opts.token}`);
  const bodies = new WeakMap<http.IncomingMessage, unknown>();

  const app = new Hono<{ Bindings: HttpBindings }>();
  app.all('/mcp', async (c) => {
    const parsedBody = bodies.get(c.env.incoming);
    const id = c.req.header('mcp-session-id');
    if (id) {
      const live = sessions.get(id);
      if (!live)
        return c.json(
          {
            jsonrpc: '2.0',
            error: {
              code: -32001,
              message: `unknown or ended session ${id}: initialize a new one (a session ends after ${idleTimeoutMs / 1000} s without a request)`,
            },
            id: null,
          },
          404,
        );
      c.env.outgoing.once('close', sessions.seen(live, parsedBody, c.req.method === 'POST'));
      return live.transport.handleRequest(c.req.raw, { parsedBody });
    }
    if (c.req.method !== 'POST')
      return c.json(
        {
          jsonrpc: '2.0',
          error: { code: -32000, message: 'no mcp-session-id: start with an initialize request' },
          id: null,
        },
        400,
      );
    const full = sessions.reserve();
    if (full)
      return c.json({ jsonrpc: '2.0', error: { code: -32000, message: full }, id: null }, 503, {
        'retry-after': String(Math.ceil(limits.unusedSessionTimeoutMs / 1000)),
      });
    try {
      // A new session: its own server, transport and (lazily) sandbox. The sandbox lives as long
      // as the session: an idle session ends whole (above), it does not live on without it.
      const session = new SandboxSession({ ...opts, idleTimeoutMs: 0 });
      const server = createMcpServer(session, toolLimits);
      const transport: WebStandardStreamableHTTPServerTransport = new WebStandardStreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: (sid) => {
          sessions.add(sid, transport, session);
          opts.log?.(`session ${sid} started`);
        },
        onsessionclosed: (sid) => void sessions.end(sid, 'closed by the client'),
      });
      transport.onclose = () => {
        if (transport.sessionId) void sessions.end(transport.sessionId, 'its transport closed');
      };
      await server.connect(transport);
      const res = await transport.handleRequest(c.req.raw, { parsedBody });
      // An initialize that failed leaves no session behind.
      if (!transport.sessionId) void session.close();
      return res;
    } finally {
      sessions.release();
    }
  });
  app.notFound((c) => c.json({ error: `no route ${c.req.method} ${c.req.path}: the MCP endpoint is /mcp` }, 404));
  const listener = getRequestListener(app.fetch, { autoCleanupIncoming: false });

  const bodyBudget = new BodyBudget(limits.maxBodiesBytes);
  const serve = async (req: http.IncomingMessage, res: http.ServerResponse) => {
    const got = Buffer.from(req.headers.authorization ?? '');
    if (got.length !== expected.length || !timingSafeEqual(got, expected)) {
      answer(
        req,
        res,
        rpcError(401, -32001, "unauthorized: send Authorization: Bearer <token> (the engine's token, $ASB_HOME/token)"),
      );
      return;
    }
    watchBodyProgress(req, limits.bodyIdleTimeoutMs, () =>
      closeStalled(
        req,
        res,
        rpcError(
          408,
          -32000,
          `the request body stopped arriving: nothing for ${limits.bodyIdleTimeoutMs} ms (ASB_BODY_IDLE_TIMEOUT_MS)`,
        ),
      ),
    );
    let body: Buffer;
    try {
      body = await readCappedBody(req, limits.maxBodyBytes, bodyBudget);
    } catch (err) {
      if (err instanceof BodyTooLargeError)
        answer(req, res, rpcError(413, -32000, `${err.message} (ASB_MCP_MAX_BODY_BYTES)`));
      else if (err instanceof BodyBudgetError)
        answer(req, res, rpcError(503, -32000, `${err.message} (ASB_MCP_MAX_BODIES_BYTES)`, { 'retry-after': '1' }));
      return;
    }
    if (req.method === 'POST') {
      try {
        bodies.set(req, JSON.parse(body.toString('utf8')));
      } catch (err) {
        answer(req, res, rpcError(400, -32700, `Parse error: the body is not JSON: ${(err as Error).message}`));
        return;
      }
    }
    (req as http.IncomingMessage & { rawBody?: Buffer }).rawBody = body;
    await listener(req, res);
  };
  const server = http.createServer(serverOptions(limits), (req, res) => {
    // A request that fails past its answer's start can only be cut; before it, it gets an error.
    serve(req, res).catch((err: Error) => {
      if (res.headersSent) res.destroy(err);
      else answer(req, res, rpcError(500, -32603, `Internal error: ${err.message}`));
    });
  });
  limitConnections(server, limits.maxConnections);
  answerClientErrors(
    server,
    { ...limits, headerHint: 'ASB_MAX_HEADER_BYTES', timeoutHint: 'ASB_HEADERS_TIMEOUT_MS' },
    (status, message) => rpcError(status, -32000, message),
  );
  const host = opts.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, host, resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}/mcp`,
    sessions: () => sessions.size,
    async close() {
      await sessions.closeAll();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

async function walk(
  list: (p: string) => Promise<FileEntry[]>,
  dir: string,
  max: number,
): Promise<Array<{ path: string; size: number }>> {
  const out: Array<{ path: string; size: number }> = [];
  const queue = [dir];
  while (queue.length && out.length < max) {
    const d = queue.shift()!;
    for (const e of await list(d)) {
      const p = d === '.' ? e.name : `${d}/${e.name}`;
      if (e.type === 'directory') queue.push(p);
      else out.push({ path: p, size: e.size });
      if (out.length >= max) break;
    }
  }
  return out;
}
