// The sandbox's root filesystem: a small read-only skeleton made by the engine, plus an explicit
// allow-list of host paths bind-mounted read-only. Nothing else of the host is visible: not
// /root, /home, /etc (only the generated files below), the project checkout or any secret.
import {
  mkdirSync,
  writeFileSync,
  readFileSync,
  symlinkSync,
  lstatSync,
  readlinkSync,
  existsSync,
  rmSync,
} from 'node:fs';
import { join } from 'node:path';

/** Host paths visible inside every sandbox, read-only. */
export const HOST_READ_ONLY_PATHS = ['/usr', '/etc/alternatives', '/etc/ssl/certs'] as const;

/** Top-level entries that are symlinks into /usr on merged-/usr systems (Debian 12). */
const MERGED_USR_LINKS = ['bin', 'sbin', 'lib', 'lib64', 'lib32', 'libx32'] as const;

export const SANDBOX_UID = 1000;
export const SANDBOX_GID = 1000;

export interface Rootfs {
  dir: string;
  /** Top-level host directories that are real directories here (not merged into /usr): bind them. */
  extraBinds: string[];
  /** An image's root (image-root.ts): the sandbox's own and writable, and nothing of the host's
   *  mounted into it. */
  fromImage?: boolean;
}

/** Makes (or refreshes) the skeleton under `home/rootfs`. Idempotent; cheap enough to run at every start. */
export function prepareRootfs(home: string): Rootfs {
  const dir = join(home, 'rootfs');
  rmSync(dir, { recursive: true, force: true });
  const skeleton = [
    'usr',
    'etc/alternatives',
    'etc/ssl/certs',
    'proc',
    'dev',
    'sys',
    'tmp',
    'app',
    'home/sandbox',
    'run',
    'var/tmp',
    '.asb',
  ];
  for (const d of skeleton) mkdirSync(join(dir, d), { recursive: true });
  const extraBinds: string[] = [];
  for (const name of MERGED_USR_LINKS) {
    const host = `/${name}`;
    if (!existsSync(host)) continue;
    const st = lstatSync(host);
    if (st.isSymbolicLink()) symlinkSync(readlinkSync(host), join(dir, name));
    else {
      mkdirSync(join(dir, name));
      extraBinds.push(host);
    }
  }
  const etc = join(dir, 'etc');
  const passwd = [
    'root:x:0:0:root:/root:/bin/bash',
    `sandbox:x:${SANDBOX_UID}:${SANDBOX_GID}:sandbox:/home/sandbox:/bin/bash`,
    'nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin',
  ];
  writeFileSync(join(etc, 'passwd'), passwd.map((line) => `${line}\n`).join(''));
  writeFileSync(join(etc, 'group'), `root:x:0:\nsandbox:x:${SANDBOX_GID}:\nnogroup:x:65534:\n`);
  writeFileSync(join(etc, 'hosts'), '127.0.0.1\tlocalhost sandbox\n::1\tlocalhost ip6-localhost ip6-loopback\n');
  writeFileSync(join(etc, 'hostname'), 'sandbox\n');
  writeFileSync(join(etc, 'resolv.conf'), '# no network in the sandbox\n');
  writeFileSync(join(etc, 'nsswitch.conf'), 'passwd: files\ngroup: files\nhosts: files dns\n');
  // Public, non-secret files programs expect; copied, so the host's /etc stays out of reach.
  for (const f of ['ld.so.cache', 'localtime', 'os-release', 'debian_version', 'mime.types', 'protocols', 'services']) {
    const src = join('/etc', f);
    try {
      if (existsSync(src)) writeFileSync(join(etc, f), readFileSync(src));
    } catch {
      /* unreadable: leave out */
    }
  }
  return { dir, extraBinds };
}
