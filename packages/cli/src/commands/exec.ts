// asb exec ID -- CMD: run a command in an existing sandbox, output streamed, exit with its code;
// with --detach, start it as a background process (a server, say) and print its id.
import { Sandbox } from '@asb/sdk';
import type { Ctx } from '../context.ts';
import { print } from '../output.ts';
import { runIn, parseEnv, shellQuote, type RunFlags } from './run.ts';

export async function execCommand(
  ctx: Ctx,
  id: string,
  argv: string[],
  flags: RunFlags & { detach?: boolean },
): Promise<number> {
  if (argv.length === 0) throw new Error('asb exec: give the command after --, e.g. asb exec ID -- ls -la');
  const env = parseEnv(flags.env);
  const sandbox = await Sandbox.connect(id, ctx.conn);
  if (!flags.detach) return runIn(ctx, sandbox, argv, flags);
  const cmd = argv.length === 1 ? argv[0]! : argv.map(shellQuote).join(' ');
  const started = await sandbox.commands.start(cmd, {
    env,
    cwd: flags.cwd,
    timeoutMs: flags.timeout ? Number(flags.timeout) * 1000 : undefined,
  });
  print(
    ctx.format === 'table' ? 'name' : ctx.format,
    started,
    () => '',
    () => started.id,
  );
  return 0;
}
