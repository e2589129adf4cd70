// Pure: the OCI runtime spec (config.json) of one sandbox. Every isolation default lives here,
// so a reader can audit the sandbox's whole view of the host in one function.
import { HOST_READ_ONLY_PATHS, SANDBOX_GID, SANDBOX_UID } from './rootfs.ts';
import { AGENT_MOUNT, agentArgv, type SandboxRuntimeSpec } from './drivers/runtime-spec.ts';

const CPU_PERIOD_US = 100_000;

/**
 * The sandbox's CPU weight against everything else on the host: a quarter of a process's (1024)
 * per CPU of its limit. The engine's threads keep their full weight, so sandboxes busy at their
 * limits cannot starve the engine that serves every other sandbox (its event loop was delayed
 * by seconds with five sandboxes busy on two cores).
 */
export function cpuShares(cpuMillis: number): number {
  return Math.max(2, Math.round((cpuMillis / 1000) * 256));
}

/** CPU time the sandbox may use per CPU_PERIOD_US: its limit in CPUs, at least 1 ms. */
function cpuQuotaUs(cpuMillis: number): number {
  return Math.max(1000, Math.round((cpuMillis / 1000) * CPU_PERIOD_US));
}

/** Host-level pids cgroup limit: room for the sentry's and gofer's own threads above the
 *  sandbox's process limit. */
export function hostPidsBackstop(pidsLimit: number): number {
  return pidsLimit + 256;
}

export function buildOciSpec(s: SandboxRuntimeSpec): Record<string, unknown> {
  const fromImage = s.rootfs.fromImage === true;
  const env: Record<string, string> = {
    ...(fromImage ? {} : { LANG: 'C.UTF-8' }),
    ...s.image?.env,
    ...s.env,
    SANDBOX_BASE_DIR: s.workingDir,
    ...(s.preload ? { LD_PRELOAD: s.preload } : {}),
  };
  const ro = (source: string, destination = source) => ({
    destination,
    type: 'bind',
    source,
    options: ['rbind', 'ro', 'nosuid', 'nodev'],
  });
  const tmpfs = (destination: string, mode: string) => ({
    destination,
    type: 'tmpfs',
    source: 'tmpfs',
    options: ['nosuid', 'nodev', `mode=${mode}`, `size=${s.tmpfsBytes}`],
  });
  const uid = s.uid ?? SANDBOX_UID;
  const gid = s.gid ?? SANDBOX_GID;
  return {
    ociVersion: '1.0.2',
    process: {
      terminal: false,
      user: { uid, gid },
      args: agentArgv(s.mainArgv, s.snapshot, s.spawner, s.agent),
      env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
      cwd: s.workingDir,
      // No capabilities at all: the agent and its commands are ordinary users even inside gVisor.
      capabilities: { bounding: [], effective: [], inheritable: [], permitted: [], ambient: [] },
      // The pids limit is enforced inside gVisor as RLIMIT_NPROC: the sentry refuses the fork and
      // the sandbox lives on. The host cgroup's pids limit (below) is only a backstop, set higher,
      // because at that level a fork bomb starves the sentry itself and the whole sandbox dies.
      rlimits: [
        { type: 'RLIMIT_NOFILE', hard: 65536, soft: 65536 },
        { type: 'RLIMIT_NPROC', hard: s.limits.pidsLimit, soft: s.limits.pidsLimit },
      ],
      noNewPrivileges: true,
    },
    // An image's root is the sandbox's own overlay (image-root.ts), writable as a container's is;
    // the engine's skeleton is shared by every sandbox, so read-only.
    root: { path: s.rootfs.dir, readonly: !fromImage },
    hostname: s.hostname,
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc' },
      {
        destination: '/dev',
        type: 'tmpfs',
        source: 'tmpfs',
        options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'],
      },
      // An image keeps its own /tmp and home directories, in its writable layer.
      ...(fromImage
        ? []
        : [
            tmpfs('/tmp', '1777'),
            tmpfs('/home/sandbox', '0777'),
            ...HOST_READ_ONLY_PATHS.map((p) => ro(p)),
            ...s.rootfs.extraBinds.map((p) => ro(p)),
          ]),
      // The skeleton is shared by offline sandboxes too: a networked one's resolver is its own.
      ...(s.network && !fromImage ? [ro(s.network.resolvConf, '/etc/resolv.conf')] : []),
      ro(s.agentDir, AGENT_MOUNT),
      { destination: s.workingDir, type: 'bind', source: s.workspaceDir, options: ['rbind', 'rw', 'nosuid', 'nodev'] },
      ...(s.extraMounts ?? []).map((m) => ({
        destination: m.destination,
        type: 'bind',
        source: m.source,
        options: ['rbind', m.readOnly ? 'ro' : 'rw', 'nosuid', 'nodev'],
      })),
    ],
    linux: {
      // Offline: a namespace of its own with nothing but loopback. Networked: the one the engine
      // made, whose only way out is the veth to the host's firewall.
      namespaces: [
        { type: 'pid' },
        s.network ? { type: 'network', path: s.network.netnsPath } : { type: 'network' },
        { type: 'ipc' },
        { type: 'uts' },
        { type: 'mount' },
      ],
      resources: {
        memory: { limit: s.limits.memoryBytes },
        cpu: { shares: cpuShares(s.limits.cpuMillis), period: CPU_PERIOD_US, quota: cpuQuotaUs(s.limits.cpuMillis) },
        pids: { limit: hostPidsBackstop(s.limits.pidsLimit) },
      },
    },
  };
}
