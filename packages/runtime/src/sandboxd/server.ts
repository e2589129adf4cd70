// Assembles sandboxd: the gRPC ProcessService and the REST API on their two ports, over one root
// dir, and its graceful shutdown (upstream's order: readiness off, SIGTERM the commands, SIGKILL
// what is left after a grace, then close the listeners, forced once the budget is spent).
// main.ts calls this; the tests call it too, so they run the very code the image runs.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server, ServerCredentials } from '@grpc/grpc-js';
import { FileService } from '../files.ts';
import { NodeSpawner, type Spawner } from '../spawner.ts';
import { SandboxdPaths } from './paths.ts';
import { ProcessService } from './process-service.ts';
import { processServiceDefinition } from './proto.ts';
import { sandboxdRestApp } from './rest.ts';

export interface SandboxdOptions {
  rootDir: string;
  listenHost: string;
  /** 0 picks a free port (tests). */
  grpcPort: number;
  restPort: number;
  metadataEnvPrefix: string;
  streamChunkSize: number;
  httpIdleTimeoutMs: number;
  /** The daemon environment: what commands inherit and /v1/metadata filters. */
  env?: NodeJS.ProcessEnv;
  spawner?: Spawner;
  /** asb-spawn, which makes the pseudo-terminals of Start with a pty (main.ts: next to the bundle). */
  ptyHelper?: string;
}

export interface Sandboxd {
  grpcPort: number;
  restPort: number;
  processes: ProcessService;
  setReady(ready: boolean): void;
  /** Ends the commands and closes both listeners within `timeoutMs`. */
  shutdown(timeoutMs: number): Promise<void>;
}

/** How long commands get between SIGTERM and SIGKILL at shutdown (upstream's). */
const PROCESS_SHUTDOWN_GRACE_MS = 2000;
/** How long idle gRPC connections may take to close by themselves once no call is in flight. */
const GRPC_FLUSH_MS = 300;

const hostPort = (host: string, port: number) => (host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`);

export async function startSandboxd(o: SandboxdOptions): Promise<Sandboxd> {
  const env = o.env ?? process.env;
  const paths = new SandboxdPaths(o.rootDir);
  // No upload limit: upstream has none, and the file streams to disk.
  const files = new FileService(paths.confiner, Number.MAX_SAFE_INTEGER);
  const processes = new ProcessService({
    paths,
    spawner: o.spawner ?? new NodeSpawner(),
    env,
    streamChunkSize: o.streamChunkSize,
    ptyHelper: o.ptyHelper,
  });
  let ready = true;

  const grpc = new Server();
  grpc.addService(processServiceDefinition(), processes.handlers());
  const grpcPort = await new Promise<number>((resolve, reject) =>
    grpc.bindAsync(hostPort(o.listenHost, o.grpcPort), ServerCredentials.createInsecure(), (err, port) =>
      err ? reject(err) : resolve(port),
    ),
  );

  const { getRequestListener } = await import('@hono/node-server');
  const app = sandboxdRestApp({ paths, files, metadataEnvPrefix: o.metadataEnvPrefix, env, ready: () => ready });
  const listener = getRequestListener(app.fetch);
  const rest = http.createServer((req, res) => void listener(req, res));
  rest.keepAliveTimeout = o.httpIdleTimeoutMs;
  rest.headersTimeout = 10_000; // upstream's readHeaderTimeout; bodies are unbounded
  rest.requestTimeout = 0;
  let restPort: number;
  try {
    restPort = await new Promise<number>((resolve, reject) => {
      rest.once('error', reject);
      rest.listen(o.restPort, o.listenHost, () => resolve((rest.address() as AddressInfo).port));
    });
  } catch (err) {
    grpc.forceShutdown();
    throw err;
  }

  return {
    grpcPort,
    restPort,
    processes,
    setReady: (r) => {
      ready = r;
    },
    async shutdown(timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      const left = () => Math.max(0, deadline - Date.now());
      ready = false;
      processes.signalAll('SIGTERM');
      const grace = Date.now() + Math.min(PROCESS_SHUTDOWN_GRACE_MS, left());
      while (processes.running > 0 && Date.now() < grace) await new Promise((r) => setTimeout(r, 20));
      processes.signalAll('SIGKILL');
      rest.closeIdleConnections();
      const restClosed = new Promise((r) => rest.close(r));
      const restForced = setTimeout(() => rest.closeAllConnections(), left());
      // A client that keeps its channel open would hold a graceful gRPC shutdown until the budget
      // ends; once no call is in flight, closing such connections loses nothing.
      const grpcClosed = new Promise((r) => grpc.tryShutdown(r));
      while (processes.inflight > 0 && left() > 0) await new Promise((r) => setTimeout(r, 20));
      // (A moment for the last answers' trailers to leave.)
      await Promise.race([grpcClosed, new Promise((r) => setTimeout(r, Math.min(GRPC_FLUSH_MS, left())))]);
      grpc.forceShutdown();
      processes.close();
      await restClosed;
      clearTimeout(restForced);
    },
  };
}
