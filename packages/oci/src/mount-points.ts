// Mount points in an unpacked image. The runtime makes a missing mount point itself, as root, in
// the directory beneath it, which for an image is the root filesystem every sandbox of the image
// shares: so they are made here first, each directory resolved inside the image as the sandbox
// would resolve it (an image's links are the image's, absolute ones relative to its root), and
// never through a link onto the host.
import { lstatSync, mkdirSync, readlinkSync } from 'node:fs';
import { join, posix } from 'node:path';

export class MountPointError extends Error {
  override name = 'MountPointError';
}

const MAX_LINKS = 40;

/**
 * Makes `path` (absolute, inside the image) a directory in `rootfs`, following the image's own
 * links within it. Returns the path as resolved in the image. Throws when a component is a file,
 * or the links loop.
 */
export function ensureMountPoint(rootfs: string, path: string): string {
  if (!path.startsWith('/') || path.includes('\0')) throw new MountPointError(`"${path}" is not an absolute path`);
  const rest = path.split('/').filter((p) => p && p !== '.');
  let resolved: string[] = [];
  for (let links = 0; rest.length > 0;) {
    const name = rest.shift()!;
    if (name === '..') {
      resolved.pop(); // at the image's root, `..` is the root, as in the sandbox
      continue;
    }
    const at = join(rootfs, ...resolved, name);
    const st = lstatSync(at, { throwIfNoEntry: false });
    if (!st) {
      mkdirSync(at, { mode: 0o755 });
      resolved.push(name);
    } else if (st.isSymbolicLink()) {
      if (++links > MAX_LINKS) throw new MountPointError(`"${path}": too many symbolic links in the image`);
      const target = readlinkSync(at);
      if (target.startsWith('/')) resolved = [];
      rest.unshift(...target.split('/').filter((p) => p && p !== '.'));
    } else if (st.isDirectory()) {
      resolved.push(name);
    } else {
      throw new MountPointError(`"${path}": /${[...resolved, name].join('/')} is a file in the image, not a directory`);
    }
  }
  return posix.join('/', ...resolved);
}
