// asb cp SRC DST: copy a file between the host and a sandbox; the sandbox side is ID:PATH.
// Both ways stream: a file of any size passes through a few chunks of memory, never whole.
import { createWriteStream } from 'node:fs';
import { open, rm } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Sandbox } from '@asb/sdk';
import type { Ctx } from '../context.ts';
import { BROKEN_PIPE_EXIT } from './run.ts';

/** Pure: "sb-1:/app/x" → { id, path }; a plain path → { path }. */
export function parseCpArg(arg: string): { id?: string; path: string } {
  const m = /^([a-z0-9][-a-z0-9]*):(.*)$/.exec(arg);
  return m ? { id: m[1], path: m[2] || '.' } : { path: arg };
}

export async function cpCommand(ctx: Ctx, src: string, dst: string): Promise<number> {
  const s = parseCpArg(src);
  const d = parseCpArg(dst);
  if (s.id && !d.id) return download(await Sandbox.connect(s.id, ctx.conn), s.path, d.path);
  if (!s.id && d.id) {
    await upload(await Sandbox.connect(d.id, ctx.conn), s.path, d.path);
    return 0;
  }
  throw new Error('asb cp: exactly one side must be a sandbox path ID:PATH, e.g. asb cp main.go sb-1:main.go');
}

async function download(sb: Sandbox, from: string, to: string): Promise<number> {
  const body = Readable.fromWeb(await sb.files.read(from, { format: 'stream' }));
  if (to === '-') {
    try {
      await pipeline(body, process.stdout, { end: false });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EPIPE') return BROKEN_PIPE_EXIT;
      throw err;
    }
    return 0;
  }
  try {
    await pipeline(body, createWriteStream(to));
  } catch (err) {
    // A cut transfer leaves no partial file that could pass for the whole one.
    await rm(to, { force: true }).catch(() => undefined);
    throw new Error(`asb cp: copying ${from} to ${to} failed, nothing was kept: ${(err as Error).message}`, {
      cause: err,
    });
  }
  return 0;
}

async function upload(sb: Sandbox, from: string, to: string): Promise<void> {
  if (from === '-') {
    await sb.files.write(to, process.stdin);
    return;
  }
  const file = await open(from);
  try {
    const st = await file.stat();
    if (!st.isFile()) throw new Error(`asb cp: ${from} is not a file (directories are not copied)`);
    // The size goes first (content-length): over the engine's limit, the copy is refused at once.
    await sb.files.write(to, file.createReadStream({ autoClose: false }), { size: st.size });
  } finally {
    await file.close();
  }
}
