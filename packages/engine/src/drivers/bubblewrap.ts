// bubblewrap driver: the fallback where gVisor is absent. Namespaces (user, pid, net, ipc, uts,
// mount) and the same read-only view of the host, but the host kernel is shared and there are no
// cgroup limits: weaker isolation, said so in `asb engine status` and the engine's log.
import { spawn } from 'node:child_process';
import { outsideEngineCgroup } from '../engine-cgroup.ts';
import { openSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { agentArgv, AGENT_MOUNT, type SandboxRuntimeSpec } from './runtime-spec.ts';
import { HOST_READ_ONLY_PATHS } from '../rootfs.ts';
import { socketPair } from './socketpair.ts';
import type { DriverHandle, DriverPaths, SandboxDriver, SandboxExit } from './driver.ts';

export class BubblewrapDriver implements SandboxDriver {
  readonly name = 'bubblewrap' as const;
  readonly isolation =
    'bubblewrap: Linux namespaces on the shared host kernel (weaker than gVisor; no memory/cpu/pids limits)';
  private readonly children = new Map<string, number>();

  /** bwrap maps the sandbox's uid to the engine's own: the workspace stays the engine user's. */
  workspaceOwner() {
    return { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
  }

  constructor(private readonly bwrap: string) {}

  args(spec: SandboxRuntimeSpec): string[] {
    const fromImage = spec.rootfs.fromImage === true;
    const env = {
      ...(fromImage ? {} : { LANG: 'C.UTF-8' }),
      ...spec.image?.env,
      ...spec.env,
      SANDBOX_BASE_DIR: spec.workingDir,
    };
    // --die-with-parent: bwrap's sandbox side runs in a session of its own (--new-session), out of
    // reach of the process-group kill in destroy(); without it, killing bwrap left the sandbox's
    // init and everything under it running, after delete and after the engine itself was gone
    // (bubblewrap sandboxes cannot be re-adopted by a restarted engine).
    const a = [
      '--unshare-all',
      // Networked: the namespace the engine made, entered by nsenter before bwrap starts.
      ...(spec.network ? ['--share-net'] : []),
      '--new-session',
      '--die-with-parent',
      '--cap-drop',
      'ALL',
      '--uid',
      String(spec.uid ?? 1000),
      '--gid',
      String(spec.gid ?? 1000),
      '--hostname',
      spec.hostname,
      // An image's root is the sandbox's own overlay, writable; the skeleton is shared.
      fromImage ? '--bind' : '--ro-bind',
      spec.rootfs.dir,
      '/',
      '--proc',
      '/proc',
      '--dev',
      '/dev',
    ];
    if (spec.network && !fromImage) a.push('--ro-bind', spec.network.resolvConf, '/etc/resolv.conf');
    if (!fromImage) {
      a.push('--tmpfs', '/tmp', '--tmpfs', '/home/sandbox');
      for (const p of [...HOST_READ_ONLY_PATHS, ...spec.rootfs.extraBinds]) a.push('--ro-bind', p, p);
    }
    a.push('--ro-bind', spec.agentDir, AGENT_MOUNT, '--bind', spec.workspaceDir, spec.workingDir);
    for (const m of spec.extraMounts ?? []) a.push(m.readOnly ? '--ro-bind' : '--bind', m.source, m.destination);
    a.push('--chdir', spec.workingDir, '--clearenv');
    for (const [k, v] of Object.entries(env)) a.push('--setenv', k, v);
    return [...a, ...agentArgv(spec.mainArgv, spec.snapshot, spec.spawner, spec.agent)];
  }

  async start(containerId: string, spec: SandboxRuntimeSpec, paths: DriverPaths): Promise<DriverHandle> {
    const [mine, theirs] = await socketPair(join(paths.dir, 'agent.sock'));
    const log = openSync(paths.logFile, 'a', 0o600);
    const [file, args] = spec.network
      ? ['nsenter', [`--net=${spec.network.netnsPath}`, '--', this.bwrap, ...this.args(spec)]]
      : [this.bwrap, this.args(spec)];
    const child = spawn(...outsideEngineCgroup(file, args), {
      stdio: [theirs, theirs, log],
      detached: true,
    });
    theirs.destroy();
    closeSync(log);
    child.unref();
    if (child.pid) this.children.set(containerId, child.pid);
    const exited = new Promise<SandboxExit>((resolve) => {
      child.once('exit', (code, signal) => {
        this.children.delete(containerId);
        resolve({ code, signal, oomKilled: false });
      });
    });
    return { socket: mine, exited, pid: child.pid };
  }

  /** bubblewrap sandboxes are not re-entered (there is no `runsc exec` to join their namespaces with): never attached. */
  async attach(): Promise<DriverHandle | undefined> {
    return undefined;
  }

  async destroy(containerId: string): Promise<void> {
    const pid = this.children.get(containerId);
    if (pid) {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  }

  async list(): Promise<string[]> {
    return [...this.children.keys()];
  }
}
