// An image's layers applied in order to one directory, as a container runtime's snapshotter
// applies them: whiteouts (`.wh.NAME`) delete NAME from the layers below, an opaque marker
// (`.wh..wh..opq`) hides everything below in its directory, owners and modes are kept, and
// nothing is written, linked or deleted outside the directory (node-tar refuses `..` and paths
// through symbolic links; whiteouts are checked here, since they never reach node-tar).
import {
  createReadStream,
  lchownSync,
  lstatSync,
  readdirSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  type Stats,
} from 'node:fs';
import { join, posix } from 'node:path';
import { PassThrough, Transform, type Readable } from 'node:stream';
import { Decompress } from 'fzstd';
import { ReadEntry, Unpack } from 'tar';
import type { BlobStore } from './blob-store.ts';
import { RegistryError } from './errors.ts';
import { layerCompression, type Descriptor } from './media-types.ts';

const WHITEOUT = '.wh.';
const OPAQUE = '.wh..wh..opq';

export interface UnpackOptions {
  /** What node-tar skipped and why (an entry through a symlink, a device node). */
  onWarning?: (message: string) => void;
}

/** Applies the layers (stored in `store`) in order to `dest`, an existing empty directory. */
export async function unpackLayers(
  store: BlobStore,
  layers: Descriptor[],
  dest: string,
  opts: UnpackOptions = {},
): Promise<void> {
  for (const layer of layers) {
    const compression = layerCompression(layer.mediaType);
    if (!compression) {
      throw new RegistryError('Unsupported', `layer ${layer.digest}: unsupported media type "${layer.mediaType}"`);
    }
    await applyLayer(createReadStream(store.path(layer.digest)), compression, dest, opts);
  }
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
  const unpack = new Unpack({
    cwd: dest,
    unlink: true, // a file replacing a lower one replaces it, never writes through its symlink
    chmod: true,
    processUmask: 0,
    preserveOwner: process.getuid?.() === 0,
    maxDepth: 4096,
    onwarn: (code: string, message: string | Error) =>
      opts.onWarning?.(`${code}: ${typeof message === 'string' ? message : message.message}`),
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
