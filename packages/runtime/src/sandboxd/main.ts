// sandboxd's entry point (dist/sandboxd.cjs, its own bundle: the local sandboxes' agent.cjs does
// not carry it). Serves upstream's sandboxd API; with --legacy-listen, also the older runtime API
// from the same process, which is how the runtime images serve both (images/runtime-*).
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { configFromEnv, createAgent, requestHandler, serveHttp1 } from '../server.ts';
import { parseSandboxdArgs, UsageError, USAGE, type SandboxdArgs } from './args.ts';
import { startSandboxd } from './server.ts';

export const VERSION = 'sandboxd (agent-sandbox-ts 0.1.0), API of sigs.k8s.io/agent-sandbox v1.0.1';

async function main(): Promise<void> {
  let args: SandboxdArgs;
  try {
    args = parseSandboxdArgs(process.argv.slice(2));
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    if (err.message) process.stderr.write(`${err.message}\n`);
    process.stderr.write(`${USAGE}\n`);
    process.exit(err.message ? 2 : 0);
  }
  if (args.version) {
    process.stdout.write(`${VERSION}\n`);
    return;
  }
  const log = (msg: string, fields: Record<string, unknown> = {}) =>
    process.stderr.write(`${JSON.stringify({ ts: Date.now() / 1000, logger: 'sandboxd', msg, ...fields })}\n`);
  try {
    mkdirSync(args.rootDir, { recursive: true });
  } catch (err) {
    log('exited with error', { error: `root dir "${args.rootDir}": ${(err as Error).message}` });
    process.exit(1);
  }
  const d = await startSandboxd({
    rootDir: args.rootDir,
    listenHost: args.listenHost,
    grpcPort: args.grpcPort,
    restPort: args.restPort,
    metadataEnvPrefix: args.metadataEnvPrefix,
    streamChunkSize: args.streamChunkSize,
    httpIdleTimeoutMs: args.httpIdleTimeoutMs,
    // The pty helper sits next to this bundle: dist/asb-spawn, /opt/asb/asb-spawn in the images.
    ptyHelper: join(dirname(process.argv[1] ?? '.'), 'asb-spawn'),
  });
  log('sandboxd listening', {
    grpc: `${args.listenHost}:${d.grpcPort}`,
    rest: `${args.listenHost}:${d.restPort}`,
    rootDir: args.rootDir,
  });
  let legacy: Awaited<ReturnType<typeof serveHttp1>> | undefined;
  if (args.legacyListen) {
    const agent = createAgent(configFromEnv(process.env));
    legacy = await serveHttp1(await requestHandler(agent.app), args.legacyListen.host, args.legacyListen.port);
    log('runtime API listening', { addr: `${args.legacyListen.host}:${legacy.port}` });
  }
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    log('shutting down');
    legacy?.server.close();
    legacy?.server.closeIdleConnections();
    void d.shutdown(args.shutdownTimeoutMs).finally(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`sandboxd: ${(err as Error)?.stack ?? String(err)}\n`);
  process.exit(1);
});
