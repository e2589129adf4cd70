// An image's layers applied in order to one directory, as a container runtime's snapshotter
// applies them: whiteouts (`.wh.NAME`) delete NAME from the layers below, an opaque marker
// (`.wh..wh..opq`) hides everything below in its directory, owners and modes are kept, and
// nothing is written, linked or deleted outside the directory. Two implementations of the same
// rules, proven by the same tests: the Go unpacker (`unpack-go/`, built to dist/asb-unpack: Go's
// tar and decompression with plain system calls through an os.Root, ~4 times node-tar's speed and
// off the event loop), used when it was built; else node-tar here (it refuses `..` and paths
// through symbolic links; whiteouts are checked here, since they never reach node-tar).
import {
  createReadStream,
  existsSync,
  lchownSync,
  lstatSync,
  readdirSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  type Stats,
} from 'node:fs';
import { execFile } from 'node:child_process';
import { dirname, join, posix, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PassThrough, Transform, type Readable } from 'node:stream';
import { Decompress } from 'fzstd';
import { ReadEntry, Unpack } from 'tar';
import type { BlobStore } from './blob-store.ts';
import { RegistryError } from './errors.ts';
import { layerCompression, type Descriptor } from './media-types.ts';

const WHITEOUT = '.wh.';
/** Errors of the disk, not of an entry: an unpack that meets one fails. */
const FATAL_ERRNOS = new Set(['ENOSPC', 'EDQUOT', 'EIO', 'EROFS']);
const OPAQUE = '.wh..wh..opq';

export interface UnpackOptions {
  /** `node`: node-tar even where the Go unpacker was built (the benchmark's comparison). */
  unpacker?: 'node';
  /** What node-tar skipped and why (an entry through a symlink, a device node). */
  onWarning?: (message: string) => void;
}

const here = dirname(fileURLToPath(import.meta.url));

/**
 * The Go unpacker, if it was built: ASB_UNPACK (a path, or `node` for node-tar), else
 * dist/asb-unpack beside the bundle or from the sources.
 */
export function goUnpacker(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.ASB_UNPACK === 'node') return undefined;
  if (env.ASB_UNPACK) return env.ASB_UNPACK;
  return [join(here, 'asb-unpack'), resolve(here, '../../../dist/asb-unpack')].find((p) => existsSync(p));
}

/** Applies the layers (stored in `store`) in order to `dest`, an existing empty directory. */
export async function unpackLayers(
  store: BlobStore,
  layers: Descriptor[],
  dest: string,
  opts: UnpackOptions = {},
): Promise<void> {
  const applied = layers.map((layer) => {
    const compression = layerCompression(layer.mediaType);
    if (!compression) {
      throw new RegistryError('Unsupported', `layer ${layer.digest}: unsupported media type "${layer.mediaType}"`);
    }
    return { path: store.path(layer.digest), compression };
  });
  const go = opts.unpacker === 'node' ? undefined : goUnpacker();
  if (go) return unpackWithGo(go, applied, dest, opts);
  for (const layer of applied) await applyLayer(createReadStream(layer.path), layer.compression, dest, opts);
}

/** The Go unpacker, in a process of its own: its warnings passed on, its error thrown as ours. */
function unpackWithGo(
  bin: string,
  layers: Array<{ path: string; compression: 'gzip' | 'zstd' | 'none' }>,
  dest: string,
  opts: UnpackOptions,
): Promise<void> {
  const args = [dest, ...layers.map((l) => `${l.compression}:${l.path}`)];
  return new Promise((done, fail) => {
    execFile(bin, args, { maxBuffer: 64 * 1024 * 1024 }, (err, _stdout, stderr) => {
      const lines = stderr.split('\n').filter(Boolean);
      for (const l of lines) if (l.startsWith('warning: ')) opts.onWarning?.(l.slice('warning: '.length));
      if (!err) return done();
      const why = lines.find((l) => l.startsWith('error: '))?.slice('error: '.length) ?? err.message;
      const message = `unpacking the layers: ${why}`;
      // A full disk as node's own errors say it (the image store reports it as DiskFull); a layer
      // that does not decompress or read as tar as the image's fault, as node-tar's path says it.
      if (/no space left on device/i.test(why)) return fail(Object.assign(new Error(message), { code: 'ENOSPC' }));
      if (/reading the layer|not gzip|unsupported compression/.test(why)) {
        return fail(new RegistryError('Unsupported', message));
      }
      fail(new Error(message));
    });
  });
}

