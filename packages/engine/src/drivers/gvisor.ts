// gVisor driver: one `runsc run` per sandbox, from an OCI bundle the engine writes, with its own
// --root (state directory) and no network device but loopback. A sandbox outlives the engine; a
// new engine reaches its agent again with a relay exec'd into it (attach).
import { spawn, type ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import { mkdirSync, writeFileSync, openSync, closeSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { buildOciSpec } from '../oci-spec.ts';
import { AGENT_MOUNT, type SandboxRuntimeSpec } from './runtime-spec.ts';
import { SANDBOX_GID, SANDBOX_UID } from '../rootfs.ts';
import { listenOnce, socketPair } from './socketpair.ts';
import { tailOf } from '../sandbox-log.ts';
import { atTeardownWeight, lowerToTeardownWeight, outsideEngineCgroup } from '../engine-cgroup.ts';
import { unmountAll } from '../workspace.ts';
import type { DriverHandle, DriverPaths, SandboxDriver, SandboxExit } from './driver.ts';
import { detachCommand, runCommand as run } from '../spawner.ts';

/** Run in the sandbox by attach: connects to the agent's abstract socket (AGENT_SOCKET_NAME in
 *  packages/runtime/src/server.ts) and relays it over its stdin/stdout (asb-spawn.c, --relay). */
const RELAY_ARGV = [`${AGENT_MOUNT}/asb-spawn`, '--relay', 'asb-agent'];
/** The engine's own lane for foreground commands (asb-spawn.c, --exec-lane). */
const EXEC_LANE_ARGV = [`${AGENT_MOUNT}/asb-spawn`, '--exec-lane'];
/** `runsc exec` has started the lane within this, or it is given up. */
const LANE_START_TIMEOUT_MS = 10_000;
/** Run in the sandbox by gVisor before a checkpoint and after a restore (one string: gVisor splits
 *  it at spaces). */
const SAVE_RESTORE_HOOK = `${AGENT_MOUNT}/asb-spawn --save-restore-hook`;
/** The checkpoint flags that give a sandbox the hook (once in its life: gVisor refuses twice). */
const HOOK_FLAGS = ['--save-restore-exec-argv', SAVE_RESTORE_HOOK, '--save-restore-exec-timeout', '10s'];
/** In a checkpoint's image directory: it was taken with SAVE_RESTORE_HOOK. */
const RESTORE_HOOK_MARKER = 'asb-restore-hook';
/** What a restored agent writes on its socket before serving HTTP/2 again (restoredMarker in
 *  agent-go/engine_socket.go): the engine writes nothing before it has read it. */
const RESTORED_MARKER = Buffer.from('\x00asb-agent: serving again\n');
/** How often an attached sandbox's process is looked at, to notice its end. */
const WATCH_INTERVAL_MS = 1000;

export class GvisorDriver implements SandboxDriver {
  readonly name = 'gvisor' as const;
  readonly isolation = 'gVisor (runsc): a user-space kernel between the sandbox and the host';
  private readonly exits = new Map<string, Promise<SandboxExit>>();
  /** Each sandbox's relays (`runsc exec` of asb-spawn --relay) still running: settle at their end. */
  private readonly relays = new Map<string, Set<Promise<void>>>();

  private readonly reaper?: string;
  private readonly restoreHook: boolean;
  private readonly inPlace: boolean;
  /**
   * How a networked sandbox reaches its namespace's link. `sandbox`: gVisor's own network stack
   * (netstack) in the sentry, the host kernel sees only frames. `host`: the sentry's sockets are
   * the host kernel's, in the sandbox's own namespace (the same firewall, more host kernel
   * exposed): for runsc 20221219, whose netstack refuses every namespace of a kernel that has
   * net.core.rmem_default per namespace (6.x), taking it for the host's.
   */
  readonly networkMode: 'sandbox' | 'host';
  /** gVisor checkpoints its own network stack, not the host's ("not supported when using hostinet"). */
  get checkpointsNetworked(): boolean {
    return this.networkMode === 'sandbox';
  }
  private hookSupport?: Promise<boolean>;

  /**
   * `reaper`: native/asb-reaper, when built. With it, `runsc run --detach` starts the sandbox and
   * the reaper alone waits for it (a few hundred kB instead of the ~5 MB of a `runsc run` kept in
   * the foreground for the sandbox's life); without it, `runsc run` stays.
   * `restoreHook`: the sandboxes' agent answers the save/restore hook (the Go agent does): a
   * restored sandbox is then reached on its own socket instead of through a relay.
   * `checkpointInPlace`: with the hook, snapshots may leave their sandbox running (on by default).
   */
  constructor(
    private readonly runsc: string,
    private readonly stateDir: string,
    opts: {
      reaper?: string;
      restoreHook?: boolean;
      checkpointInPlace?: boolean;
      networkMode?: 'sandbox' | 'host';
    } = {},
  ) {
    this.networkMode = opts.networkMode ?? 'sandbox';
    this.reaper = opts.reaper;
    this.restoreHook = opts.restoreHook ?? false;
    this.inPlace = this.restoreHook && (opts.checkpointInPlace ?? true);
    mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    mkdirSync(this.hookedDir, { recursive: true, mode: 0o700 });
  }

  /** A file per sandbox restored from a hooked image: gVisor keeps the hook in the sandbox's
   *  state, and refuses a checkpoint that sets it again ("save/restore binary is already set").
   *  On disk, for an engine that restarts. */
  private get hookedDir(): string {
    return `${this.stateDir}.hooked`;
  }

  /** Whether this runsc runs a program in the sandbox around a checkpoint (gVisor 2025 on;
   *  Debian's 20221219 does not): asked once, of `runsc help checkpoint`. */
  private saveRestoreHookSupported(): Promise<boolean> {
    this.hookSupport ??= run(this.runsc, ['help', 'checkpoint'], { timeout: 10_000 }).then(
      ({ stdout, stderr }) => `${stdout}${stderr}`.includes('save-restore-exec-argv'),
      (err: { stdout?: string; stderr?: string }) =>
        `${err.stdout ?? ''}${err.stderr ?? ''}`.includes('save-restore-exec-argv'),
    );
    return this.hookSupport;
  }

  /**
   * How the sandbox ended, from the exit of the process that waited for it. The reaper ends killed
   * by the signal that killed the sandbox process (the host's OOM killer at its memory limit:
   * SIGKILL), and exits 128 + n when the sandbox's init died by signal n; `runsc run` exits 137
   * for both, taken for the memory limit.
   */
  private exitOf(code: number | null, signal: NodeJS.Signals | null): SandboxExit {
    if (this.reaper) return { code, signal, oomKilled: signal === 'SIGKILL', initSignal: initSignalOf(code) };
    return { code, signal, oomKilled: code === 137 };
  }

  /** The command that starts a sandbox (`runsc run` or `runsc restore`, with `args`) and exits
   *  as the sandbox does. */
  private launcher(
    command: 'run' | 'restore',
    args: string[],
    pidFile: string,
    spec: SandboxRuntimeSpec,
  ): [string, string[]] {
    const flags = this.flags(spec.network ? this.networkMode : 'none');
    if (!this.reaper) return lowPriority(this.runsc, [...flags, command, '--pid-file', pidFile, ...args]);
    const runsc = [this.runsc, ...flags, command, '--detach', '--pid-file', pidFile, ...args];
    return lowPriority(this.reaper, [pidFile, '--', ...runsc]);
  }

  /** gVisor's gofer maps uids one to one: uid 1000 inside owns files of uid 1000 outside. */
  workspaceOwner() {
    return { uid: SANDBOX_UID, gid: SANDBOX_GID };
  }

  /** `network`: what a sandbox starts with (the rest of runsc's commands ignore it). */
  private flags(network: 'none' | 'sandbox' | 'host' = 'none'): string[] {
    // --overlay2=none: an image's root is writable, and a current runsc would put its own overlay
    // over it (root:self, a file store in the root), so writes would miss the sandbox's layer on
    // disk, its quota and its snapshots (image-root.ts). Both runscs take it.
    return ['--root', this.stateDir, `--network=${network}`, '--overlay2=none'];
  }

  async start(containerId: string, spec: SandboxRuntimeSpec, paths: DriverPaths): Promise<DriverHandle> {
    const bundle = writeBundle(spec, paths);
    const [mine, theirs] = await socketPair(join(paths.dir, 'agent.sock'));
    const log = openSync(paths.logFile, 'a', 0o600);
    // Detached: a sandbox outlives an engine crash (the engine re-adopts or reaps it on restart).
    const pidFile = join(paths.dir, 'sandbox.pid');
    rmSync(pidFile, { force: true });
    const child = spawn(...this.launcher('run', ['--bundle', bundle, containerId], pidFile, spec), {
      stdio: [theirs, theirs, log],
      detached: true,
    });
    theirs.destroy();
    closeSync(log);
    child.unref();
    const exited = new Promise<SandboxExit>((resolve) => {
      child.once('exit', (code, signal) => resolve(this.exitOf(code, signal)));
      child.once('error', () => resolve({ code: null, signal: null, oomKilled: false }));
    });
    this.exits.set(containerId, exited);
    void exited.then(() => this.exits.delete(containerId));
    return { socket: mine, exited, pid: child.pid };
  }

  async attach(containerId: string, paths: DriverPaths): Promise<DriverHandle | undefined> {
    let state = await this.state(containerId);
    if (state?.status === 'paused') {
      // An engine that died during a checkpoint in place left it paused: it runs on.
      await this.resume(containerId).catch(() => undefined);
      state = await this.state(containerId);
    }
    if (state?.status !== 'running' || !state.pid) return undefined;
    return { socket: await this.relay(containerId, paths), exited: this.watch(containerId, state.pid), pid: state.pid };
  }

  /** A new connection to the agent of a running sandbox, through a relay exec'd into it. */
  private async relay(containerId: string, paths: DriverPaths): Promise<Socket> {
    // The relay ends when this connection closes (the EOF goes through to the agent, which closes
    // its side), or with the sandbox: destroy's `kill --all` ends it with every other process in
    // there, and `runsc exec` then returns.
    const argv = [...this.flags(), 'exec', '--user', `${SANDBOX_UID}:${SANDBOX_GID}`, containerId, ...RELAY_ARGV];
    const { mine, child: relay } = await spawnOnSocket(lowPriority(this.runsc, argv), paths, 'agent.sock');
    const ended = new Promise<void>((resolve) => relay.once('close', () => resolve()));
    const live = this.relays.get(containerId) ?? new Set();
    this.relays.set(containerId, live.add(ended));
    void ended.then(() => live.delete(ended));
    return mine;
  }

  /**
   * asb-spawn serving its spawn protocol to the engine (exec-lane.ts), exec'd into the running
   * sandbox as the container's own process is (its user and capabilities, spec.process). The
   * `runsc exec` that starts it would then wait for it on the host, a Go process of ~20 MB RSS per
   * sandbox: it is killed once the lane has started (its pid file written), and the lane lives on
   * in the sandbox, its socket held by gVisor. Its end is seen on the socket (its close).
   */
  async execLane(containerId: string, paths: DriverPaths): Promise<Socket> {
    const pidFile = join(paths.dir, 'exec-lane.pid');
    rmSync(pidFile, { force: true });
    const { user, limits } = laneProcess(paths);
    const argv = [...this.flags(), 'exec', '--user', user, '--pid-file', pidFile, containerId, ...EXEC_LANE_ARGV];
    if (limits) argv.push(limits);
    const [file, args] = lowPriority(this.runsc, argv);
    const sockPath = join(paths.dir, 'exec-lane.sock');
    const listener = await listenOnce(sockPath);
    try {
      // Through asb-spawner, off the event loop: node's spawn blocks it until the child has
      // exec'd, once ~300 ms on a machine loaded by sandboxes printing without end.
      const started = await detachCommand([file, ...args], {
        socket: sockPath,
        log: paths.logFile,
        until: pidFile,
        timeoutMs: LANE_START_TIMEOUT_MS,
      }).catch((err: Error) => {
        void listener.accepted.then((s) => s.destroy()); // connected to a lane that is not
        throw new Error(`runsc exec of the exec lane: ${err.message.split('\n').at(-1)} (see ${paths.logFile})`);
      });
      if (started) return await listener.accepted;
    } finally {
      listener.close();
      rmSync(pidFile, { force: true });
    }
    return this.execLaneByNode(file, args, paths, pidFile);
  }

  /** execLane where there is no asb-spawner: node starts the `runsc exec` and kills it. */
  private async execLaneByNode(file: string, args: string[], paths: DriverPaths, pidFile: string): Promise<Socket> {
    const { mine, child: exec } = await spawnOnSocket([file, args], paths, 'exec-lane.sock');
    const exited = new Promise<void>((resolve) => exec.once('close', () => resolve()));
    try {
      for (let waited = 0; ; waited += 5) {
        if (existsSync(pidFile) && readFileSync(pidFile, 'utf8').trim()) break;
        if (exec.exitCode !== null || exec.signalCode !== null || mine.destroyed)
          throw new Error(`runsc exec of the exec lane ended before it started (see ${paths.logFile})`);
        if (waited >= LANE_START_TIMEOUT_MS)
          throw new Error(`the exec lane did not start within ${LANE_START_TIMEOUT_MS} ms`);
        await Promise.race([exited, new Promise((r) => setTimeout(r, 5))]);
      }
    } catch (err) {
      mine.destroy();
      exec.kill('SIGKILL');
      throw err;
    } finally {
      rmSync(pidFile, { force: true });
    }
    exec.kill('SIGKILL');
    return mine;
  }

  /**
   * Waits (up to `ms`) for the sandbox's relays to end, their connections being closed: a relay's
   * stdio are host sockets inside the sandbox, and a checkpoint taken while one still runs holds
   * sockets a restore cannot have back (gVisor 20260905 panics on restore: "initFromOptions
   * failed: socket operation on non-socket").
   */
  private async relaysEnded(containerId: string, ms: number): Promise<boolean> {
    const live = [...(this.relays.get(containerId) ?? [])];
    if (live.length === 0) return true;
    const timeout = new Promise<false>((r) => setTimeout(() => r(false), ms).unref());
    return Promise.race([Promise.all(live).then(() => true), timeout]);
  }

  async checkpoint(containerId: string, imageDir: string): Promise<void> {
    mkdirSync(imageDir, { recursive: true, mode: 0o700 });
    if (!(await this.relaysEnded(containerId, 5_000)))
      throw new Error(`runsc checkpoint ${containerId}: a connection to its agent did not close within 5 s`);
    // With the hook, the agent serves its socket anew after a restore (asb-spawn.c,
    // agent-go/engine_socket.go); the marker tells restore so.
    const hookedAlready = existsSync(join(this.hookedDir, containerId));
    const hook = hookedAlready || (this.restoreHook && (await this.saveRestoreHookSupported()));
    await this.runscCheckpoint(containerId, imageDir, hook && !hookedAlready ? HOOK_FLAGS : []);
    if (hook) writeFileSync(join(imageDir, RESTORE_HOOK_MARKER), `${SAVE_RESTORE_HOOK}\n`);
    // The sandbox has stopped; its state goes in the background: `delete` waits for the sandbox
    // process to be gone, which sometimes takes runsc 5 s, and nothing needs to wait for that.
    void this.destroy(containerId).catch(() => undefined);
  }

  async checkpointsInPlace(containerId: string): Promise<boolean> {
    if (!this.inPlace || (this.relays.get(containerId)?.size ?? 0) > 0) return false;
    return this.saveRestoreHookSupported();
  }

  /**
   * `runsc pause`, then `runsc checkpoint --leave-running`. The hook cannot be given to a paused
   * sandbox's checkpoint (gVisor runs it before the save, and in a paused sandbox it never runs:
   * the checkpoint times out), so a sandbox that has none yet gets it first from a checkpoint
   * while it runs, whose image is dropped: once in its life, the price of its memory written once.
   */
  async checkpointInPlace(containerId: string, imageDir: string): Promise<void> {
    mkdirSync(imageDir, { recursive: true, mode: 0o700 });
    const hooked = join(this.hookedDir, containerId);
    if (!existsSync(hooked)) {
      const arming = `${imageDir}.hook`;
      try {
        await this.runscCheckpoint(containerId, arming, ['--leave-running', ...HOOK_FLAGS]).catch((err: Error) => {
          // Armed already, by a restore this engine has no record of: it is what was wanted.
          if (!/already set/.test(err.message)) throw err;
        });
      } finally {
        rmSync(arming, { recursive: true, force: true });
      }
      writeFileSync(hooked, '');
    }
    await this.runscControl('pause', containerId);
    try {
      await this.runscCheckpoint(containerId, imageDir, ['--leave-running']);
      writeFileSync(join(imageDir, RESTORE_HOOK_MARKER), `${SAVE_RESTORE_HOOK}\n`);
    } catch (err) {
      await this.resume(containerId);
      throw err;
    }
  }

  resume(containerId: string): Promise<void> {
    return this.runscControl('resume', containerId);
  }

  private async runscCheckpoint(containerId: string, imageDir: string, flags: string[]): Promise<void> {
    try {
      await run(this.runsc, [...this.flags(), 'checkpoint', ...flags, '--image-path', imageDir, containerId], {
        timeout: 300_000,
      });
    } catch (err) {
      throw new Error(`runsc checkpoint ${containerId}: ${firstLineOf(err)}`, { cause: err });
    }
  }

  private async runscControl(command: 'pause' | 'resume', containerId: string): Promise<void> {
    try {
      await run(this.runsc, [...this.flags(), command, containerId], { timeout: 30_000 });
    } catch (err) {
      throw new Error(`runsc ${command} ${containerId}: ${firstLineOf(err)}`, { cause: err });
    }
  }

  async restore(
    containerId: string,
    spec: SandboxRuntimeSpec,
    paths: DriverPaths,
    imageDir: string,
  ): Promise<DriverHandle> {
    const bundle = writeBundle(spec, paths);
    // The checkpointed agent's fd 0 was a socket: restore puts this new one behind it (a file
    // fails with ENOTSOCK). An image taken with the save/restore hook has an agent that serves it
    // afresh once restored: the engine connects on it at once. Without the hook, that old
    // connection's HTTP/2 state is the old engine's, so it is closed at once and the engine
    // talks to the agent through a relay, as after a crash.
    const hooked = existsSync(join(imageDir, RESTORE_HOOK_MARKER));
    const [mine, theirs] = await socketPair(join(paths.dir, 'agent.sock'));
    const log = openSync(paths.logFile, 'a', 0o600);
    const pidFile = join(paths.dir, 'sandbox.pid');
    rmSync(pidFile, { force: true });
    const argv = ['--image-path', imageDir, '--bundle', bundle, containerId];
    const child = spawn(...this.launcher('restore', argv, pidFile, spec), {
      stdio: [theirs, theirs, log],
      detached: true,
    });
    theirs.destroy();
    closeSync(log);
    child.unref();
    if (!hooked) mine.destroy();
    let done = false;
    const exited = new Promise<SandboxExit>((resolve) => {
      child.once('exit', (code, signal) => {
        done = true;
        resolve(this.exitOf(code, signal));
      });
      child.once('error', () => {
        done = true;
        resolve({ code: null, signal: null, oomKilled: false });
      });
    });
    this.exits.set(containerId, exited);
    void exited.then(() => this.exits.delete(containerId));
    // The agent answers on `mine` once restored; a restore that fails ends the reaper, which
    // closes it (the engine's wait for the agent then says why, with the log's tail).
    if (hooked) {
      writeFileSync(join(this.hookedDir, containerId), '');
      try {
        await afterMarker(mine, RESTORED_MARKER, exited, 60_000);
      } catch (err) {
        mine.destroy();
        const tail = lastLinesOf(paths.logFile);
        throw new Error(`runsc restore from ${imageDir}: ${(err as Error).message}${tail ? `: ${tail}` : ''}`, {
          cause: err,
        });
      }
      return { socket: mine, exited, pid: child.pid };
    }
    // `runsc restore` (or the reaper) stays in the foreground for the sandbox's life (it reaps it
    // at once when it ends, which a checkpoint waits for). Until the pid file exists, nothing runs
    // yet, and looking for the file costs nothing, unlike a `runsc state` process.
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (done) {
        const tail = lastLinesOf(paths.logFile);
        throw new Error(`runsc restore from ${imageDir} failed: ${tail || 'no output'}`);
      }
      // The pid file comes when the sandbox process starts, before its state is loaded: from
      // then on, ask runsc whether it runs.
      if (existsSync(pidFile) && (await this.state(containerId))?.status === 'running') break;
      if (Date.now() > deadline) throw new Error(`runsc restore from ${imageDir}: not running after 60 s`);
      await new Promise((r) => setTimeout(r, 5));
    }
    return { socket: await this.relay(containerId, paths), exited, pid: child.pid };
  }

  async memoryUsage(containerId: string): Promise<number | undefined> {
    try {
      const { stdout } = await run(this.runsc, [...this.flags(), 'events', '--stats', containerId], {
        timeout: 10_000,
      });
      const stats = JSON.parse(stdout) as { data?: { memory?: { usage?: { usage?: number } } } };
      return stats.data?.memory?.usage?.usage;
    } catch {
      return undefined;
    }
  }

  /** runsc's view of a container, or undefined when it has none. */
  private async state(containerId: string): Promise<{ status: string; pid?: number } | undefined> {
    try {
      const { stdout } = await run(this.runsc, [...this.flags(), 'state', containerId], { timeout: 30_000 });
      return JSON.parse(stdout) as { status: string; pid?: number };
    } catch {
      return undefined;
    }
  }

  /**
   * Settles when the sandbox process `pid` is gone, for a sandbox this engine did not start (one it
   * did has its `runsc run` child to wait on). Looked at once a second in /proc, which costs
   * nothing next to a `runsc state` (a process) per sandbox per second; its start time tells a
   * reused pid apart. One watch per sandbox, however often it is attached.
   */
  private watch(containerId: string, pid: number): Promise<SandboxExit> {
    const known = this.exits.get(containerId);
    if (known) return known;
    const startedAt = processStartTime(pid);
    const exited = new Promise<SandboxExit>((resolve) => {
      const timer = setInterval(() => {
        const now = processStartTime(pid);
        if (now !== undefined && now === startedAt) return;
        clearInterval(timer);
        // Its exit status went to its parent, a `runsc run` of an engine that is gone.
        resolve({ code: null, signal: null, oomKilled: false });
      }, WATCH_INTERVAL_MS);
      // The watch alone must not keep the engine running.
      timer.unref();
    });
    this.exits.set(containerId, exited);
    void exited.then(() => this.exits.delete(containerId));
    return exited;
  }

  async destroy(containerId: string): Promise<void> {
    // Teardown runs at a low CPU weight, the dying sandbox included: nobody waits on it,
    // while the engine's other sandboxes (the next claim's) are running commands someone is.
    lowerToTeardownWeight(containerId);
    // Kill first and give the sandbox a moment to stop: `delete --force` on a sandbox still
    // tearing down can exceed runsc's internal deadline, so it is retried.
    await run(...atTeardownWeight(this.runsc, [...this.flags(), 'kill', '--all', containerId, 'KILL']), {
      timeout: 10_000,
    }).catch(() => undefined);
    const exited = this.exits.get(containerId);
    const oneSecond = () => new Promise<false>((r) => setTimeout(() => r(false), 1_000));
    const gone = exited ? await Promise.race([exited.then(() => true), oneSecond()]) : false;
    if (!gone) {
      // A sandbox restored under a new container id still files its processes under the id it
      // was checkpointed with, so `kill --all` finds none of them: its sentry dies from here.
      const state = await this.state(containerId);
      if (state?.status === 'running' && state.pid) {
        try {
          process.kill(state.pid, 'SIGKILL');
        } catch {
          /* already gone */
        }
        if (exited) await Promise.race([exited, new Promise((r) => setTimeout(r, 5_000))]);
      }
    }
    rmSync(join(this.hookedDir, containerId), { force: true });
    let last = '';
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        await run(...atTeardownWeight(this.runsc, [...this.flags(), 'delete', '--force', containerId]), {
          timeout: 30_000,
        });
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
    return stdout
      .split('\n')
      .map((s) => s.trim())
      .filter(Boolean);
  }

  /**
   * Newer runsc pins one empty network namespace for every sandbox's gofer, bind-mounted at
   * `<root>/null-netns` and left there (runsc/specutils UnmountNullNetNS): without this, the
   * engine's home cannot be removed (EBUSY). Running gofers keep their namespace; the next
   * sandbox pins a new one.
   */
  async close(): Promise<void> {
    await unmountAll(this.stateDir);
  }
}

/**
 * A sandbox's processes (runsc's sandbox, gofer and, under ptrace, its stubs, all forked from the
 * command started here) start outside the engine's weighted cgroup (engine-cgroup.ts), at nice
 * 10: runsc then moves the sandbox into a cgroup of its own, where its CPU weight decides; the
 * nice value still ranks whatever runsc leaves behind in the helpers' cgroup.
 */
export const SANDBOX_NICE = 10;
function lowPriority(command: string, args: string[]): [string, string[]] {
  return outsideEngineCgroup('nice', ['-n', String(SANDBOX_NICE), command, ...args]);
}

/** The OCI bundle of a sandbox (its config.json), for `runsc run` and `runsc restore` alike. */
/**
 * Starts `file args` with a new socketpair (made at paths.dir/sockName) as its stdin and stdout
 * and the sandbox's log as its stderr; returns our end. Detached like `runsc run`: a signal to the
 * engine's process group (Ctrl-C) is not its. A command that cannot be run ends the connection.
 */
async function spawnOnSocket(
  [file, args]: [string, string[]],
  paths: DriverPaths,
  sockName: string,
): Promise<{ mine: Socket; child: ChildProcess }> {
  const [mine, theirs] = await socketPair(join(paths.dir, sockName));
  const log = openSync(paths.logFile, 'a', 0o600);
  const child = spawn(file, args, { stdio: [theirs, theirs, log], detached: true });
  theirs.destroy();
  closeSync(log);
  child.unref();
  child.once('error', () => mine.destroy());
  return { mine, child };
}

/**
 * What the exec lane must be given of the sandbox's init process (its spec, in the bundle), which
 * a process `runsc exec` starts does not get by itself: its user (`uid:gid`; gVisor 20221219 runs
 * an exec as root otherwise) and its pids and open-files limits (`NPROC:NOFILE`, for asb-spawn
 * --exec-lane, which takes PID 1's where gVisor lets it).
 */
function laneProcess(paths: DriverPaths): { user: string; limits?: string } {
  const spec = JSON.parse(readFileSync(join(paths.dir, 'bundle', 'config.json'), 'utf8')) as {
    process: { user: { uid: number; gid: number }; rlimits?: { type: string; hard: number }[] };
  };
  const { uid, gid } = spec.process.user;
  const limit = (type: string) => spec.process.rlimits?.find((r) => r.type === type)?.hard;
  const [nproc, nofile] = [limit('RLIMIT_NPROC'), limit('RLIMIT_NOFILE')];
  const limits = Number.isInteger(nproc) && Number.isInteger(nofile) ? `${nproc}:${nofile}` : undefined;
  return { user: `${uid}:${gid}`, limits };
}

function writeBundle(spec: SandboxRuntimeSpec, paths: DriverPaths): string {
  const bundle = join(paths.dir, 'bundle');
  mkdirSync(bundle, { recursive: true, mode: 0o700 });
  writeFileSync(join(bundle, 'config.json'), JSON.stringify(buildOciSpec(spec)));
  return bundle;
}

/** The signal that killed the sandbox's init, from its exit code 128 + n (runsc's convention). */
function initSignalOf(code: number | null): number | undefined {
  return code !== null && code > 128 && code <= 128 + 64 ? code - 128 : undefined;
}

/** A live process's start time (clock ticks after boot), or undefined when it is gone or a zombie. */
function processStartTime(pid: number): string | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // pid (comm) state ppid ...: comm may hold spaces and parentheses; starttime is field 22.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return fields[0] === 'Z' || fields[0] === 'X' ? undefined : fields[19];
}

