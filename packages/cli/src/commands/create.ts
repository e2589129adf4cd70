// asb create [--template T | --image IMG | --from-snapshot ID] [--name N]: start a sandbox and print its id.
import { Sandbox } from '@asb/sdk';
import type { Ctx } from '../context.ts';
import { print, formatTable } from '../output.ts';
import { withProgress } from '../progress.ts';
import { SANDBOX_HEADERS, sandboxRow } from './sandbox-rows.ts';

export async function createCommand(
  ctx: Ctx,
  flags: { template: string; image?: string; name?: string; fromSnapshot?: string },
): Promise<number> {
  // The template flag has a default (DEFAULT_TEMPLATE): a snapshot or an image replaces it.
  const from = flags.fromSnapshot
    ? `snapshot ${flags.fromSnapshot}`
    : flags.image
      ? `image ${flags.image}`
      : flags.template;
  const sb = await withProgress(
    `starting a sandbox from ${from}`,
    Sandbox.create({
      ...ctx.conn,
      template: flags.fromSnapshot || flags.image ? undefined : flags.template,
      image: flags.image,
      name: flags.name,
      fromSnapshot: flags.fromSnapshot,
    }),
    { quiet: ctx.quiet },
  );
  print(
    ctx.format === 'table' ? 'name' : ctx.format,
    sb.info,
    () => formatTable(SANDBOX_HEADERS, [sandboxRow(sb.info)]),
    () => sb.id,
  );
  return 0;
}
