// What a container runs, from its image's config and its spec, merged as Kubernetes merges them:
// `command` replaces the image's Entrypoint (and drops its Cmd), `args` replaces Cmd; env by name,
// the spec's last; workingDir, else the image's; the user from securityContext, else the image's
// `User` (a name looked up in the image's own /etc/passwd and /etc/group).
import { lstatSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ImageConfig } from './media-types.ts';

export interface ContainerSpecLike {
  command?: string[];
  args?: string[];
  env?: Array<{ name: string; value?: string }>;
  workingDir?: string;
  securityContext?: { runAsUser?: number; runAsGroup?: number; runAsNonRoot?: boolean };
}

export interface ProcessConfig {
  /** Empty when neither the image nor the spec says what to run. */
  argv: string[];
  env: Array<[string, string]>;
  cwd: string;
  uid: number;
  gid: number;
}

/** containerd's PATH for an image that sets none. */
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export class ContainerConfigError extends Error {
  override name = 'ContainerConfigError';
}

/** `rootfs`: the image's unpacked root, where a user name is looked up. */
export function processConfig(image: ImageConfig, spec: ContainerSpecLike, rootfs: string): ProcessConfig {
  const c = image.config ?? {};
  const entrypoint = spec.command ?? c.Entrypoint ?? [];
  const cmd = spec.args ?? (spec.command ? [] : (c.Cmd ?? []));
  const env = new Map<string, string>();
  for (const kv of c.Env ?? []) {
    const eq = kv.indexOf('=');
    if (eq > 0) env.set(kv.slice(0, eq), kv.slice(eq + 1));
  }
  for (const e of spec.env ?? []) env.set(e.name, e.value ?? '');
  const { uid, gid } = userOf(c.User, spec.securityContext, rootfs);
  // As containerd and runc complete an environment: a PATH when the image sets none, and HOME
  // from the user's /etc/passwd entry (else /).
  if (!env.has('PATH')) env.set('PATH', DEFAULT_PATH);
  if (!env.has('HOME')) env.set('HOME', entriesOf(rootfs, 'passwd').find((e) => e[2] === String(uid))?.[5] || '/');
  if (spec.securityContext?.runAsNonRoot && uid === 0) {
    throw new ContainerConfigError(
      'runAsNonRoot is set and the container would run as root (uid 0): set securityContext.runAsUser, or use an image whose User is not root',
    );
  }
  return {
    argv: [...(entrypoint ?? []), ...(cmd ?? [])],
    env: [...env],
    cwd: spec.workingDir ?? (c.WorkingDir || '/'),
    uid,
    gid,
  };
}

/**
 * As runc resolves a user: a name (or a uid) from /etc/passwd with its primary group; a uid that is
 * not there runs with gid 0; `user:group` names the group (or gid); securityContext wins.
 */
function userOf(
  user: string | undefined,
  sc: ContainerSpecLike['securityContext'],
  rootfs: string,
): { uid: number; gid: number } {
  const [name = '', group] = (user ?? '').split(':');
  const passwd = () => entriesOf(rootfs, 'passwd');
  const primaryGid = (uid: number) => Number(passwd().find((e) => e[2] === String(uid))?.[3] ?? 0);
  let uid = 0;
  let gid = 0;
  if (/^\d+$/.test(name)) {
    uid = Number(name);
    gid = primaryGid(uid);
  } else if (name) {
    const entry = passwd().find((e) => e[0] === name);
    if (!entry) throw new ContainerConfigError(`the image's user "${name}" is not in its /etc/passwd`);
    [uid, gid] = [Number(entry[2]), Number(entry[3])];
  }
  if (group && /^\d+$/.test(group)) gid = Number(group);
  else if (group) {
    const entry = entriesOf(rootfs, 'group').find((e) => e[0] === group);
    if (!entry) throw new ContainerConfigError(`the image's group "${group}" is not in its /etc/group`);
    gid = Number(entry[2]);
  }
  if (sc?.runAsUser !== undefined) {
    uid = sc.runAsUser;
    if (!group) gid = primaryGid(uid);
  }
  if (sc?.runAsGroup !== undefined) gid = sc.runAsGroup;
  return { uid, gid };
}

/**
 * The lines of the image's /etc/passwd or /etc/group, split at colons. Read only when neither
 * /etc nor the file is a symbolic link: a link would be followed on the host, not in the image.
 */
function entriesOf(rootfs: string, file: 'passwd' | 'group'): string[][] {
  for (const p of [join(rootfs, 'etc'), join(rootfs, 'etc', file)]) {
    const st = lstatSync(p, { throwIfNoEntry: false });
    if (!st || st.isSymbolicLink()) return [];
  }
  return readFileSync(join(rootfs, 'etc', file), 'utf8')
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => l.split(':'));
}
