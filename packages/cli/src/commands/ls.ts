// asb ls: the sandboxes, as a table or -o json|yaml|name.
import { Sandbox } from '@asb/sdk';
import type { Ctx } from '../context.ts';
import { print, formatTable } from '../output.ts';
import { SANDBOX_HEADERS, sandboxRow } from './sandbox-rows.ts';

export async function lsCommand(ctx: Ctx): Promise<number> {
  const items = await Sandbox.list(ctx.conn);
  print(
    ctx.format,
    { items },
    () =>
      items.length
        ? formatTable(
            SANDBOX_HEADERS,
            items.map((s) => sandboxRow(s)),
          )
        : 'No sandboxes.',
    () => items.map((s) => s.name).join('\n'),
  );
  return 0;
}
