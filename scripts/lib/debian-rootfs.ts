// A real Debian bookworm root filesystem made on this machine (no image registry outside is
// reachable, Debian's package mirror is): `debootstrap --variant=minbase` plus the packages asked
// for, without the package cache and lists (as debian:bookworm-slim leaves them out). Cached in
// ~/.cache/asb-test-images per package set, published by rename so a killed run leaves no half
// rootfs in use. The test images, the benchmarks and the local runtime images start from it.
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const DEBIAN_MIRROR = process.env.ASB_DEBIAN_MIRROR ?? 'http://deb.debian.org/debian';

/** The rootfs's directory, or why it cannot be made here (not root, no debootstrap). */
export async function debianRootfs(include: string[] = ['python3']): Promise<string | { skip: string }> {
  const cache = join(homedir(), '.cache', 'asb-test-images');
  const dir = join(cache, ['debian-bookworm-minbase', ...include].join('-'));
  if (existsSync(join(dir, 'etc', 'debian_version'))) return dir;
  if (process.getuid?.() !== 0) return { skip: 'debootstrap needs root' };
  const debootstrap = ['/usr/sbin/debootstrap', '/sbin/debootstrap'].find((p) => existsSync(p));
  if (!debootstrap) return { skip: 'no debootstrap (apt-get install debootstrap)' };
  mkdirSync(cache, { recursive: true });
  const tmp = mkdtempSync(join(cache, '.debian-'));
  try {
    const packages = include.length ? [`--include=${include.join(',')}`] : [];
    await run(debootstrap, ['--variant=minbase', ...packages, 'bookworm', tmp, DEBIAN_MIRROR], {
      maxBuffer: 64 * 1024 * 1024,
      timeout: 15 * 60_000,
    });
    for (const sub of ['var/cache/apt/archives', 'var/lib/apt/lists'])
      for (const f of readdirSync(join(tmp, sub)))
        if (f.endsWith('.deb') || f.includes('_dists_')) rmSync(join(tmp, sub, f));
    renameSync(tmp, dir);
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
  return dir;
}
