// A sandbox's root filesystem from an OCI image, as a container's on Kubernetes: the image's
// unpacked root (shared by every sandbox of the image, never written) under a kernel overlay whose
// upper layer is the sandbox's own, in its directory, on the ext4 image of the template's
// ephemeral-storage size that also holds its workspace (workspace.ts createImageDisk). Each
// sandbox's writes are its own and go with it. The kernel's overlayfs, as containerd's overlay snapshotter uses it, rather than gVisor's
// in-sandbox overlay: the same on both runscs (Debian's has no per-mount overlay) and under
// bubblewrap, and the writes land on disk under a quota instead of in the sandbox's memory.
import { closeSync, lstatSync, mkdirSync, openSync, rmSync, writeSync, constants } from 'node:fs';
import { join, posix } from 'node:path';
import { ensureMountPoint, MountPointError } from '@asb/oci';
import { EngineError } from './errors.ts';
import { mountFs } from './spawner.ts';
import { isMountPoint } from './workspace.ts';

/**
 * Mounts (or finds mounted: a sandbox started again keeps its layer) the sandbox's image root,
 * its writable layer in `layer` (a directory of the sandbox's disk); returns the merged root, the
 * sandbox's `/`.
 */
export async function mountImageRoot(sandboxDir: string, imageRoot: string, layer: string): Promise<string> {
  const dir = join(sandboxDir, 'root');
  if (isMountPoint(dir)) return dir;
  const upper = join(layer, 'upper');
  const work = join(layer, 'work');
  for (const d of [upper, work, dir]) mkdirSync(d, { recursive: true, mode: 0o755 });
  // overlayfs splits its options at commas and its lower directories at colons.
  for (const p of [imageRoot, upper, work]) {
    if (/[,:]/.test(p)) {
      throw new EngineError('Internal', `cannot mount an image root from "${p}": ASB_HOME must not contain "," or ":"`);
    }
  }
  try {
    await mountFs({
      source: 'overlay',
      target: dir,
      fstype: 'overlay',
      flags: ['nodev', 'nosuid'],
      data: `lowerdir=${imageRoot},upperdir=${upper},workdir=${work}`,
    });
  } catch (err) {
    const why = String((err as { stderr?: string }).stderr || (err as Error).message).trim();
    throw new EngineError(
      'Internal',
      `cannot mount the image's root for the sandbox (an overlay mount: the engine needs root): ${why}`,
    );
  }
  return dir;
}

/**
 * Makes the mount points the sandbox needs in its own root (never in the shared image), each
 * resolved through the image's own links as the sandbox would resolve it. Returns the resolved
 * destinations, in the order given.
 */
export function mountPointsIn(root: string, paths: Array<{ field: string; path: string }>): string[] {
  return paths.map(({ field, path }) => {
    try {
      return ensureMountPoint(root, path);
    } catch (err) {
      if (err instanceof MountPointError) {
        throw new EngineError('Invalid', `${field}: ${err.message}`, [{ field, message: err.message }]);
      }
      throw err;
    }
  });
}

/**
 * The files Kubernetes writes for a container (/etc/hosts, /etc/hostname, /etc/resolv.conf), in
 * the sandbox's own layer. What the image had there is replaced, a link included, without ever
 * following it: the engine writes as root on the host.
 */
/** A networked sandbox's resolver: the engine's DNS, which answers for it (network/dns.ts). */
export function resolvConf(nameserver: string): string {
  return `# the engine's DNS (asb)\nnameserver ${nameserver}\noptions ndots:1 timeout:2 attempts:2\n`;
}

export function writeEtcFiles(root: string, hostname: string, nameserver?: string): void {
  const etc = ensureMountPoint(root, '/etc');
  const files: Record<string, string> = {
    hosts: `127.0.0.1\tlocalhost ${hostname}\n::1\tlocalhost ip6-localhost ip6-loopback\n`,
    hostname: `${hostname}\n`,
    'resolv.conf': nameserver ? resolvConf(nameserver) : '# no network in the sandbox\n',
  };
  for (const [name, content] of Object.entries(files)) {
    const path = join(root, posix.join(etc, name));
    if (lstatSync(path, { throwIfNoEntry: false })) rmSync(path, { recursive: true, force: true });
    const fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o644);
    try {
      writeSync(fd, content);
    } finally {
      closeSync(fd);
    }
  }
}
