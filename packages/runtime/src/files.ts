// Files in the sandbox, every path through the Confiner. Uploads stream to a temporary file and
// are renamed into place, so a failed or oversized upload leaves nothing behind.
import { mkdir, open, readdir, rename, rm, rmdir, stat, lstat, writeFile, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { constants as fsConstants } from 'node:fs';
import { AgentError } from './errors.ts';
import type { Confiner } from './confine.ts';
import type { FileEntry, FileStat } from './replies.ts';

const READ_CHUNK_BYTES = 64 * 1024;

/** Bytes [start, end) of the file, as a stream that closes the file however it ends (a
 *  generator's own `finally` would not run if it were cancelled before its first read). */
export function readExactly(fh: FileHandle, start: number, end: number, userPath: string): Readable {
  async function* chunks(): AsyncGenerator<Buffer> {
    for (let pos = start; pos < end;) {
      const buf = Buffer.allocUnsafe(Math.min(READ_CHUNK_BYTES, end - pos));
      const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
      if (bytesRead === 0) throw new Error(`"${userPath}" shrank to ${pos} bytes while it was being read`);
      pos += bytesRead;
      yield buf.subarray(0, bytesRead);
    }
  }
  const stream = Readable.from(chunks(), { objectMode: false, highWaterMark: READ_CHUNK_BYTES });
  stream.once('close', () => void fh.close().catch(() => undefined));
  return stream;
}

export class FileService {
  constructor(
    readonly confiner: Confiner,
    readonly maxUploadBytes: number,
  ) {}

  private tooLarge(): AgentError {
    return new AgentError(
      'PayloadTooLarge',
      `upload exceeds the limit of ${this.maxUploadBytes} bytes (ASB_MAX_UPLOAD_BYTES)`,
    );
  }

  /** Writes a whole buffer (multipart uploads). */
  async writeBuffer(userPath: string, data: Uint8Array): Promise<{ path: string; size: number }> {
    if (data.byteLength > this.maxUploadBytes) throw this.tooLarge();
    const target = this.confiner.resolve(userPath);
    await mkdir(dirname(target), { recursive: true });
    const tmp = join(dirname(target), `.${basename(target)}.${randomBytes(4).toString('hex')}.part`);
    await writeFile(tmp, data);
    await rename(tmp, target);
    return { path: target, size: data.byteLength };
  }

  /** Streams a body to disk, refusing it as soon as it passes the limit. With `mode`, the file
   *  gets exactly those permission bits (the umask aside); with `sync`, it is on disk before the
   *  rename makes it visible (both as upstream's sandboxd writes). */
  async writeStream(
    userPath: string,
    body: Readable,
    opts: { mode?: number; sync?: boolean } = {},
  ): Promise<{ path: string; size: number }> {
    const target = this.confiner.resolve(userPath);
    await mkdir(dirname(target), { recursive: true });
    if ((await stat(target).catch(() => undefined))?.isDirectory())
      throw new AgentError('Conflict', `"${userPath}" is a directory`);
    const tmp = join(dirname(target), `.${basename(target)}.${randomBytes(4).toString('hex')}.part`);
    // open() first, so a permission error is a rejected promise here, not an 'error' event later.
    const out = await open(tmp, 'w', 0o644);
    let size = 0;
    try {
      if (opts.mode !== undefined) await out.chmod(opts.mode);
      for await (const chunk of body) {
        size += (chunk as Buffer).length;
        if (size > this.maxUploadBytes) throw this.tooLarge();
        await out.write(chunk as Buffer);
      }
      if (opts.sync) await out.sync();
      await out.close();
      await rename(tmp, target);
      return { path: target, size };
    } catch (err) {
      await out.close().catch(() => undefined);
      await rm(tmp, { force: true });
      throw err;
    }
  }

  /** The file's size and a stream of exactly that many bytes: the size goes out as the
   *  content-length before the bytes do. Read to EOF instead, a file still being written sent
   *  more than it announced, which HTTP/2 treats as a protocol error (the client got a cut
   *  transfer); so what was appended after the stat is left out, and a file that shrinks under
   *  the read ends the stream with an error rather than a short body that looks whole. */
  async openRead(userPath: string): Promise<{ stream: Readable; size: number }> {
    const p = this.confiner.resolve(userPath);
    // One descriptor for the size and the bytes: a file renamed over this path meanwhile does not
    // mix in. O_NONBLOCK: opening a FIFO must not hold one of libuv's four threads forever.
    const fh = await open(p, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
    const st = await fh.stat().catch((err) => {
      void fh.close();
      throw err;
    });
    if (!st.isFile()) {
      await fh.close();
      throw new AgentError('NotFound', 'File not found');
    }
    return { stream: readExactly(fh, 0, st.size, userPath), size: st.size };
  }

  async list(userPath: string): Promise<FileEntry[]> {
    const p = this.confiner.resolve(userPath);
    const st = await stat(p).catch(() => undefined);
    if (!st?.isDirectory()) throw new AgentError('NotFound', 'Path is not a directory');
    const names = await readdir(p);
    const out: FileEntry[] = [];
    for (const name of names.sort()) {
      const s = await stat(join(p, name)).catch(() => undefined);
      if (s) out.push({ name, size: s.size, type: s.isDirectory() ? 'directory' : 'file', mod_time: s.mtimeMs / 1000 });
    }
    return out;
  }

  async exists(userPath: string): Promise<boolean> {
    const p = this.confiner.resolve(userPath);
    return (await stat(p).catch(() => undefined)) !== undefined;
  }

  async stat(userPath: string): Promise<FileStat> {
    const p = this.confiner.resolve(userPath);
    const s = await lstat(p).catch(() => {
      throw new AgentError('NotFound', `"${userPath}" does not exist`);
    });
    const type = s.isFile() ? 'file' : s.isDirectory() ? 'directory' : s.isSymbolicLink() ? 'symlink' : 'other';
    return { name: basename(p), path: p, type, size: s.size, mode: s.mode & 0o7777, mtimeMs: s.mtimeMs };
  }

  async mkdir(userPath: string): Promise<void> {
    const p = this.confiner.resolve(userPath);
    try {
      await mkdir(p, { recursive: true });
    } catch (err) {
      // mkdir -p over a file (or through one) is a conflict with what is there, not a failure.
      if ((err as NodeJS.ErrnoException).code === 'EEXIST' || (err as NodeJS.ErrnoException).code === 'ENOTDIR')
        throw new AgentError('Conflict', `"${userPath}" (or a parent of it) exists and is not a directory`);
      throw err;
    }
  }

  async remove(userPath: string, recursive: boolean): Promise<void> {
    const p = this.confiner.resolve(userPath);
    if (p === this.confiner.base) throw new AgentError('Invalid', 'refusing to remove the workspace itself');
    const s = await lstat(p).catch(() => {
      throw new AgentError('NotFound', `"${userPath}" does not exist`);
    });
    if (s.isDirectory() && !recursive) await rmdir(p);
    else await rm(p, { recursive: true, force: false });
  }
}
