// asb run [--template T] -- CMD: create, run with output streamed, clean up, exit with the code.
import { Sandbox, TimeoutError } from '@asb/sdk';
import type { Ctx } from '../context.ts';
import { withProgress } from '../progress.ts';

export interface RunFlags { template?: string; timeout?: string; keep?: boolean; env?: string[]; cwd?: string }

export function parseEnv(pairs: string[] = []): Record<string, string> {
  const env: Record<string, string> = {};
  for (const p of pairs) {
    const i = p.indexOf('=');
    if (i <= 0) throw new Error(`--env ${p}: expected NAME=VALUE`);
    env[p.slice(0, i)] = p.slice(i + 1);
  }
  return env;
}

export async function runCommand(ctx: Ctx, argv: string[], flags: RunFlags): Promise<number> {
  if (argv.length === 0) throw new Error('asb run: give the command after --, e.g. asb run -- python3 -c "print(1)"');
  const env = parseEnv(flags.env);
  const sandbox = await withProgress(`starting a sandbox from ${flags.template ?? 'python-runtime-template'}`, Sandbox.create({ ...ctx.conn, template: flags.template }), { quiet: ctx.quiet });
  try {
    const cmd = argv.length === 1 ? argv[0]! : argv.map(shellQuote).join(' ');
    const result = await sandbox.run(cmd, {
      timeoutMs: flags.timeout ? Number(flags.timeout) * 1000 : undefined, env, cwd: flags.cwd,
      onStdout: ctx.format === 'table' ? (d) => process.stdout.write(d) : undefined,
      onStderr: ctx.format === 'table' ? (d) => process.stderr.write(d) : undefined,
    }).catch((err) => {
      if (err instanceof TimeoutError && err.result) { process.stderr.write(`asb: ${err.message}\n`); return { ...err.result, exitCode: 124 }; }
      throw err;
    });
    if (ctx.format === 'json') process.stdout.write(JSON.stringify({ sandbox: sandbox.id, ...result }, null, 2) + '\n');
    if (flags.keep) process.stderr.write(`asb: kept sandbox ${sandbox.id}\n`);
    return result.exitCode;
  } finally {
    if (!flags.keep) await sandbox.kill();
  }
}

/** Quotes one argv word for bash -c, so `asb run -- echo "a b"` keeps its words. */
export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_\-+=.,/:@%^]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
