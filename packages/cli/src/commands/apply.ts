// asb apply -f FILE (or -f - for stdin): upstream YAML, unchanged, kubectl's output.
import { readFile } from 'node:fs/promises';
import { apply } from '@asb/sdk';
import type { Ctx } from '../context.ts';
import { print } from '../output.ts';
import { withProgress } from '../progress.ts';

export async function applyCommand(ctx: Ctx, file: string | undefined): Promise<number> {
  if (!file) throw new Error('asb apply: give the manifest with -f FILE (or -f - for standard input)');
  const text = file === '-' ? await readStdin() : await readFile(file, 'utf8');
  const items = await withProgress(`applying ${file}`, apply(text, ctx.conn), { quiet: ctx.quiet });
  print(
    ctx.format,
    { items },
    () => items.map((i) => `${i.kind.toLowerCase()}/${i.name} ${i.action}`).join('\n'),
    () => items.map((i) => `${i.kind.toLowerCase()}/${i.name}`).join('\n'),
  );
  return 0;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
