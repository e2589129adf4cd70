// asb exec ID -- CMD: run a command in an existing sandbox, output streamed, exit with its code.
import { Sandbox, TimeoutError } from '@asb/sdk';
import type { Ctx } from '../context.ts';
import { parseEnv, shellQuote, type RunFlags } from './run.ts';

export async function execCommand(ctx: Ctx, id: string, argv: string[], flags: RunFlags): Promise<number> {
  if (argv.length === 0) throw new Error('asb exec: give the command after --, e.g. asb exec ID -- ls -la');
  const sandbox = await Sandbox.connect(id, ctx.conn);
  const cmd = argv.length === 1 ? argv[0]! : argv.map(shellQuote).join(' ');
  const result = await sandbox.run(cmd, {
    timeoutMs: flags.timeout ? Number(flags.timeout) * 1000 : undefined, env: parseEnv(flags.env), cwd: flags.cwd,
    onStdout: ctx.format === 'table' ? (d) => process.stdout.write(d) : undefined,
    onStderr: ctx.format === 'table' ? (d) => process.stderr.write(d) : undefined,
  }).catch((err) => {
    if (err instanceof TimeoutError && err.result) { process.stderr.write(`asb: ${err.message}\n`); return { ...err.result, exitCode: 124 }; }
    throw err;
  });
  if (ctx.format === 'json') process.stdout.write(JSON.stringify({ sandbox: sandbox.id, ...result }, null, 2) + '\n');
  return result.exitCode;
}
