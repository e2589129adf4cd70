// What a driver is asked to run, whatever isolates it (gVisor's OCI bundle in oci-spec.ts,
// bubblewrap's argv in bubblewrap.ts): the sandbox's spec, where the agent is mounted and the
// agent's own argv. Neutral on purpose: a new driver imports this, not another driver's file.
import type { LocalImage } from '../images.ts';
import type { Rootfs } from '../rootfs.ts';

export interface ResourceLimits {
  memoryBytes: number;
  cpuMillis: number;
  pidsLimit: number;
}

/** A volume's directory mounted into the sandbox (`name`: the volume's, for messages). */
export interface ExtraMount {
  name?: string;
  source: string;
  destination: string;
  readOnly: boolean;
}

export interface SandboxRuntimeSpec {
  hostname: string;
  rootfs: Rootfs;
  /** Host directory mounted read-write at `workingDir`. */
  workspaceDir: string;
  /** Host directory holding agent.cjs, mounted read-only at /.asb. */
  agentDir: string;
  /** The host image the sandbox runs in place of its container image (images.ts); none when its
   *  root is the image's own (`rootfs.fromImage`). */
  image?: LocalImage;
  /** Container env from the template (name → value); wins over the image's defaults. With an
   *  image's root: the whole environment, the image's merged with the container's. */
  env: Record<string, string>;
  /** The template container's command+args, run by the agent as the main process. */
  mainArgv?: string[];
  workingDir: string;
  limits: ResourceLimits;
  tmpfsBytes: number;
  extraMounts?: ExtraMount[];
  uid?: number;
  gid?: number;
  /** A compatibility library preloaded into every process (see native/statx-shim.c). */
  preload?: string;
  /** Start the agent from its V8 startup snapshot (agent.blob in agentDir). */
  snapshot?: boolean;
  /** The agent's native process spawner (packages/runtime/native/asb-spawn.c), when built. */
  spawner?: string;
  /** Which agent runs in the sandbox (ASB_AGENT): node (agent.cjs, default) or go (asb-agent). */
  agent?: AgentKind;
  /** Networked: the namespace it runs in (network/host-network.ts). Without it the sandbox has
   *  only its loopback. */
  network?: SandboxNetworkSpec;
}

export interface SandboxNetworkSpec {
  /** A named network namespace, /run/netns/<name>, with the sandbox's end of its veth pair. */
  netnsPath: string;
  /** A host file with the sandbox's resolv.conf (the engine's DNS), mounted at /etc/resolv.conf
   *  over the shared skeleton's; an image's root gets its own copy written in. */
  resolvConf: string;
}

/** The in-sandbox agent: `node` runs dist/agent.cjs on the host's /usr/bin/node; `go` runs the
 *  static dist/asb-agent (packages/runtime/agent-go), which needs nothing from the sandbox. */
export type AgentKind = 'node' | 'go';

/** Where the agent's directory (agent.cjs, its snapshot, asb-agent, asb-spawn) is mounted, read-only. */
export const AGENT_MOUNT = '/.asb';

/** The agent's own argv: node on fd 0; from the startup snapshot when there is one (positional
 *  words then, as node would take `--fd` for its own flag). V8 flags here must match those the
 *  snapshot was built with (scripts/build.mjs): they are part of its configuration tag. With
 *  `kind` go, the static Go agent instead (same arguments, same protocol). */
export function agentArgv(mainArgv?: string[], snapshot = false, spawner?: string, kind: AgentKind = 'node'): string[] {
  const main = mainArgv && mainArgv.length > 0 ? [JSON.stringify(mainArgv)] : [];
  const agent =
    kind === 'go'
      ? [`${AGENT_MOUNT}/asb-agent`, '--fd', '0', ...(main.length ? ['--main', ...main] : [])]
      : snapshot
        ? [
            '/usr/bin/node',
            '--snapshot-blob',
            `${AGENT_MOUNT}/agent.blob`,
            'fd',
            '0',
            ...(main.length ? ['main', ...main] : []),
          ]
        : ['/usr/bin/node', `${AGENT_MOUNT}/agent.cjs`, '--fd', '0', ...(main.length ? ['--main', ...main] : [])];
  // The Go agent is PID 1 itself and reaps orphans (agent-go/reap.go). node is not made for that:
  // asb-spawn is PID 1 under it, reaps, and forks its commands (native/asb-spawn.c).
  return spawner && kind === 'node' ? [spawner, '--init', '--', ...agent] : agent;
}