/**
 * Whether this runsc refuses statx(2) with AT_NO_AUTOMOUNT, so that sandboxes need
 * native/statx-shim.c preloaded: Debian's 20221219 does, the pinned current one (20260905,
 * scripts/build-runsc.sh) does not. Releases from before 2024, and versions that name no date,
 * are taken to need it (not bisected further: the shim only costs time).
 */
export function runscNeedsStatxShim(version: string | undefined): boolean {
  const date = /(20\d{6})/.exec(version ?? '')?.[1];
  return date === undefined || Number(date) < 20240101;
}

/** runsc before 2024 takes every network namespace of a 6.x kernel for the host's (it looks for
 *  net.core.rmem_default, which such kernels have in each), and refuses its own netstack there. */
export function runscNetstackWorks(version: string | undefined): boolean {
  const date = /(\d{8})/.exec(version ?? '')?.[1];
  return date === undefined || Number(date) >= 20240101;
}

export async function runscVersion(runsc: string): Promise<string | undefined> {
  try {
    const { stdout } = await run(runsc, ['--version'], { timeout: 10_000 });
    return stdout.split('\n')[0]?.trim();
  } catch {
    return undefined;
  }
}

/** The sandbox log's last lines on one line, for an error message. */
function lastLinesOf(logFile: string): string {
  return tailOf(logFile, 4000).split('\n').slice(-3).join(' ').slice(-600);
}

