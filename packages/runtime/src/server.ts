// Assembles the agent from its configuration and serves it: HTTP/2 over an inherited socket (the
// local engine's socketpair) or HTTP/1.1 on a TCP port (Kubernetes). main.ts calls this; the
// tests call it too, so they run the very code the sandbox runs.
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { agentApp } from './app.ts';
import { Confiner } from './confine.ts';
import { FileService } from './files.ts';
import { ProcessManager, baseEnv } from './processes.ts';
import { NodeSpawner, type Spawner } from './spawner.ts';
import type { Hono } from 'hono';

export interface AgentConfig {
  baseDir: string;
  defaultTimeoutMs: number;
  maxUploadBytes: number;
  maxOutputBytes: number;
}

const MiB = 1024 * 1024;

/** The README's environment table. An unparsable number is the default, not NaN. */
export function configFromEnv(env: NodeJS.ProcessEnv): AgentConfig {
  const num = (v: string | undefined, d: number) => (v && Number.isFinite(Number(v)) && Number(v) > 0 ? Number(v) : d);
  return {
    baseDir: env.SANDBOX_BASE_DIR || '/app',
    defaultTimeoutMs: num(env.SANDBOX_EXEC_TIMEOUT_SECONDS, 300) * 1000,
    maxUploadBytes: num(env.ASB_MAX_UPLOAD_BYTES, 256 * MiB),
    maxOutputBytes: num(env.ASB_MAX_OUTPUT_BYTES, 16 * MiB),
  };
}

export interface Agent {
  app: Hono;
  procs: ProcessManager;
  files: FileService;
}

export function createAgent(
  config: AgentConfig,
  spawner: Spawner = new NodeSpawner(),
  env: NodeJS.ProcessEnv = process.env,
): Agent {
  const confiner = new Confiner(config.baseDir);
  const procs = new ProcessManager(
    confiner,
    {
      defaultTimeoutMs: config.defaultTimeoutMs,
      maxOutputBytes: config.maxOutputBytes,
      replayBytes: MiB,
    },
    spawner,
    baseEnv(env),
  );
  const files = new FileService(confiner, config.maxUploadBytes);
  return { app: agentApp(procs, files), procs, files };
}

export type Handler = (
  req: http.IncomingMessage | http2.Http2ServerRequest,
  res: http.ServerResponse | http2.Http2ServerResponse,
) => void;

/** One node request handler for both protocols. */
export async function requestHandler(app: Hono): Promise<Handler> {
  // Loaded here, not at module load: it replaces the global Request/Response, which a startup
  // snapshot cannot hold (they pull in undici and node:http while the snapshot is built).
  const { getRequestListener } = await import('@hono/node-server');
  const listener = getRequestListener(app.fetch);
  return (req, res) => {
    // No Date header: formatting it loads ICU, which under gVisor costs ~800 ms on the first response.
    res.sendDate = false;
    void listener(req, res);
  };
}

/** HTTP/2 with prior knowledge over the socket on `fd`; `onClose` is told when the connection
 *  ends (the agent keeps running: see main.ts). */
export function serveFd(handler: Handler, fd: number, onClose: (why: string) => void): http2.Http2Server {
  // maxSessionMemory (MiB): one session carries every concurrent command and file transfer.
  const server = http2.createServer({ maxSessionMemory: 64 }, handler);
  const socket = new net.Socket({ fd, readable: true, writable: true });
  socket.on('error', (err) => onClose(`connection error: ${err.message}`));
  socket.on('close', () => onClose('connection closed'));
  server.emit('connection', socket);
  return server;
}

/** The Linux abstract Unix socket the agent also serves in fd mode: how an engine that lost its
 *  socketpair (it restarted) reaches the agent again, through `asb-spawn --relay` exec'd into the
 *  sandbox. Abstract: no file to create or clean up; it lives in the sandbox's network namespace. */
export const AGENT_SOCKET_NAME = 'asb-agent';

/** Serves `server` (serveFd's) on the abstract socket `name` as well, one HTTP/2 session per
 *  connection. The name is bound before this returns (node binds synchronously); a failure to
 *  listen, or later to accept, goes to `onError` and the agent keeps serving fd 0. */
export function listenAbstract(server: http2.Http2Server, name: string, onError: (why: string) => void): void {
  server.on('error', (err: Error) => onError(`abstract socket @${name}: ${err.message}`));
  server.listen(`\0${name}`);
}

/** HTTP/1.1 on host:port; resolves with the bound address (port 0 picks a free one). */
export function serveHttp1(
  handler: Handler,
  host: string,
  port: number,
): Promise<{ server: http.Server; port: number }> {
  const server = http.createServer(handler);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve({ server, port: (server.address() as net.AddressInfo).port }));
  });
}
