// A build step's layer, from the directory it wrote: the upper directory of the overlay a RUN ran
// on (whiteouts as the kernel leaves them: character devices 0/0, and opaque directories), or a
// COPY's staged files. Written as an OCI layer (gzip tar, owners and modes kept, whiteouts as
// `.wh.` files) into the image store's blobs.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstatSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import type { BlobStore, Descriptor } from '@asb/oci';

const run = promisify(execFile);
export const LAYER_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';

export interface BuiltLayer {
  descriptor: Descriptor;
  /** sha256 of the uncompressed tar: the config's rootfs.diff_ids entry. */
  diffId: string;
}

/**
 * The directories in `upper` that hide what the layers beneath had (an overlay's opaque
 * directories: a directory removed and made again). Found without reading xattrs, while the
 * overlay is still mounted: a name a lower layer has, that the merged view lacks, and that the
 * upper directory does not white out.
 */
export function opaqueDirs(upper: string, merged: string, lowers: string[]): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const name of readdirSync(join(upper, rel))) {
      const p = join(rel, name);
      if (!lstatSync(join(upper, p)).isDirectory()) continue;
      const seen = new Set(readdirSync(join(merged, p)));
      const hidden = lowers.some((l) => {
        const st = lstatSync(join(l, p), { throwIfNoEntry: false });
        if (!st?.isDirectory()) return false;
        return readdirSync(join(l, p)).some((n) => !seen.has(n) && !isWhiteout(join(upper, p, n)));
      });
      if (hidden) out.push(p);
      walk(p);
    }
  };
  walk('');
  return out;
}

function isWhiteout(path: string): boolean {
  const st = lstatSync(path, { throwIfNoEntry: false });
  return !!st && st.isCharacterDevice() && st.rdev === 0;
}

/** Writes `dir` as a layer blob. `opaque`: directories (relative) to mark opaque. `dir` is
 *  copied before whiteouts are rewritten, so it stays usable as an overlay's lower layer. */
export async function writeLayer(blobs: BlobStore, dir: string, opaque: string[] = []): Promise<BuiltLayer> {
  const stage = mkdtempSync(join(blobs.tmp, 'layer-'));
  try {
    await run('cp', ['-a', '--', `${dir}/.`, stage], { maxBuffer: 1 << 20 });
    const convert = (rel: string) => {
      for (const name of readdirSync(join(stage, rel))) {
        const p = join(stage, rel, name);
        if (isWhiteout(p)) {
          rmSync(p);
          writeFileSync(join(stage, rel, `.wh.${name}`), '');
        } else if (lstatSync(p).isDirectory()) convert(join(rel, name));
      }
    };
    convert('');
    for (const d of opaque) writeFileSync(join(stage, d, '.wh..wh..opq'), '');
    const tarPath = `${stage}.tar`;
    await run('tar', ['--numeric-owner', '--sort=name', '--xattrs', '-C', stage, '-cf', tarPath, '.']);
    const tar = readFileSync(tarPath);
    rmSync(tarPath, { force: true });
    const gz = gzipSync(tar);
    const digest = `sha256:${createHash('sha256').update(gz).digest('hex')}`;
    await blobs.put(digest, gz);
    return {
      descriptor: { mediaType: LAYER_GZIP, digest, size: gz.length },
      diffId: `sha256:${createHash('sha256').update(tar).digest('hex')}`,
    };
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

/** `path` relative to `root`, or undefined when it is outside it. */
export function inside(root: string, path: string): string | undefined {
  const rel = relative(root, path);
  return rel.startsWith('..') || rel.startsWith('/') ? undefined : rel;
}
