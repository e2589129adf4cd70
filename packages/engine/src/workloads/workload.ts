// One workload (a sandbox's container and its agent connection) and the table of them that every
// part of workloads/ shares: which run, which are held down by a snapshot or a reset, which have
// one under way, and who is told when one changes.
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { WorkloadState } from '@asb/lifecycle';
import type { ImageStore } from '@asb/oci';
import type { AgentClient } from '../agent-client.ts';
import type { ExecLane } from './exec-lane.ts';
import type { AgentKind, ResourceLimits } from '../drivers/runtime-spec.ts';
import type { DriverHandle, SandboxDriver, SandboxExit } from '../drivers/driver.ts';
import type { Rootfs } from '../rootfs.ts';
import type { EngineMetrics } from '../metrics.ts';
import type { SnapshotMeta, SnapshotStore } from '../snapshots.ts';
import type { EngineConfig } from '../config.ts';
import type { SqliteStore } from '../store/sqlite-store.ts';
import type { NetworkAttachment } from '../network/host-network.ts';
import type { SandboxNetworking } from '../network/sandbox-network.ts';

export type Phase = 'Pending' | 'Running' | 'Failed';

/** One running (or starting, or failed) container. */
export interface Workload {
  namespace: string;
  name: string;
  uid: string;
  containerId: string;
  phase: Phase;
  message: string;
  /** Why a Pending container waits, in the kubelet's words (ErrImagePull, ImagePullBackOff, ...). */
  reason?: WorkloadState['reason'];
  startedAt: Date;
  readyAt?: Date;
  limits: ResourceLimits;
  image: string;
  diskQuotaBytes?: number;
  exit?: SandboxExit;
  handle?: DriverHandle;
  agent?: AgentClient;
  /** Set by stop/release: the exit that follows is expected. */
  stopping?: boolean;
  /** The snapshot its processes were restored from, when they were. */
  restoredFrom?: string;
  /** Settles when the start (boot or restore) has finished, ready or failed. */
  started?: Promise<void>;
  /** Set while a lost agent connection is being replaced (through the relay). */
  reconnecting?: Promise<AgentClient | undefined>;
  /** The sandbox's log file (runsc's and the agent's stderr). */
  logFile?: string;
  /** The engine's lane for foreground commands (exec-lane.ts), once open; and its opening. */
  execLane?: ExecLane;
  execLaneOpening?: Promise<void>;
  /** The part of the opening under way once its turn came (AgentConnections.laneOpens). */
  execLaneDialing?: Promise<void>;
  /** After a lane failed to open or was lost: not tried again before this time (ms since the epoch). */
  execLaneRetryAt?: number;
  /** Set while a checkpoint in place keeps the lane closed (AgentConnections.holdExecLane). */
  execLaneHeld?: boolean;
  /** Lanes lost without the engine ending them (each makes the next wait longer). */
  execLaneLosses?: number;
  /** When the agent connection was last replaced: a sandbox whose connection keeps dropping fails. */
  reconnects?: number[];
  /** Its network namespace and address, when its template lets it out (network/). */
  network?: NetworkAttachment;
}

/** Where a starting sandbox's processes come from: a boot, or a snapshot. */
export interface StartSource {
  snapshot: SnapshotMeta;
  /** A new sandbox (fork, golden start) gets the snapshot's files; a resumed one has its own. */
  copyFiles: boolean;
}

/** The agent as installed for sandboxes to mount (engine.ts installAgent). */
export interface AgentInstall {
  dir: string;
  preload?: string;
  snapshot: boolean;
  spawner?: string;
  /** node (agent.cjs) or go (asb-agent): ASB_AGENT. */
  kind: AgentKind;
}

/** Everything the workloads use from the rest of the engine, by name. */
export interface WorkloadsDeps {
  config: EngineConfig;
  driver: SandboxDriver;
  rootfs: Rootfs;
  agent: AgentInstall;
  store: SqliteStore;
  log: Logger;
  snapshots: SnapshotStore;
  metrics?: EngineMetrics;
  /** The images sandboxes run ($ASB_HOME/images). */
  images: ImageStore;
  networking: SandboxNetworking;
}

export const keyOf = (ns: string, name: string): string => `${ns}/${name}`;

/** A sandbox's own directory: workspace, volumes, log, bundle. */
export function sandboxDir(home: string, ns: string, name: string): string {
  return join(home, 'sandboxes', ns, name);
}

export function stateOf(w: Workload): WorkloadState {
  return { phase: w.phase, ready: w.phase === 'Running', message: w.message, reason: w.reason, podIPs: [] };
}

export class WorkloadTable {
  readonly running = new Map<string, Workload>();
  /** Sandboxes that must not be started while a snapshot or a reset has them down. */
  readonly held = new Map<string, string>();
  /** Sandboxes with a snapshot or reset in progress: one at a time. */
  readonly busy = new Set<string>();
  private listeners: Array<(ns: string, name: string) => void> = [];

  get(namespace: string, name: string): Workload | undefined {
    return this.running.get(keyOf(namespace, name));
  }
  list(): Workload[] {
    return [...this.running.values()];
  }

  onChange(fn: (ns: string, name: string) => void): void {
    this.listeners.push(fn);
  }
  changed(w: Workload): void {
    for (const fn of this.listeners) fn(w.namespace, w.name);
  }

  fail(w: Workload, message: string): void {
    if (w.phase === 'Failed' || w.stopping) return;
    w.phase = 'Failed';
    w.message = message;
    this.changed(w);
  }
}
