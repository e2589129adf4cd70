// The agent's entry point (PID 1's child in a local sandbox, or the container's command on
// Kubernetes); arguments in args.ts. Nothing here runs at module load but the snapshot hook:
// a V8 startup snapshot (scripts/build.mjs) would freeze the build machine's environment.
import v8 from 'node:v8';
import { isArgName, parseArgs, UsageError, type AgentArgs } from './args.ts';
import { configFromEnv, createAgent, requestHandler, serveFd, serveHttp1 } from './server.ts';
import { NodeSpawner, ZygoteSpawner } from './spawner.ts';

async function start(): Promise<void> {
  const debug = process.env.ASB_DEBUG === '1';
  // process.uptime(): time since the process started, so the log says what startup cost.
  const log = (msg: string) => { if (debug) process.stderr.write(`[agent +${(process.uptime() * 1000).toFixed(0)}ms] ${msg}\n`); };
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

  if (args.main) {
    agent.procs.start({ command: args.main.join(' '), argv: args.main }, 'main');
    log(`main process: ${args.main.join(' ')}`);
  }
  if (args.mode === 'fd') {
    serveFd(handler, args.fd, (why) => log(why));
    // The engine may go away (crash, restart): the sandbox's processes keep running regardless,
    // and with the connection gone nothing else would keep node's event loop alive.
    setInterval(() => undefined, 2 ** 31 - 1);
    log(`serving HTTP/2 on fd ${args.fd}`);
  } else {
    const { port } = await serveHttp1(handler, args.host, args.port);
    log(`serving HTTP/1.1 on ${args.host}:${port}`);
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
