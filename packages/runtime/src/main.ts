// The agent's entry point (PID 1 of a local sandbox, or the container's command on Kubernetes).
//   --fd N             serve HTTP/2 (prior knowledge) over the socket on fd N (the local engine)
//   --listen HOST:PORT serve HTTP/1.1 (Kubernetes; default 0.0.0.0:8888)
//   --main JSON        the sandbox's main process (a template container's command and args)
// Started from a V8 startup snapshot (dist/agent.blob, see scripts/build.mjs) the same words come
// without dashes (`node --snapshot-blob agent.blob fd 0`), since node would take them as its own.
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import v8 from 'node:v8';
import { agentApp } from './app.ts';
import { Confiner } from './confine.ts';
import { FileService } from './files.ts';
import { ProcessManager } from './processes.ts';
import { NodeSpawner, ZygoteSpawner } from './spawner.ts';

function flag(name: string): string | undefined {
  const words = process.argv.slice(1).map((w) => w.replace(/^--/, ''));
  const i = words.indexOf(name);
  return i >= 0 ? words[i + 1] : undefined;
}

const num = (v: string | undefined, d: number) => (v && Number.isFinite(Number(v)) ? Number(v) : d);

/** asb-spawn when it started the agent (the local engine's PID 1), else node's own spawn. */
function spawner(): NodeSpawner | ZygoteSpawner {
  return ZygoteSpawner.fromEnv() ?? new NodeSpawner();
}

/** Everything that depends on the environment happens here, never at module load (a snapshot
 *  would freeze the build machine's environment into the heap). */
async function start(): Promise<void> {
  // Loaded here, not at module load: it replaces the global Request/Response, which a startup
  // snapshot cannot hold (they pull in undici and node:http while the snapshot is built).
  const { getRequestListener } = await import('@hono/node-server');
  const debug = process.env.ASB_DEBUG === '1';
  const log = (msg: string) => { if (debug) process.stderr.write(`[agent +${(process.uptime() * 1000).toFixed(0)}ms] ${msg}\n`); };
  const confiner = new Confiner(process.env.SANDBOX_BASE_DIR ?? '/app');
  const procs = new ProcessManager(confiner, {
    defaultTimeoutMs: num(process.env.SANDBOX_EXEC_TIMEOUT_SECONDS, 300) * 1000,
    maxOutputBytes: num(process.env.ASB_MAX_OUTPUT_BYTES, 16 * 1024 * 1024),
    replayBytes: 1024 * 1024,
  }, spawner());
  const files = new FileService(confiner, num(process.env.ASB_MAX_UPLOAD_BYTES, 256 * 1024 * 1024));
  const listener = getRequestListener(agentApp(procs, files).fetch);
  // No Date header: formatting it loads ICU, which under gVisor costs ~800 ms on the first response.
  const handler = (req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse) => {
    res.sendDate = false;
    void listener(req as http.IncomingMessage, res as http.ServerResponse);
  };

  const mainArgv = flag('main');
  if (mainArgv) {
    const argv = JSON.parse(mainArgv) as string[];
    procs.start({ command: argv.join(' '), argv, timeoutMs: 2 ** 31 - 1 }, 'main');
    log(`main process: ${argv.join(' ')}`);
  }

  const fd = flag('fd');
  if (fd !== undefined) {
    const server = http2.createServer({ maxSessionMemory: 64 }, handler);
    const socket = new net.Socket({ fd: Number(fd), readable: true, writable: true });
    // The engine may go away (crash, restart): the sandbox's processes keep running regardless.
    socket.on('error', (err) => log(`connection error: ${err.message}`));
    server.emit('connection', socket);
    log(`serving HTTP/2 on fd ${fd}`);
  } else {
    const [host, port] = (flag('listen') ?? '0.0.0.0:8888').split(':');
    http.createServer(handler).listen(Number(port), host, () => log(`serving HTTP/1.1 on ${host}:${port}`));
  }
  process.on('SIGTERM', () => process.exit(0));
  // The agent is the sandbox's first process: if it died, the sandbox would go with it. A bug in
  // one request must not take the user's processes and files down; it is logged and survived.
  process.on('uncaughtException', (err) => process.stderr.write(`[agent] uncaught: ${err.stack ?? err}\n`));
  process.on('unhandledRejection', (err) => process.stderr.write(`[agent] unhandled rejection: ${(err as Error)?.stack ?? err}\n`));
}

// Building the snapshot runs this module with every dependency loaded and initialised; a sandbox
// then starts from that heap and only runs start(). Under gVisor that saves most of the startup.
if (v8.startupSnapshot?.isBuildingSnapshot()) v8.startupSnapshot.setDeserializeMainFunction(() => void start());
else void start();
