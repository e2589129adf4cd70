// Where a sandbox's mount points (its workingDir, where the workspace goes, and its volumes'
// mountPaths) come to exist. The runtime makes a missing mount point as root in whatever lies
// beneath it: under /usr that is the host's own /usr (bind-mounted read-only into the sandbox, but
// writable to runsc's gofer), and elsewhere the engine's shared root skeleton, which every sandbox
// sees. So a spec never gets a directory made on the host: a path that would land in a host
// directory must exist there already, and a sandbox whose paths need new directories in the
// skeleton gets a private copy of it, inside its own directory, removed with it.
import { cpSync, existsSync, lstatSync, mkdirSync, readlinkSync, rmSync } from 'node:fs';
import { join, posix } from 'node:path';
import { EngineError } from './errors.ts';
import { HOST_READ_ONLY_PATHS, type Rootfs } from './rootfs.ts';
import { AGENT_MOUNT } from './drivers/runtime-spec.ts';

/** The sandbox's in-memory file systems (oci-spec.ts): a mount point under them is made in memory. */
const IN_MEMORY = ['/tmp', '/home/sandbox', '/dev'];
/** Never mounted over: the kernel's views, and the agent. */
const RESERVED = ['/proc', '/sys', AGENT_MOUNT];

const under = (path: string, dir: string) => path === dir || path.startsWith(dir === '/' ? '/' : `${dir}/`);

/** A mount destination must be an absolute, normalised path below `/`. */
export function checkDestination(field: string, path: string): void {
  const bad = (why: string) => new EngineError('Invalid', `${field} "${path}": ${why}`, [{ field, message: why }]);
  if (!path.startsWith('/')) throw bad('must be an absolute path');
  if (path.includes('\0')) throw bad('must not contain a NUL byte');
  if (path.split('/').includes('..')) throw bad('must not contain ".."');
  const normalised = posix.normalize(path);
  if (normalised !== path || (path.length > 1 && path.endsWith('/'))) {
    throw bad(`must be written normalised (${normalised.replace(/(.)\/$/, '$1')})`);
  }
  if (path === '/') throw bad('cannot be the root directory');
  const reserved = RESERVED.find((r) => under(path, r));
  if (reserved) {
    const why =
      reserved === AGENT_MOUNT ? 'the sandbox agent is mounted there' : "the sandbox kernel's own file system";
    throw bad(`${reserved} is reserved (${why})`);
  }
}

/** What a mount point needs made: nothing, or this path (resolved) in the skeleton. */
type Landing = { make?: string };

/**
 * What mounting at `path` would make, given the mount points already placed (`earlier`, in mount
 * order): nothing (it exists, or it is made in memory or in an earlier mount, which is the
 * sandbox's own), a directory in the skeleton, or, refused, one on the host.
 */
function landing(field: string, path: string, rootfs: Rootfs, earlier: string[]): Landing {
  if (IN_MEMORY.some((m) => under(path, m) && path !== m)) return {};
  if (earlier.some((m) => under(path, m) && path !== m)) return {};
  const hostBinds = [...HOST_READ_ONLY_PATHS, ...rootfs.extraBinds];
  // Walk the skeleton one name at a time, following its own links (bin → usr/bin on merged-/usr
  // systems) as the runtime would.
  let resolved = '/';
  const rest = path.split('/').filter(Boolean);
  for (let hops = 0; rest.length > 0;) {
    const next = posix.join(resolved, rest[0]!);
    const bind = hostBinds.find((b) => under(next, b));
    if (bind) {
      // A host directory from here on: every remaining name must exist there, a directory, not a link.
      let host = next;
      for (const name of rest.slice(1)) host = posix.join(host, name);
      let p = bind;
      for (const name of host.slice(bind.length).split('/').filter(Boolean)) {
        p = posix.join(p, name);
        const st = lstatSync(p, { throwIfNoEntry: false });
        if (!st?.isDirectory()) {
          const what = st ? 'is not a directory there' : 'does not exist there';
          const message =
            `${field} "${path}": ${bind} is the host's, mounted read-only, and ${p} ${what}, ` +
            `so it cannot be a mount point; use a path outside ${hostBinds.join(', ')} ` +
            '(for example under /app, /data or /home/sandbox)';
          throw new EngineError('Invalid', message, [{ field, message: `cannot be made under ${bind}` }]);
        }
      }
      return {};
    }
    const inSkeleton = join(rootfs.dir, next);
    const st = lstatSync(inSkeleton, { throwIfNoEntry: false });
    if (!st) return { make: posix.join(resolved, ...rest) };
    if (st.isSymbolicLink()) {
      if (++hops > 8) throw new EngineError('Invalid', `${field} "${path}": too many symbolic links`);
      const target = readlinkSync(inSkeleton);
      resolved = target.startsWith('/') ? '/' : resolved;
      rest.splice(0, 1, ...target.split('/').filter(Boolean));
      continue;
    }
    if (!st.isDirectory()) {
      const message = `${field} "${path}": ${next} is a file in the sandbox's root, not a directory`;
      throw new EngineError('Invalid', message, [{ field, message: 'not under a directory' }]);
    }
    resolved = next;
    rest.shift();
  }
  return {};
}

/**
 * Checks the sandbox's mount destinations (mount order: the workspace first) and returns the root
 * to run it with: the shared skeleton when nothing has to be made in it, else a private copy under
 * `sandboxDir` with the new mount points made.
 */
export function rootfsFor(
  rootfs: Rootfs,
  sandboxDir: string,
  destinations: Array<{ field: string; path: string }>,
): Rootfs {
  const toMake: string[] = [];
  const earlier: string[] = [];
  for (const d of destinations) {
    checkDestination(d.field, d.path);
    const { make } = landing(d.field, d.path, rootfs, earlier);
    if (make) toMake.push(make);
    earlier.push(d.path);
  }
  const own = join(sandboxDir, 'rootfs');
  if (toMake.length === 0) {
    if (existsSync(own)) rmSync(own, { recursive: true, force: true });
    return rootfs;
  }
  rmSync(own, { recursive: true, force: true });
  cpSync(rootfs.dir, own, { recursive: true, verbatimSymlinks: true });
  for (const p of toMake) mkdirSync(join(own, p), { recursive: true, mode: 0o755 });
  return { dir: own, extraBinds: rootfs.extraBinds };
}
