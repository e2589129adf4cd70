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
  renameSync,
} from 'node:fs';
import { open, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import type { Logger } from 'pino';
import { mountFs, runCommand as run } from './spawner.ts';

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
 * The disk of a sandbox that runs an image (`disk/`, on `disk.img`): its workspace
 * (`disk/workspace`, the sandbox user's) and its root's writable layer (`disk/layer`, the
 * overlay's upper and work directories, never visible inside) on one ext4 image of the template's
 * ephemeral-storage size, so that what a sandbox writes anywhere counts against one quota, as a
 * container's writable layer and its emptyDir volumes share ephemeral-storage on Kubernetes. One
 * file system to make and mount rather than two.
 */
export async function createImageDisk(
  dir: string,
  bytes: number,
  owner: Owner,
  log: Logger,
): Promise<{ workspace: Workspace; layer: string }> {
  const disk = await createQuotaDir(join(dir, 'disk'), join(dir, 'disk.img'), bytes, { uid: 0, gid: 0 }, log);
  const workspace = join(disk.path, 'workspace');
  if (!existsSync(workspace)) {
    mkdirSync(workspace, { mode: 0o755 });
    chownSync(workspace, owner.uid, owner.gid);
  }
  const layer = join(disk.path, 'layer');
  mkdirSync(layer, { recursive: true, mode: 0o700 });
  return { workspace: { path: workspace, quotaBytes: disk.quotaBytes }, layer };
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
    await mountFs({ source: image, target: path, fstype: 'ext4', flags: ['nosuid', 'nodev', 'noatime'], loop: true });
    return { path, quotaBytes: statSync(image).size };
  }
  // Files already there without an image (made where images were unavailable): kept as they are,
  // never hidden under a new mount.
  if (readdirSync(path).length > 0) return { path };
  if (quotaUnavailable === undefined) {
    try {
      await emptyExt4(image, bytes, owner);
      await mountFs({ source: image, target: path, fstype: 'ext4', flags: ['nosuid', 'nodev', 'noatime'], loop: true });
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

/**
 * An empty ext4 image of `bytes` at `image`, owned by `owner`. One is made by mkfs (~20 ms) once
 * per size and owner, in `<home>/ext4-templates` (the sandbox directory is
 * `<home>/sandboxes/<namespace>/<name>`, the image directly in it or in `volumes/`); a sandbox
 * takes a spare copy of it, made and flushed to disk ahead of need, by a rename. A copy made on
 * the spot costs ~5 ms, and attaching it to a loop device while its blocks are still dirty
 * ~7 ms more (the kernel writes them out first). Copies share the template's UUID and directory
 * hash seed; nothing here reads either.
 */
async function emptyExt4(image: string, bytes: number, owner: Owner): Promise<void> {
  const sandboxDir = dirname(image).endsWith('/volumes') ? dirname(dirname(image)) : dirname(image);
  const templates = join(sandboxDir, '..', '..', '..', 'ext4-templates');
  const template = join(templates, `${bytes}-${owner.uid}-${owner.gid}.img`);
  if (!existsSync(template)) await makeTemplate(template, bytes, owner);
  const spares = `${template}.spares`;
  const taken = takeSpare(spares, image);
  setTimeout(() => void refillSpares(template, spares), SPARE_REFILL_DELAY_MS).unref();
  // --sparse=always: the holes stay holes (a 4 GiB image holds ~2 MB).
  if (!taken) await run('cp', ['--sparse=always', template, image], { timeout: 30_000 });
}

/** Spare copies kept per template; made after a sandbox's start, not during it. */
const SPARES = 2;
const SPARE_REFILL_DELAY_MS = 250;
const refilling = new Set<string>();

async function makeTemplate(template: string, bytes: number, owner: Owner): Promise<void> {
  mkdirSync(dirname(template), { recursive: true, mode: 0o700 });
  const partial = `${template}.${process.pid}.${randomBytes(4).toString('hex')}`;
  try {
    const fd = openSync(partial, 'w', 0o600);
    ftruncateSync(fd, bytes);
    closeSync(fd);
    const options = `root_owner=${owner.uid}:${owner.gid},nodiscard`;
    await run('mkfs.ext4', ['-q', '-F', '-m', '0', '-O', '^has_journal', '-E', options, partial], {
      timeout: 30_000,
    });
    renameSync(partial, template);
  } finally {
    rmSync(partial, { force: true });
  }
}

/** Moves a spare copy to `image`; false when there is none (another sandbox took the last). */
function takeSpare(spares: string, image: string): boolean {
  let names: string[];
  try {
    names = readdirSync(spares).filter((n) => n.endsWith('.img'));
  } catch {
    return false;
  }
  for (const name of names) {
    try {
      renameSync(join(spares, name), image);
      return true;
    } catch {
      // taken meanwhile: the next one
    }
  }
  return false;
}

/** Copies the template until there are SPARES spare copies, each flushed to disk before use. */
async function refillSpares(template: string, spares: string): Promise<void> {
  if (refilling.has(spares)) return;
  refilling.add(spares);
  try {
    // Not once the engine's home is gone (a sandbox's start scheduled this; the engine stopped).
    if (!existsSync(template)) return;
    if (!existsSync(spares)) mkdirSync(spares, { mode: 0o700 });
    for (const name of readdirSync(spares)) if (!name.endsWith('.img')) rmSync(join(spares, name), { force: true });
    while (readdirSync(spares).length < SPARES) {
      const id = randomBytes(6).toString('hex');
      const partial = join(spares, `.partial-${id}`);
      await run('cp', ['--sparse=always', template, partial], { timeout: 30_000 });
      const file = await open(partial, 'r+');
      try {
        await file.datasync();
      } finally {
        await file.close();
      }
      renameSync(partial, join(spares, `${id}.img`));
    }
  } catch {
    // Spares are an optimisation: a sandbox without one copies the template itself.
  } finally {
    refilling.delete(spares);
  }
}

/** Unmounts everything mounted under the sandbox's directory (its image root first, then the
 *  layer, workspace and volumes beneath), and removes the directory. */
export async function destroyWorkspace(dir: string): Promise<void> {
  await unmountUnder(dir);
  // In libuv's pool, not on the event loop: a workspace's files took ~6 ms of it to unlink.
  await rm(dir, { recursive: true, force: true });
}

/** Drops the workspace's files (image and mount point) and an image sandbox's disk (its
 *  workspace and writable layer), and keeps the rest of the sandbox's directory (its volumes): a
 *  reset. */
export async function dropWorkspace(dir: string): Promise<void> {
  // The overlay's root before the disk beneath it.
  for (const m of ['workspace', 'root', 'disk']) await unmountOne(join(dir, m));
  for (const f of ['workspace', 'workspace.img', 'root', 'disk', 'disk.img']) {
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
