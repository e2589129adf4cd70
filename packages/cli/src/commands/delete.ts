// asb delete KIND NAME... | asb delete -f FILE: kubectl delete for the four kinds. Deleting a
// claim deletes its sandbox; deleting a pool deletes only its unclaimed members.
import { readFile } from 'node:fs/promises';
import { parseManifests } from '@asb/api';
import { Objects, resolveKind, NotFoundError } from '@asb/sdk';
import type { Ctx } from '../context.ts';
import { UsageError } from '../output.ts';

export async function deleteCommand(
  ctx: Ctx,
  args: string[],
  flags: { filename?: string; ignoreNotFound?: boolean },
): Promise<number> {
  const targets: Array<{ kind: string; name: string; namespace?: string }> = [];
  if (flags.filename) {
    const text =
      flags.filename === '-' ? await new Response(process.stdin).text() : await readFile(flags.filename, 'utf8');
    for (const r of parseManifests(text)) {
      if (!r.ok)
        throw new UsageError(
          `${flags.filename}: document ${r.doc} is not a valid object: ${r.errors.map((e) => `${e.path}: ${e.message}`).join('; ')}`,
        );
      targets.push({ kind: r.object.kind, name: r.object.metadata.name ?? '', namespace: r.object.metadata.namespace });
    }
  } else {
    const [kindWord, ...names] = args;
    if (!kindWord || !names.length) throw new UsageError('asb delete KIND NAME... (or -f FILE)');
    for (const n of names) targets.push({ kind: kindWord, name: n });
  }
  let failed = 0;
  for (const t of targets) {
    const kind = resolveKind(t.kind);
    const api = new Objects({ ...ctx.conn, namespace: t.namespace ?? ctx.conn.namespace });
    try {
      await api.delete(kind, t.name);
      process.stdout.write(`${kind.toLowerCase()}/${t.name} deleted\n`);
    } catch (err) {
      if (err instanceof NotFoundError && flags.ignoreNotFound) continue;
      process.stderr.write(`asb: ${(err as Error).message}\n`);
      failed++;
    }
  }
  return failed ? 1 : 0;
}
