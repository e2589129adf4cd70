// asb templates: the SandboxTemplates the engine knows.
import { listTemplates } from '@asb/sdk';
import type { Ctx } from '../context.ts';
import { print, formatTable, age } from '../output.ts';

export async function templatesCommand(ctx: Ctx): Promise<number> {
  const items = await listTemplates(ctx.conn);
  print(
    ctx.format,
    { items },
    () =>
      formatTable(
        ['name', 'namespace', 'image', 'age'],
        items.map((t) => [t.name, t.namespace, t.image ?? '', age(t.createdAt)]),
      ),
    () => items.map((t) => t.name).join('\n'),
  );
  return 0;
}
