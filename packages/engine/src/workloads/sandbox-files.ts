// A sandbox's files on the host, copied whole between its directory and a snapshot's.
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { syncWorkspace } from '../workspace.ts';
import { runCommand as run } from '../spawner.ts';

const COPY_TIMEOUT_MS = 600_000;

/**
 * Copies a sandbox's files between its directory and a snapshot's (either way): the workspace
 * (its ext4 image, sparse, flushed first; or the plain directory where images are unavailable),
 * an image sandbox's disk (workspace and writable layer), and the volumes' directories.
 */
export async function copySandboxFiles(from: string, to: string): Promise<void> {
  mkdirSync(to, { recursive: true, mode: 0o700 });
  if (existsSync(join(from, 'workspace.img'))) {
    await syncWorkspace(from);
    const image = 'workspace.img';
    await run('cp', ['--sparse=always', join(from, image), join(to, image)], { timeout: COPY_TIMEOUT_MS });
  } else if (existsSync(join(from, 'workspace'))) {
    await run('cp', ['-a', join(from, 'workspace'), join(to, 'workspace')], { timeout: COPY_TIMEOUT_MS });
  }
  // An image sandbox's disk (its workspace and its root's writable layer, image-root.ts): the
  // snapshot's processes saw its files.
  if (existsSync(join(from, 'disk.img'))) {
    await syncWorkspace(from, 'disk');
    await run('cp', ['--sparse=always', join(from, 'disk.img'), join(to, 'disk.img')], { timeout: COPY_TIMEOUT_MS });
  }
  const volumes = join(from, 'volumes');
  if (!existsSync(volumes)) return;
  const images = readdirSync(volumes).filter((f) => f.endsWith('.img'));
  if (images.length === 0) {
    await run('cp', ['-a', volumes, join(to, 'volumes')], { timeout: COPY_TIMEOUT_MS });
    return;
  }
  mkdirSync(join(to, 'volumes'), { recursive: true, mode: 0o755 });
  for (const img of images) {
    await syncWorkspace(volumes, img.slice(0, -'.img'.length));
    await run('cp', ['--sparse=always', join(volumes, img), join(to, 'volumes', img)], { timeout: COPY_TIMEOUT_MS });
  }
}
