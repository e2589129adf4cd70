// A sandbox's workspace (/app inside): a host directory, and, where the engine may mount (root,
// loop devices), an ext4 file system of its own in a sparse image file, so the template's
// `ephemeral-storage` limit is a real quota: a sandbox that fills its disk gets ENOSPC, not the
// host's disk. Without the journal (crash recovery is fsck's job) a 4 GiB image costs ~2 MB.
import {
  closeSync,
  mkdirSync,
  openSync,
  ftruncateSync,
  rmSync,
  chownSync,
  readFileSync,
  readdirSync,
  existsSync,
  statSync,
} from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { runCommand as run } from './spawner.ts';

export interface Workspace {
  path: string;
  quotaBytes?: number;
}
/** Host owner of a workspace or volume: the sandbox's user (uid 1000 inside) writes it. */
export interface Owner {
  uid: number;
  gid: number;
}

let quotaUnavailable: string | undefined;

/** Makes the workspace, or mounts the one a stopped sandbox left. */
export async function createWorkspace(dir: string, bytes: number, owner: Owner, log: Logger): Promise<Workspace> {
  return createQuotaDir(join(dir, 'workspace'), join(dir, 'workspace.img'), bytes, owner, log);
}

/**
 * A volumeClaimTemplate's persistent directory (`volumes/<name>`), with its storage request as
 * its size: like the workspace, its own ext4 image where the engine can mount one, so a
 * sandbox cannot fill the host's disk through a volume either.
 */
export async function createVolume(
  dir: string,
  name: string,
  bytes: number,
  owner: Owner,
  log: Logger,
): Promise<Workspace> {
  mkdirSync(join(dir, 'volumes'), { recursive: true, mode: 0o755 });
  return createQuotaDir(join(dir, 'volumes', name), join(dir, 'volumes', `${name}.img`), bytes, owner, log);
}

/**
 * The writable layer of a sandbox that runs an image (`layer/`, holding the overlay's upper and
 * work directories): like the workspace, on an ext4 image of its own where the engine can mount
 * one, so what a sandbox writes outside its workspace counts against a quota too, as a
 * container's writable layer counts against its ephemeral-storage on Kubernetes.
 */
export async function createLayer(dir: string, bytes: number, log: Logger): Promise<Workspace> {
  return createQuotaDir(join(dir, 'layer'), join(dir, 'layer.img'), bytes, { uid: 0, gid: 0 }, log);
}

/** `path`, backed by a sparse ext4 image of `bytes` at `image` (made, or mounted again). */
async function createQuotaDir(
  path: string,
  image: string,
  bytes: number,
  owner: Owner,
  log: Logger,
): Promise<Workspace> {
  mkdirSync(path, { recursive: true, mode: 0o755 });
  // A stopped sandbox started again (replicas 0 → 1, an engine restart) keeps its files.
  if (isMountPoint(path)) return { path, quotaBytes: statSync(image, { throwIfNoEntry: false })?.size };
  if (existsSync(image)) {
    await run('mount', ['-o', 'loop,nosuid,nodev,noatime', image, path], { timeout: 30_000 });
    return { path, quotaBytes: statSync(image).size };
  }
  // Files already there without an image (made where images were unavailable): kept as they are,
  // never hidden under a new mount.
  if (readdirSync(path).length > 0) return { path };
  if (quotaUnavailable === undefined) {
    try {
      const fd = openSync(image, 'w', 0o600);
      ftruncateSync(fd, bytes);
      closeSync(fd);
      const options = `root_owner=${owner.uid}:${owner.gid},nodiscard`;
      await run('mkfs.ext4', ['-q', '-F', '-m', '0', '-O', '^has_journal', '-E', options, image], { timeout: 30_000 });
      await run('mount', ['-o', 'loop,nosuid,nodev,noatime', image, path], { timeout: 30_000 });
      rmSync(join(path, 'lost+found'), { recursive: true, force: true });
      return { path, quotaBytes: bytes };
    } catch (err) {
      rmSync(image, { force: true });
      quotaUnavailable = String((err as { stderr?: string }).stderr || (err as Error).message)
        .trim()
        .split('\n')[0];
      const why =
        'workspaces and volumes have no disk quota: ' +
        'cannot make and mount an ext4 image (needs root and loop devices)';
      log.warn({ reason: quotaUnavailable }, why);
    }
  }
  chownSync(path, owner.uid, owner.gid);
  return { path };
}

/** Unmounts everything mounted under the sandbox's directory (its image root first, then the
 *  layer, workspace and volumes beneath), and removes the directory. */
export async function destroyWorkspace(dir: string): Promise<void> {
  await unmountUnder(dir);
  // In libuv's pool, not on the event loop: a workspace's files took ~6 ms of it to unlink.
  await rm(dir, { recursive: true, force: true });
}

/** Drops the workspace's files (image and mount point) and an image root's writable layer, and
 *  keeps the rest of the sandbox's directory (its volumes): a reset. */
export async function dropWorkspace(dir: string): Promise<void> {
  // The overlay's root before the layer beneath it.
  for (const m of ['workspace', 'root', 'layer']) await unmountOne(join(dir, m));
  for (const f of ['workspace', 'workspace.img', 'root', 'layer', 'layer.img']) {
    await rm(join(dir, f), { recursive: true, force: true });
  }
}

/** Unmounts every mount under `dir`, those stacked on others (an overlay on its layer) first. */
export async function unmountUnder(dir: string): Promise<void> {
  const mounts = mountPoints().filter((p) => p.startsWith(dir + '/'));
  // Mounted later, unmounted sooner: the overlay's root was mounted after its layer.
  for (const m of mounts.reverse()) await unmountOne(m);
}

async function unmountOne(path: string): Promise<void> {
  if (!isMountPoint(path)) return;
  await run('umount', [path], { timeout: 30_000 })
    .catch(() => run('umount', ['-l', path], { timeout: 30_000 }))
    // Someone else (a concurrent release) may have unmounted it first: only a mount that stays is an error.
    .catch((err) => {
      if (isMountPoint(path)) throw err;
    });
}

/** Flushes a mounted workspace's (or volume's) filesystem to its image, so that a copy of the
 *  image is whole. */
export async function syncWorkspace(dir: string, name = 'workspace'): Promise<void> {
  const path = join(dir, name);
  if (isMountPoint(path)) await run('sync', ['-f', path], { timeout: 120_000 });
}

/** Leftover workspace mounts under `root` (an engine that crashed): unmounted at start. */
export async function unmountAll(root: string): Promise<number> {
  const mounts = mountPoints().filter((m) => m.startsWith(root + '/'));
  for (const m of mounts) await run('umount', ['-l', m], { timeout: 30_000 }).catch(() => undefined);
  return mounts.length;
}

function mountPoints(): string[] {
  try {
    return readFileSync('/proc/self/mounts', 'utf8')
      .split('\n')
      .map((l) => l.split(' ')[1] ?? '')
      .filter(Boolean)
      .map((p) => p.replace(/\\040/g, ' '));
  } catch {
    return [];
  }
}

export function isMountPoint(path: string): boolean {
  return mountPoints().includes(path);
}
