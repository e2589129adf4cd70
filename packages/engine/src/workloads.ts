// The local substrate's workloads: one gVisor (or bubblewrap) sandbox per Sandbox object, the
// Pod of the local engine. The lifecycle reconcilers ask for a workload to run (ensure), to stop
// (suspend, expiry: processes end, the workspace and volumes stay) or to go (release: the Sandbox
// object is gone). This file is the face the rest of the engine sees; each job is in workloads/:
// launch.ts (start, stop), connection.ts (the agent connection), warm-up.ts, restore.ts (which
// snapshot a start comes from), snapshot.ts, reset.ts, recovery.ts (after a restart), log-cap.ts.
import type { Sandbox } from '@asb/api';
import type { StopState, WorkloadState, Workloads } from '@asb/lifecycle';
import type { AgentClient } from './agent-client.ts';
import { EngineError } from './errors.ts';
import { destroyWorkspace } from './workspace.ts';
import type { SnapshotMeta, SnapshotStore } from './snapshots.ts';
import { AgentConnections } from './workloads/connection.ts';
import type { ExecLane } from './workloads/exec-lane.ts';
import { Launcher } from './workloads/launch.ts';
import { LogCapper } from './workloads/log-cap.ts';
import { recover as recoverWorkloads } from './workloads/recovery.ts';
import { reset as resetWorkload } from './workloads/reset.ts';
import { startSource } from './workloads/restore.ts';
import { Snapshotter, type SnapshotOpts } from './workloads/snapshot.ts';
import { keyOf, sandboxDir, stateOf, WorkloadTable, type Workload, type WorkloadsDeps } from './workloads/workload.ts';

export type { AgentInstall, Phase, Workload, WorkloadsDeps } from './workloads/workload.ts';

export class LocalWorkloads implements Workloads {
  readonly snapshots: SnapshotStore;
  private readonly table = new WorkloadTable();
  private readonly connections: AgentConnections;
  private readonly launcher: Launcher;
  private readonly snapshotter: Snapshotter;
  private readonly logCapper: LogCapper;

  constructor(private readonly deps: WorkloadsDeps) {
    const table = this.table;
    this.snapshots = deps.snapshots;
    this.connections = new AgentConnections({ ...deps, table });
    this.launcher = new Launcher({ ...deps, table, connections: this.connections });
    this.snapshotter = new Snapshotter({ ...deps, table, launcher: this.launcher, connections: this.connections });
    this.logCapper = new LogCapper({ ...deps, table });
  }

  onChange(fn: (ns: string, name: string) => void): void {
    this.table.onChange(fn);
  }

  get(namespace: string, name: string): Workload | undefined {
    return this.table.get(namespace, name);
  }
  list(): Workload[] {
    return this.table.list();
  }

  /** The agent connection of a ready sandbox (waiting for a lost one to be replaced), or a typed
   *  error saying why there is none. */
  async agentOf(namespace: string, name: string): Promise<AgentClient> {
    const w = this.table.get(namespace, name);
    if (!w) {
      const sb = this.deps.store.getSync('Sandbox', namespace, name);
      if (!sb) {
        const hint = 'list sandboxes with `asb ls`';
        throw new EngineError('NotFound', `sandbox "${name}" not found in namespace "${namespace}"; ${hint}`);
      }
      const suspended =
        sb.spec.operatingMode === 'Suspended'
          ? ' (it is suspended: resume it with `asb resume`, or set replicas: 1)'
          : '';
      throw new EngineError('Unavailable', `sandbox "${name}" is not running${suspended}`);
    }
    if (w.phase === 'Running' && w.agent?.closed) {
      await (w.reconnecting ?? this.connections.reconnect(w, 'the connection to the sandbox agent closed'));
    }
    if (w.phase !== 'Running' || !w.agent || w.agent.closed) {
      throw new EngineError('Unavailable', `sandbox "${name}" is ${w.phase}${w.message ? `: ${w.message}` : ''}`);
    }
    return w.agent;
  }

  /** The stored Sandbox: what the proxy checks a request for one of its ports against. */
  sandboxObject(namespace: string, name: string): Sandbox | undefined {
    return this.deps.store.getSync('Sandbox', namespace, name);
  }

  /** The exec lane of a running sandbox, when open (see AgentConnections.execLane). */
  execLaneOf(namespace: string, name: string): ExecLane | undefined {
    const w = this.table.get(namespace, name);
    return w?.phase === 'Running' && !w.stopping ? this.connections.execLane(w) : undefined;
  }

  async ensure(sb: Sandbox): Promise<WorkloadState> {
    const ns = sb.metadata.namespace;
    const name = sb.metadata.name!;
    let w = this.table.get(ns, name);
    if (w && w.uid !== sb.metadata.uid) {
      // Same name, new object: the old one's workload and files are not the new one's.
      await this.release(ns, name);
      w = undefined;
    }
    const held = this.table.held.get(keyOf(ns, name));
    if (!w && held) return { phase: 'Pending', ready: false, message: held, podIPs: [] };
    if (!w) w = this.launcher.start(sb, startSource(this.deps, sb, { explicit: true }));
    return stateOf(w);
  }

  /** (A gVisor sandbox ends with its teardown: gone when this resolves.) */
  async stop(sb: Sandbox): Promise<StopState> {
    const k = keyOf(sb.metadata.namespace, sb.metadata.name!);
    this.table.held.delete(k);
    const w = this.table.running.get(k);
    if (w) await this.launcher.teardown(w);
    return { stage: 'gone' };
  }

  async release(namespace: string, name: string): Promise<void> {
    const w = this.table.get(namespace, name);
    if (w) await this.launcher.teardown(w);
    await destroyWorkspace(sandboxDir(this.deps.config.home, namespace, name));
    this.deps.store.deleteWorkload(namespace, name);
  }

  /** A memory snapshot of a running sandbox (workloads/snapshot.ts). */
  snapshot(sb: Sandbox, opts: SnapshotOpts): Promise<SnapshotMeta> {
    return this.snapshotter.take(sb, opts);
  }

  /** Back to the template's clean state, in place (workloads/reset.ts). */
  reset(sb: Sandbox): Promise<Workload> {
    return resetWorkload({ ...this.deps, table: this.table, launcher: this.launcher }, sb);
  }

  /** After a restart: re-attach or reap what a previous engine left (workloads/recovery.ts). */
  recover(): Promise<{ reattached: number; reaped: number }> {
    return recoverWorkloads({ ...this.deps, table: this.table, connections: this.connections });
  }

  /** Engine shutdown: every container ends (workspaces stay with their Sandbox objects). */
  async stopAll(): Promise<void> {
    this.logCapper.stop();
    const stopOne = (w: Workload) =>
      this.launcher.teardown(w).catch((err) => this.deps.log.error({ err, sandbox: w.name }, 'stop failed'));
    await Promise.all(this.list().map(stopOne));
  }
}
