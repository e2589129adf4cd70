// asb exec ID -- CMD: run a command in an existing sandbox, output streamed, exit with its code.
import { Sandbox } from '@asb/sdk';
import type { Ctx } from '../context.ts';
import { runIn, parseEnv, type RunFlags } from './run.ts';

export async function execCommand(ctx: Ctx, id: string, argv: string[], flags: RunFlags): Promise<number> {
  if (argv.length === 0) throw new Error('asb exec: give the command after --, e.g. asb exec ID -- ls -la');
  parseEnv(flags.env);
  return runIn(ctx, await Sandbox.connect(id, ctx.conn), argv, flags);
}
