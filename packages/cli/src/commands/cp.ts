// asb cp SRC DST: copy a file between the host and a sandbox; the sandbox side is ID:PATH.
import { readFile, writeFile } from 'node:fs/promises';
import { Sandbox } from '@asb/sdk';
import type { Ctx } from '../context.ts';

/** Pure: "sb-1:/app/x" → { id, path }; a plain path → { path }. */
export function parseCpArg(arg: string): { id?: string; path: string } {
  const m = /^([a-z0-9][-a-z0-9]*):(.*)$/.exec(arg);
  return m ? { id: m[1], path: m[2] || '.' } : { path: arg };
}

export async function cpCommand(ctx: Ctx, src: string, dst: string): Promise<number> {
  const s = parseCpArg(src);
  const d = parseCpArg(dst);
  if (s.id && !d.id) {
    const sb = await Sandbox.connect(s.id, ctx.conn);
    const data = await sb.files.read(s.path, { format: 'bytes' });
    if (d.path === '-') process.stdout.write(data); else await writeFile(d.path, data);
    return 0;
  }
  if (!s.id && d.id) {
    const sb = await Sandbox.connect(d.id, ctx.conn);
    const data = s.path === '-' ? await readStdin() : await readFile(s.path);
    await sb.files.write(d.path, data);
    return 0;
  }
  throw new Error('asb cp: exactly one side must be a sandbox path ID:PATH, e.g. asb cp main.go sb-1:main.go');
}

async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}