async function applyLayer(
  input: Readable,
  compression: 'gzip' | 'zstd' | 'none',
  dest: string,
  opts: UnpackOptions,
): Promise<void> {
  // Paths this layer has written: an opaque marker hides only what the layers below left.
  const written = new Set<string>();
  // node-tar makes `/usr/bin/python3` of a link's absolute target `usr/bin/python3`, relative to
  // the link's directory: a link the image means as absolute (resolved in the sandbox, whose root
  // this is) would point elsewhere. They are made again as the image has them once the layer is
  // written; node-tar never extracts through a link, so none is followed on the host meanwhile.
  const absoluteLinks: Array<{ rel: string; target: string; uid?: number; gid?: number }> = [];
  let fatal: Error | undefined;
  const unpack = new Unpack({
    cwd: dest,
    unlink: true, // a file replacing a lower one replaces it, never writes through its symlink
    chmod: true,
    processUmask: 0,
    preserveOwner: process.getuid?.() === 0,
    maxDepth: 4096,
    onwarn: (code: string, message: string | Error, data?: { code?: string }) => {
      // node-tar reports a file it could not write as a warning and goes on: a full or broken
      // disk would leave a root with files missing, published as whole. Those end the unpack.
      const errno = data?.code ?? (typeof message === 'string' ? undefined : (message as NodeJS.ErrnoException).code);
      if (errno && FATAL_ERRNOS.has(errno)) {
        fatal ??= Object.assign(new Error(typeof message === 'string' ? message : message.message), { code: errno });
      } else opts.onWarning?.(`${code}: ${typeof message === 'string' ? message : message.message}`);
    },
    filter: (path: string, entry: ReadEntry | Stats) => {
      const rel = posix
        .normalize(path)
        .replace(/^(\.\/|\/)+/, '')
        .replace(/\/$/, '');
      const base = posix.basename(rel);
      const dir = posix.dirname(rel);
      if (base === OPAQUE) {
        if (confined(dest, rel)) {
          const abs = dir === '.' ? dest : join(dest, dir);
          for (const name of safeReaddir(abs)) {
            const child = dir === '.' ? name : `${dir}/${name}`;
            if (!written.has(child)) rmSync(join(abs, name), { recursive: true, force: true });
          }
        } else opts.onWarning?.(`opaque marker ${path} is outside the root or under a symbolic link: ignored`);
        return false;
      }
      if (base.startsWith(WHITEOUT)) {
        const victim = `${dir === '.' ? '' : `${dir}/`}${base.slice(WHITEOUT.length)}`;
        if (confined(dest, victim)) rmSync(join(dest, victim), { recursive: true, force: true });
        else opts.onWarning?.(`whiteout ${path} is outside the root or under a symbolic link: ignored`);
        return false;
      }
      written.add(rel);
      if (entry instanceof ReadEntry && entry.type === 'SymbolicLink' && entry.linkpath?.startsWith('/')) {
        absoluteLinks.push({ rel, target: entry.linkpath, uid: entry.uid, gid: entry.gid });
      }
      return true;
    },
  });
  const done = new Promise<void>((resolve, reject) => {
    unpack.on('close', () => resolve());
    unpack.on('error', reject);
  });
  const decoder = compression === 'zstd' ? zstdDecoder() : new PassThrough(); // node-tar sees gzip itself
  input.on('error', (err) => unpack.emit('error', err));
  decoder.on('error', (err) => unpack.emit('error', err));
  input.pipe(decoder).pipe(unpack);
  await done;
  if (fatal) throw fatal;
  for (const link of absoluteLinks) {
    const at = join(dest, link.rel);
    // Only a link node-tar made here, at a place reached through no link.
    if (!confined(dest, link.rel) || !isSymlink(at)) continue;
    unlinkSync(at);
    symlinkSync(link.target, at);
    if (process.getuid?.() === 0 && link.uid !== undefined && link.gid !== undefined)
      lchownSync(at, link.uid, link.gid);
  }
}

function isSymlink(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink();
  } catch {
    return false;
  }
}

/**
 * Whether `rel` names a place inside `root` reached through no symbolic link: no `..`, and no
 * component before the last one is a link (the last one may be: a whiteout removes the link
 * itself). A path whose parents do not exist is inside (there is nothing to remove).
 */
function confined(root: string, rel: string): boolean {
  const parts = rel.split('/');
  if (parts.some((p) => p === '..' || p === '')) return false;
  let at = root;
  for (const part of parts.slice(0, -1)) {
    at = join(at, part);
    try {
      const st = lstatSync(at);
      if (st.isSymbolicLink() || !st.isDirectory()) return false;
    } catch {
      return true;
    }
  }
  return true;
}

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** zstd decompression as a stream (Node 20 has none of its own; fzstd is pure JavaScript). */
function zstdDecoder(): Transform {
  const zstd = new Decompress((chunk: Uint8Array) => {
    stream.push(Buffer.from(chunk));
  });
  const stream = new Transform({
    transform(chunk: Buffer, _enc, done) {
      try {
        zstd.push(chunk);
        done();
      } catch (err) {
        done(new RegistryError('Unsupported', `a zstd layer does not decompress: ${(err as Error).message}`));
      }
    },
    flush(done) {
      try {
        zstd.push(new Uint8Array(0), true);
        done();
      } catch (err) {
        done(new RegistryError('Unsupported', `a zstd layer does not decompress: ${(err as Error).message}`));
      }
    },
  });
  return stream;
}
