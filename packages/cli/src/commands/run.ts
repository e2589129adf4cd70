// asb run [--template T | --image IMG] -- CMD: create, run with output streamed, clean up, exit with the code.
import { Sandbox, TimeoutError, type CommandResult } from '@asb/sdk';
import type { Ctx } from '../context.ts';
import { withProgress } from '../progress.ts';

export interface RunFlags {
  template?: string;
  image?: string;
  timeout?: string;
  keep?: boolean;
  env?: string[];
  cwd?: string;
}

export function parseEnv(pairs: string[] = []): Record<string, string> {
  const env: Record<string, string> = {};
  for (const p of pairs) {
    const i = p.indexOf('=');
    if (i <= 0) throw new Error(`--env ${p}: expected NAME=VALUE`);
    env[p.slice(0, i)] = p.slice(i + 1);
  }
  return env;
}

/** Quotes one argv word for bash -c, so `asb run -- echo "a b"` keeps its words. */
export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_\-+=.,/:@%^]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Exit status of a command whose output's reader went away (`asb exec … | head`), as a shell
 *  reports one killed by SIGPIPE: quietly, since nobody is left to read a message about it. */
export const BROKEN_PIPE_EXIT = 141;

/** Runs argv in a sandbox; a timeout is reported as exit 124. In table mode the output streams
 *  to our stdout and stderr as the command's exact bytes, and none of it is kept: memory stays
 *  flat however much it prints. With -o json the result (capped, see the SDK) is printed. */
export async function runIn(ctx: Ctx, sandbox: Sandbox, argv: string[], flags: RunFlags): Promise<number> {
  const cmd = argv.length === 1 ? argv[0]! : argv.map(shellQuote).join(' ');
  const stream = ctx.format === 'table';
  let result: CommandResult;
  try {
    result = await sandbox.run(cmd, {
      timeoutMs: flags.timeout ? Number(flags.timeout) * 1000 : undefined,
      env: parseEnv(flags.env),
      cwd: flags.cwd,
      ...(stream ? { stdout: process.stdout, stderr: process.stderr, maxOutputChars: 0 } : {}),
    });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EPIPE') return BROKEN_PIPE_EXIT;
    if (!(err instanceof TimeoutError && err.result)) throw err;
    process.stderr.write(`asb: ${err.message}\n`);
    result = { ...err.result, exitCode: 124 };
  }
  if (ctx.format === 'json') process.stdout.write(JSON.stringify({ sandbox: sandbox.id, ...result }, null, 2) + '\n');
  return result.exitCode;
}

export async function runCommand(ctx: Ctx, argv: string[], flags: RunFlags): Promise<number> {
  if (argv.length === 0) throw new Error('asb run: give the command after --, e.g. asb run -- python3 -c "print(1)"');
  parseEnv(flags.env); // refuse bad flags before starting anything
  const sandbox = await withProgress(
    flags.image ? `starting a sandbox of image ${flags.image}` : `starting a sandbox from ${flags.template}`,
    Sandbox.create({ ...ctx.conn, ...(flags.image ? { image: flags.image } : { template: flags.template }) }),
    { quiet: ctx.quiet },
  );
  try {
    const code = await runIn(ctx, sandbox, argv, flags);
    if (flags.keep) process.stderr.write(`asb: kept sandbox ${sandbox.id}\n`);
    return code;
  } finally {
    if (!flags.keep) await sandbox.kill();
  }
}
