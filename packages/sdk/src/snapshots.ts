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
  /** Bytes on disk: the checkpoint image and the copy of the workspace and volumes. */
  sizeBytes: number;
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

export class Snapshot {
  constructor(private readonly conn: ResolvedConnection, readonly info: SnapshotInfo) {}
  get id(): string { return this.info.id; }
  async delete(): Promise<void> {
    await call(this.conn, `/v1/snapshots/${encodeURIComponent(this.id)}`, `delete snapshot "${this.id}"`, { method: 'DELETE' });
  }
}

/** The snapshots of one sandbox (`sandbox.snapshots`), or of every sandbox (`new Snapshots(conn)`). */
export class Snapshots {
  private readonly conn: ResolvedConnection;
  constructor(conn: ConnectionOpts | ResolvedConnection, private readonly target?: { id: string; namespace: string }) {
    this.conn = 'url' in conn && 'token' in conn && typeof conn.token === 'string' && 'requestTimeoutMs' in conn ? conn as ResolvedConnection : resolveConnection(conn);
  }

  private get base(): string {
    return this.target ? `/v1/sandboxes/${encodeURIComponent(this.target.namespace)}/${encodeURIComponent(this.target.id)}/snapshots` : '/v1/snapshots';
  }

  async list(): Promise<Snapshot[]> {
    const { items } = await callJson<{ items: SnapshotInfo[] }>(this.conn, this.base, 'list snapshots');
    return items.map((i) => new Snapshot(this.conn, i));
  }

  async get(id: string): Promise<Snapshot> {
    return new Snapshot(this.conn, await callJson<SnapshotInfo>(this.conn, `/v1/snapshots/${encodeURIComponent(id)}`, `get snapshot "${id}"`));
  }

  /** Snapshot of the running sandbox, which keeps running (paused for the checkpoint, ~0.5 s). */
  async create(): Promise<Snapshot> {
    if (!this.target) throw new Error('snapshots.create() needs a sandbox: use sandbox.snapshots.create()');
    const info = await callJson<SnapshotInfo>(this.conn, this.base, `snapshot sandbox "${this.target.id}"`, { json: {}, timeoutMs: 600_000 });
    return new Snapshot(this.conn, info);
  }
}
