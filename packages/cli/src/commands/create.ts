// asb create [--template T] [--name N]: start a sandbox and print its id.
import { Sandbox } from '@asb/sdk';
import type { Ctx } from '../context.ts';
import { print, formatTable } from '../output.ts';
import { withProgress } from '../progress.ts';
import { SANDBOX_HEADERS, sandboxRow } from './sandbox-rows.ts';

export async function createCommand(ctx: Ctx, flags: { template?: string; name?: string }): Promise<number> {
  const sb = await withProgress(`starting a sandbox from ${flags.template ?? 'python-runtime-template'}`, Sandbox.create({ ...ctx.conn, template: flags.template, name: flags.name }), { quiet: ctx.quiet });
  print(ctx.format === 'table' ? 'name' : ctx.format, sb.info, () => formatTable(SANDBOX_HEADERS, [sandboxRow(sb.info)]), () => sb.id);
  return 0;
}
