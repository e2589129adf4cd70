// The seam between the engine and an isolation technology. Two methods that matter (start,
// destroy) plus a listing for reaping; each driver has its own file.
import type { Socket } from 'node:net';
import type { SandboxRuntimeSpec } from '../oci-spec.ts';

export interface DriverPaths {
  /** Per-sandbox directory the driver may write (bundle, logs). */
  dir: string;
  logFile: string;
}

export interface SandboxExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The host's OOM killer ended the sandbox at its memory limit. */
  oomKilled: boolean;
}

export interface DriverHandle {
  /** The engine's end of the socketpair whose other end is the agent's fd 0. */
  socket: Socket;
  /** Settles when the sandbox's init process is gone. */
  exited: Promise<SandboxExit>;
  pid: number | undefined;
}

export interface SandboxDriver {
  readonly name: 'gvisor' | 'bubblewrap';
  /** A sentence for users: what isolates the sandbox. */
  readonly isolation: string;
  /** Host owner of the workspace, so that the sandbox's user (uid 1000 inside) can write it. */
  workspaceOwner(): { uid: number; gid: number };
  start(containerId: string, spec: SandboxRuntimeSpec, paths: DriverPaths): Promise<DriverHandle>;
  /** Kills every process of the sandbox and frees its resources; idempotent. */
  destroy(containerId: string): Promise<void>;
  /** Container ids this driver still holds (running or stopped), for reaping after a crash. */
  list(): Promise<string[]>;
}
