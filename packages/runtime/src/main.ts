// The agent's entry point (PID 1's child in a local sandbox, or the container's command on
// Kubernetes); arguments in args.ts. Nothing here runs at module load but the snapshot hook:
// a V8 startup snapshot (scripts/build.mjs) would freeze the build machine's environment.
import v8 from 'node:v8';
import { isArgName, parseArgs, UsageError, type AgentArgs } from './args.ts';
import {
  AGENT_SOCKET_NAME,
  configFromEnv,
  createAgent,
  listenAbstract,
  requestHandler,
  serveFd,
  serveHttp1,
} from './server.ts';
import { NodeSpawner, ZygoteSpawner } from './spawner.ts';

async function start(): Promise<void> {
  const debug = process.env.ASB_DEBUG === '1';
  // process.uptime(): time since the process started, so the log says what startup cost.
  const log = (msg: string) => {
    if (debug) process.stderr.write(`[agent +${(process.uptime() * 1000).toFixed(0)}ms] ${msg}\n`);
  };
  let args: AgentArgs;
  try {
    // argv[1] is the script, or under a snapshot already the first of our words.
    const words = process.argv.slice(1);
    args = parseArgs(words[0] !== undefined && !isArgName(words[0]) ? words.slice(1) : words);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`agent: ${err.message}\n`);
    process.exit(2);
  }
  // asb-spawn, when it started the agent (the local engine's PID 1), forks commands; else node.
  const agent = createAgent(configFromEnv(process.env), ZygoteSpawner.fromEnv() ?? new NodeSpawner());
  const handler = await requestHandler(agent.app);

  // Registered before any request is served (the same tick as serveFd, before serveHttp1's
  // await), so that GET /v1/processes/main never misses it.
  const startMain = () => {
    if (!args.main) return;
    agent.procs.start({ command: args.main.join(' '), argv: args.main }, 'main');
    log(`main process: ${args.main.join(' ')}`);
  };
  if (args.mode === 'fd') {
    const server = serveFd(handler, args.fd, (why) => log(why));
    log(`serving HTTP/2 on fd ${args.fd}`);
    // For an engine that restarts (it re-attaches through `asb-spawn --relay`). After fd 0, so
    // the first request does not wait for it; before the main process, so that nothing in the
    // sandbox can take the name first.
    listenAbstract(server, AGENT_SOCKET_NAME, log);
    startMain();
    // The engine may go away (crash, restart): the sandbox's processes keep running regardless,
    // and with the connection gone nothing else would keep node's event loop alive.
    setInterval(() => undefined, 2 ** 31 - 1);
  } else {
    startMain();
    const { port } = await serveHttp1(handler, args.host, args.port);
    log(`serving HTTP/1.1 on ${args.host}:${port}`);
  }
  process.on('SIGTERM', () => process.exit(0));
  // The agent is the sandbox's first process: if it died, the sandbox would go with it. A bug in
  // one request must not take the user's processes and files down; it is logged and survived.
  process.on('uncaughtException', (err) => process.stderr.write(`[agent] uncaught: ${err.stack ?? err}\n`));
  process.on('unhandledRejection', (err) =>
    process.stderr.write(`[agent] unhandled rejection: ${(err as Error)?.stack ?? String(err)}\n`),
  );
}

// Building the snapshot runs this module with every dependency loaded and initialised; a sandbox
// then starts from that heap and only runs start(). Under gVisor that saves most of the startup.
if (v8.startupSnapshot?.isBuildingSnapshot()) v8.startupSnapshot.setDeserializeMainFunction(() => void start());
else void start();
