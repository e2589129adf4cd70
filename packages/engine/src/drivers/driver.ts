// The seam between the engine and an isolation technology. Three methods that matter (start,
// attach, destroy) plus a listing for reaping; each driver has its own file.
import type { Socket } from 'node:net';
import type { SandboxRuntimeSpec } from './runtime-spec.ts';

export interface DriverPaths {
  /** Per-sandbox directory the driver may write (bundle, logs). */
  dir: string;
  logFile: string;
}

/** The sandbox's exit code when its agent died by a signal (asb-spawn.c's AGENT_KILLED_EXIT), so
 *  that it is not taken for 137, the whole sandbox killed at its memory limit. */
export const AGENT_KILLED_EXIT_CODE = 97;

export interface SandboxExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The host's OOM killer ended the sandbox at its memory limit. */
  oomKilled: boolean;
  /** The sandbox's init (its agent, or asb-spawn before it) died by this signal, when known:
   *  something inside the sandbox killed it. */
  initSignal?: number;
}

export interface DriverHandle {
  /** The engine's end of a socketpair whose other end is the agent's fd 0 (start), or a relay to
   *  the agent's abstract socket (attach). Either way: one HTTP/2 connection to the agent. Its
   *  closing does not end the sandbox. */
  socket: Socket;
  /** Settles when the sandbox's init process is gone (not when the connection closes). After an
   *  attach the exit status is unknown: code and signal are null. */
  exited: Promise<SandboxExit>;
  /** Host pid of the sandbox: the runtime's process after start, the sandbox's after attach. */
  pid: number | undefined;
}

export interface SandboxDriver {
  readonly name: 'gvisor' | 'bubblewrap';
  /** A sentence for users: what isolates the sandbox. */
  readonly isolation: string;
  /** Host owner of the workspace, so that the sandbox's user (uid 1000 inside) can write it. */
  workspaceOwner(): { uid: number; gid: number };
  start(containerId: string, spec: SandboxRuntimeSpec, paths: DriverPaths): Promise<DriverHandle>;
  /**
   * Reconnects to the agent of a sandbox this driver started earlier (perhaps by an engine that
   * has since died); undefined when it is not running. Each call is a new connection; the old
   * ones keep working until closed. `paths` are those the sandbox was started with.
   */
  attach(containerId: string, paths: DriverPaths): Promise<DriverHandle | undefined>;
  /**
   * A connection to a new asb-spawn in the running sandbox (`--exec-lane`: its spawn protocol),
   * started as the container's process is: the engine's lane for foreground commands
   * (workloads/exec-lane.ts). It ends when the connection closes, or with the sandbox; a
   * checkpoint waits for it to end. Undefined where the driver cannot (bubblewrap).
   */
  execLane?(containerId: string, paths: DriverPaths): Promise<Socket>;
  /**
   * Memory snapshots (gVisor only; undefined elsewhere). checkpoint saves the sandbox's processes,
   * memory and in-sandbox filesystems (tmpfs /tmp, $HOME) to `imageDir`; the sandbox is gone
   * afterwards, on success and on failure alike (runsc 20221219 cannot leave it running).
   * Host-backed mounts (the workspace, volumes) are not in the image: the caller copies them.
   */
  checkpoint?(containerId: string, imageDir: string): Promise<void>;
  /**
   * Whether checkpointInPlace can save this sandbox now: its runsc leaves a checkpointed sandbox
   * running and its agent answers the save/restore hook (gVisor 2025 on, the Go agent), and no
   * relay's host sockets are in it (an image cannot keep those).
   */
  checkpointsInPlace?(containerId: string): Promise<boolean>;
  /** Saves the sandbox as checkpoint does into `imageDir`, and leaves it paused, alive: its files
   *  can then be copied as its processes saw them. resume() lets it run on; on failure it runs on. */
  checkpointInPlace?(containerId: string, imageDir: string): Promise<void>;
  resume?(containerId: string): Promise<void>;
  /** False where a networked sandbox cannot be checkpointed (runsc 20221219 on the host's stack). */
  readonly checkpointsNetworked?: boolean;
  /** Starts a sandbox from a checkpoint; `spec` must mount the same destinations as the
   *  checkpointed one (sources may differ: a fork has its own workspace). */
  restore?(containerId: string, spec: SandboxRuntimeSpec, paths: DriverPaths, imageDir: string): Promise<DriverHandle>;
  /** Bytes of memory the sandbox uses now (what a checkpoint has to write, at most). */
  memoryUsage?(containerId: string): Promise<number | undefined>;
  /** Kills every process of the sandbox (relays of attach included) and frees its resources;
   *  idempotent. */
  destroy(containerId: string): Promise<void>;
  /** Container ids this driver still holds (running or stopped), for reaping after a crash. */
  list(): Promise<string[]>;
  /** Lets go of what the driver keeps between sandboxes, when the engine stops (running
   *  sandboxes are not touched). */
  close?(): Promise<void>;
}
