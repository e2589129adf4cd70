// gVisor driver: one `runsc run` per sandbox, from an OCI bundle the engine writes, with its own
// --root (state directory) and no network device but loopback.
import { spawn, execFile } from 'node:child_process';
import { mkdirSync, writeFileSync, openSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { buildOciSpec, type SandboxRuntimeSpec } from '../oci-spec.ts';
import { SANDBOX_GID, SANDBOX_UID } from '../rootfs.ts';
import { socketPair } from './socketpair.ts';
import type { DriverHandle, DriverPaths, SandboxDriver, SandboxExit } from './driver.ts';

const run = promisify(execFile);

export class GvisorDriver implements SandboxDriver {
  readonly name = 'gvisor' as const;
  readonly isolation = 'gVisor (runsc): a user-space kernel between the sandbox and the host';
  private readonly exits = new Map<string, Promise<SandboxExit>>();

  constructor(private readonly runsc: string, private readonly stateDir: string) {
    mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  }

  /** gVisor's gofer maps uids one to one: uid 1000 inside owns files of uid 1000 outside. */
  workspaceOwner() { return { uid: SANDBOX_UID, gid: SANDBOX_GID }; }

  private flags(): string[] {
    return ['--root', this.stateDir, '--network=none'];
  }

  async start(containerId: string, spec: SandboxRuntimeSpec, paths: DriverPaths): Promise<DriverHandle> {
    const bundle = join(paths.dir, 'bundle');
    mkdirSync(bundle, { recursive: true, mode: 0o700 });
    writeFileSync(join(bundle, 'config.json'), JSON.stringify(buildOciSpec(spec)));
    const [mine, theirs] = await socketPair(join(paths.dir, 'agent.sock'));
    const log = openSync(paths.logFile, 'a', 0o600);
    // Detached: a sandbox outlives an engine crash (the engine re-adopts or reaps it on restart).
    const child = spawn(this.runsc, [...this.flags(), 'run', '--bundle', bundle, containerId], {
      stdio: [theirs, theirs, log], detached: true,
    });
    theirs.destroy();
    closeSync(log);
    child.unref();
    const exited = new Promise<SandboxExit>((resolve) => {
      child.once('exit', (code, signal) => resolve({ code, signal, oomKilled: code === 137 || code === 128 + 9 }));
      child.once('error', () => resolve({ code: null, signal: null, oomKilled: false }));
    });
    this.exits.set(containerId, exited);
    void exited.then(() => this.exits.delete(containerId));
    return { socket: mine, exited, pid: child.pid };
  }

  async destroy(containerId: string): Promise<void> {
    // Kill first and give the sandbox a moment to stop: `delete --force` on a sandbox still
    // tearing down can exceed runsc's internal deadline, so it is retried.
    await run(this.runsc, [...this.flags(), 'kill', '--all', containerId, 'KILL'], { timeout: 10_000 }).catch(() => undefined);
    const exited = this.exits.get(containerId);
    if (exited) await Promise.race([exited, new Promise((r) => setTimeout(r, 5_000))]);
    let last = '';
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        await run(this.runsc, [...this.flags(), 'delete', '--force', containerId], { timeout: 30_000 });
        return;
      } catch (err) {
        last = String((err as { stderr?: string }).stderr ?? err).trim();
        if (/does not exist|not found|no such/i.test(last)) return;
        await new Promise((r) => setTimeout(r, 200 * (attempt + 1)));
      }
    }
    throw new Error(`runsc delete ${containerId}: ${last}`);
  }

  async list(): Promise<string[]> {
    const { stdout } = await run(this.runsc, [...this.flags(), 'list', '--quiet'], { timeout: 30_000 });
    return stdout.split('\n').map((s) => s.trim()).filter(Boolean);
  }
}

export async function runscVersion(runsc: string): Promise<string | undefined> {
  try {
    const { stdout } = await run(runsc, ['--version'], { timeout: 10_000 });
    return stdout.split('\n')[0]?.trim();
  } catch {
    return undefined;
  }
}
