// Memory snapshots of a sandbox (local engine, gVisor): taken by `sandbox.suspend({ snapshot:
// true })` or `sandbox.snapshots.create()`, listed per sandbox or for all, deleted, and started
// as new sandboxes with `Sandbox.create({ fromSnapshot })`.
import { callJson, call, resolveConnection, type ConnectionOpts, type ResolvedConnection } from './connection.ts';

export interface SnapshotInfo {
  id: string;
  namespace: string;
  /** The sandbox it was taken of. */
  sandbox: string;
  template?: string;
  createdAt: string;
  reason: 'suspend' | 'manual';
  /** Bytes on disk: the checkpoint image and the copy of the workspace and volumes (unknown for
   *  GKE Pod snapshots, which keep them in the cluster's storage). */
  sizeBytes?: number;
}

export interface SuspendResult {
  suspended: true;
  /** The snapshot's id when the suspend took one. */
  snapshotId?: string;
  snapshot?: SnapshotInfo;
}

export interface ResumeResult {
  resumed: true;
  /** True when the processes and memory came back from a snapshot (else they started afresh). */
  restoredFromSnapshot: boolean;
  snapshotId?: string;
}

/** Where a sandbox's snapshots are kept: the local engine (gVisor checkpoints), or a cluster's
 *  GKE Pod snapshots (gke-snapshots.ts). */
export interface SnapshotStore {
  list(): Promise<SnapshotInfo[]>;
  get(id: string): Promise<SnapshotInfo>;
  /** Snapshot of the running sandbox, which keeps running. */
  create(): Promise<SnapshotInfo>;
  delete(id: string): Promise<void>;
}

/** The local engine's HTTP API, for one sandbox or for all. */
class EngineSnapshots implements SnapshotStore {
  constructor(
    private readonly conn: ResolvedConnection,
    private readonly target?: { id: string; namespace: string },
  ) {}

  private get base(): string {
    return this.target
      ? `/v1/sandboxes/${encodeURIComponent(this.target.namespace)}/${encodeURIComponent(this.target.id)}/snapshots`
      : '/v1/snapshots';
  }

  async list(): Promise<SnapshotInfo[]> {
    return (await callJson<{ items: SnapshotInfo[] }>(this.conn, this.base, 'list snapshots')).items;
  }
  get(id: string): Promise<SnapshotInfo> {
    return callJson<SnapshotInfo>(this.conn, `/v1/snapshots/${encodeURIComponent(id)}`, `get snapshot "${id}"`);
  }
  create(): Promise<SnapshotInfo> {
    if (!this.target) throw new Error('snapshots.create() needs a sandbox: use sandbox.snapshots.create()');
    return callJson<SnapshotInfo>(this.conn, this.base, `snapshot sandbox "${this.target.id}"`, {
      json: {},
      timeoutMs: 600_000,
    });
  }
  async delete(id: string): Promise<void> {
    await call(this.conn, `/v1/snapshots/${encodeURIComponent(id)}`, `delete snapshot "${id}"`, { method: 'DELETE' });
  }
}

export class Snapshot {
  constructor(
    private readonly store: SnapshotStore,
    readonly info: SnapshotInfo,
  ) {}
  get id(): string {
    return this.info.id;
  }
  delete(): Promise<void> {
    return this.store.delete(this.id);
  }
}

const isStore = (x: unknown): x is SnapshotStore => typeof (x as SnapshotStore).list === 'function';

/** The snapshots of one sandbox (`sandbox.snapshots`), or of every sandbox (`new Snapshots(conn)`). */
export class Snapshots {
  private readonly store: SnapshotStore;
  constructor(conn: ConnectionOpts | ResolvedConnection | SnapshotStore, target?: { id: string; namespace: string }) {
    if (isStore(conn)) {
      this.store = conn;
      return;
    }
    const resolved =
      'url' in conn && 'token' in conn && typeof conn.token === 'string' && 'requestTimeoutMs' in conn
        ? (conn as ResolvedConnection)
        : resolveConnection(conn);
    this.store = new EngineSnapshots(resolved, target);
  }

  async list(): Promise<Snapshot[]> {
    return (await this.store.list()).map((i) => new Snapshot(this.store, i));
  }

  async get(id: string): Promise<Snapshot> {
    return new Snapshot(this.store, await this.store.get(id));
  }

  /** Snapshot of the running sandbox, which keeps running (paused for the checkpoint, ~0.5 s). */
  async create(): Promise<Snapshot> {
    return new Snapshot(this.store, await this.store.create());
  }
}