/**
 * Resolves once `marker` has come on `socket`, what came before it dropped and what came after it
 * put back to be read (HTTP/2 takes a socket's buffered bytes). Rejects when the socket ends, the
 * sandbox exits, or `ms` pass first.
 */
function afterMarker(socket: Socket, marker: Buffer, exited: Promise<unknown>, ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = Buffer.alloc(0);
    const timer = setTimeout(() => finish(new Error(`the restored agent did not answer within ${ms} ms`)), ms);
    const onData = (chunk: Buffer) => {
      seen = Buffer.concat([seen, chunk]);
      const at = seen.indexOf(marker);
      if (at < 0) {
        seen = seen.subarray(Math.max(0, seen.length - marker.length)); // a marker split across chunks
        return;
      }
      finish();
      const rest = seen.subarray(at + marker.length);
      if (rest.length > 0) socket.unshift(rest);
    };
    const onEnd = () => finish(new Error('the sandbox closed its socket before its agent answered'));
    void exited.then(() => finish(new Error('the sandbox exited before its agent answered')));
    let settled = false;
    function finish(err?: Error) {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.off('data', onData).off('end', onEnd).off('close', onEnd).off('error', onEnd);
      socket.pause();
      if (err) reject(err);
      else resolve();
    }
    socket.on('data', onData).once('end', onEnd).once('close', onEnd).once('error', onEnd);
  });
}

/** A failed runsc command's first line of stderr, or its error's message. */
function firstLineOf(err: unknown): string {
  return String((err as { stderr?: string }).stderr || (err as Error).message)
    .trim()
    .split('\n')[0]!;
}
