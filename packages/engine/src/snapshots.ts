// Memory snapshots on disk: one directory per snapshot under $ASB_HOME/snapshots (it survives
// engine restarts), holding gVisor's checkpoint image, a copy of the sandbox's workspace image
// and volumes, and meta.json. A snapshot is written under a temporary name and renamed into place
// once complete, so a crash mid-way leaves no half snapshot in the listing, only a temp dir that
// the next start removes.
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  statfsSync,
  writeFileSync,
  openSync,
  fsyncSync,
  closeSync,
} from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { outsideEngineCgroup } from './engine-cgroup.ts';
import { EngineError } from './errors.ts';
import { runCommand as run } from './spawner.ts';

export type SnapshotReason = 'suspend' | 'manual';

export interface SnapshotMeta {
  id: string;
  namespace: string;
  /** The sandbox it was taken of. */
  sandbox: string;
  sandboxUid: string;
  /** Its SandboxTemplate, when it came from one. */
  template?: string;
  createdAt: string;
  reason: SnapshotReason;
  /** Bytes on disk: checkpoint image and file copies. */
  sizeBytes: number;
  /** Hash of the runtime-relevant pod spec: a restore needs the same mounts, env and command. */
  specHash: string;
  /** The Sandbox spec (pod template, volumeClaimTemplates) a fork starts with. */
  sandboxSpec: unknown;
}

const TMP_PREFIX = '.tmp-';
const ID = /^snap-[a-z0-9-]{4,60}$/;

export class SnapshotStore {
  constructor(readonly root: string) {
    mkdirSync(root, { recursive: true, mode: 0o700 });
    // Snapshots a crashed engine was writing: incomplete, never listed, removed.
    for (const name of readdirSync(root))
      if (name.startsWith(TMP_PREFIX)) rmSync(join(root, name), { recursive: true, force: true });
  }

  newId(): string {
    return `snap-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
  }

  /** A directory to write snapshot `id` into; `commit` makes it visible. */
  begin(id: string): string {
    const dir = join(this.root, TMP_PREFIX + id);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    return dir;
  }

  async commit(tmp: string, meta: Omit<SnapshotMeta, 'sizeBytes'>): Promise<SnapshotMeta> {
    const full: SnapshotMeta = { ...meta, sizeBytes: await diskUsage(tmp) };
    const file = join(tmp, 'meta.json');
    writeFileSync(file, JSON.stringify(full, null, 2) + '\n', { mode: 0o600 });
    const fd = openSync(file, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.dirOf(meta.id));
    return full;
  }

  abort(tmp: string): void {
    rmSync(tmp, { recursive: true, force: true });
  }

  dirOf(id: string): string {
    return join(this.root, id);
  }
  imageDir(dir: string): string {
    return join(dir, 'checkpoint');
  }
  workspaceImage(dir: string): string {
    return join(dir, 'workspace.img');
  }
  volumesDir(dir: string): string {
    return join(dir, 'volumes');
  }

  list(filter: { namespace?: string; sandbox?: string } = {}): SnapshotMeta[] {
    const out: SnapshotMeta[] = [];
    for (const name of readdirSync(this.root)) {
      if (!ID.test(name)) continue;
      const meta = this.read(name);
      if (!meta) continue;
      if (filter.namespace && meta.namespace !== filter.namespace) continue;
      if (filter.sandbox && meta.sandbox !== filter.sandbox) continue;
      out.push(meta);
    }
    return out.sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
  }

  /** The snapshot, checked whole enough to restore; NotFound or Conflict (corrupt) otherwise. */
  get(id: string): SnapshotMeta {
    if (!ID.test(id) || !existsSync(this.dirOf(id))) {
      const list = 'list snapshots with `asb snapshot ls`';
      throw new EngineError('NotFound', `snapshot "${id}" not found (deleted, or never taken); ${list}`);
    }
    const corrupt = (what: string) =>
      new EngineError('Conflict', `snapshot "${id}" is corrupt: ${what}; delete it with \`asb snapshot rm ${id}\``);
    const meta = this.read(id);
    if (!meta) throw corrupt('its meta.json is missing or unreadable');
    const image = join(this.imageDir(this.dirOf(id)), 'checkpoint.img');
    if (!existsSync(image) || statSync(image).size === 0) throw corrupt('its checkpoint image is missing or empty');
    return meta;
  }

  delete(id: string): void {
    if (!ID.test(id) || !existsSync(this.dirOf(id))) throw new EngineError('NotFound', `snapshot "${id}" not found`);
    rmSync(this.dirOf(id), { recursive: true, force: true });
  }

  /** Keeps the newest `max` snapshots of a sandbox (`keep` always stays); returns the removed. */
  prune(namespace: string, sandbox: string, max: number, keep: Set<string> = new Set()): string[] {
    const mine = this.list({ namespace, sandbox });
    const removed: string[] = [];
    for (const meta of mine.slice(0, Math.max(0, mine.length - max))) {
      if (keep.has(meta.id)) continue;
      rmSync(this.dirOf(meta.id), { recursive: true, force: true });
      removed.push(meta.id);
    }
    return removed;
  }

  freeBytes(): number {
    const s = statfsSync(this.root);
    return Number(s.bavail) * Number(s.bsize);
  }

  private read(id: string): SnapshotMeta | undefined {
    try {
      return JSON.parse(readFileSync(join(this.dirOf(id), 'meta.json'), 'utf8')) as SnapshotMeta;
    } catch {
      return undefined;
    }
  }
}

/**
 * Bytes allocated on disk under `path` (sparse files count what they use). `path` may hold what a
 * sandbox made (a volume's files, a copy of them), so it is measured by `du` in a child process,
 * never on the event loop (a million files would stall every request), never following a
 * symbolic link (-P: `ln -s . loop` would be walked without end, and a link to a host path would
 * make the engine look at host files), and never crossing into a mounted file system (-x: a
 * mounted workspace or volume counts by its image file).
 */
export async function diskUsage(path: string, timeoutMs = 60_000): Promise<number> {
  if (!existsSync(path)) return 0;
  let out: string;
  try {
    out = (await run(...outsideEngineCgroup('du', ['-s', '-B1', '-P', '-x', path]), { timeout: timeoutMs })).stdout;
  } catch (err) {
    // du says 1 when some entry was unreadable, and still prints the total of the rest.
    out = String((err as { stdout?: string }).stdout ?? '');
    if ((err as { killed?: boolean }).killed || !/^\d+\t/.test(out)) {
      const why = (err as { killed?: boolean }).killed
        ? `du took over ${timeoutMs} ms`
        : String((err as { stderr?: string }).stderr || (err as Error).message)
            .trim()
            .split('\n')[0];
      throw new EngineError('Internal', `could not measure the disk used under ${path}: ${why}`);
    }
  }
  return Number(out.split('\t')[0]);
}
