// The local engine's object store: SQLite in WAL mode with synchronous=NORMAL, so a committed
// write survives a kill -9 of the engine at any moment (it is in the WAL, in the kernel's page
// cache), and flush() makes everything committed so far survive a crash of the machine too: the
// HTTP API calls it before it acknowledges a change (http/api.ts). One fdatasync, off the event
// loop, for all the writes a request caused, instead of one fsync on the event loop per write
// (synchronous=FULL): an update of a Sandbox held the event loop 1.7 ms with it, 0.8 without, and
// a warm claim makes seven (its create, p50 of 15, alternated twice: 22.0 and 22.1 ms with FULL,
// 14.1 and 15.0 with this). All objects are also held in memory (the store is the only writer),
// so reads and label selection cost no I/O — the same shape as an informer's cache over the API
// server.
// The objects it holds are frozen, deep: an object once written never changes, so watchers and
// cached reads (what the reconcilers ask for with `cached: true`, as from an informer's cache) get
// the stored object itself, not a copy of it. A claim on a pool listed its members cloned, and the
// pool's reconcile every Sandbox of the namespace: O(sandboxes) copies per claim.
// It behaves as the API server does where the reconcilers rely on it: uid, resourceVersion
// (optimistic concurrency), generation (bumped when spec changes), generateName, and deletion
// of the objects a deleted object controls (ownerReferences), in the same transaction.
import { EventEmitter } from 'node:events';
import { closeSync, fdatasync, openSync } from 'node:fs';
import { randomUUID, randomInt } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import Database from 'better-sqlite3';
import { validateHub, formatIssues, rfc3339, updateViolations } from '@asb/api';
import { EngineError } from '../errors.ts';
import {
  AlreadyExistsError,
  ConflictError,
  NotFoundError,
  type AnyHub,
  type DeleteOptions,
  type GetOptions,
  type HubKinds,
  type KindName,
  type ListOptions,
  type WatchableStore,
  type WatchEvent,
} from '@asb/lifecycle';

/** Every write is checked against the kind's hub schema (defaults applied), as the API server
 *  validates against the CRD: nothing invalid reaches the store, whoever writes it. */
function admit<T extends AnyHub>(input: T): T {
  const candidate = structuredClone(input);
  // generateName objects get their name at create; validate with a stand-in that satisfies the rule.
  const { name, generateName } = candidate.metadata;
  const stub =
    !name && generateName
      ? { ...candidate, metadata: { ...candidate.metadata, name: `${generateName}xxxxx` } }
      : candidate;
  const v = validateHub(stub);
  if (!v.ok) {
    const causes = v.errors.map((e) => ({ field: e.path, message: e.message }));
    throw new EngineError('Invalid', `invalid ${input.kind}:\n${formatIssues(v.errors)}`, causes);
  }
  const out = v.object as T;
  if (stub !== candidate) delete out.metadata.name;
  return out;
}

/** Freezes obj and everything in it (what is frozen already is skipped: shared parts of an older
 *  object, which are frozen to the bottom). */
function deepFreeze<T>(obj: T): T {
  if (obj === null || typeof obj !== 'object' || Object.isFrozen(obj)) return obj;
  for (const v of Object.values(obj)) deepFreeze(v);
  return Object.freeze(obj);
}

const key = (kind: string, ns: string, name: string) => `${kind}\u0000${ns}\u0000${name}`;
/** Kubernetes' generateName alphabet: no vowels (no words), no look-alikes. */
const SUFFIX = 'bcdfghjklmnpqrstvwxz2456789';

export interface StoredEvent {
  namespace: string;
  kind: string;
  name: string;
  uid: string;
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
  count: number;
  firstTimestamp: string;
  lastTimestamp: string;
}

export interface WorkloadRow {
  namespace: string;
  name: string;
  uid: string;
  containerId?: string;
}

export class SqliteStore implements WatchableStore {
  private readonly db: Database.Database;
  private readonly objects = new Map<string, AnyHub>();
  private readonly emitter = new EventEmitter().setMaxListeners(0); // one per watch request and waiter
  private rv: number;
  private readonly stmts;
  private readonly walFile: string;
  private walFd: number | undefined;
  /** Of the rows this connection changed (SQLite's total_changes()), how many flush() made durable. */
  private durable = 0;
  private syncing: Promise<void> | undefined;
  /** fdatasyncs of the WAL flush() has made. */
  walSyncs = 0;

  constructor(file: string) {
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.walFile = `${file}-wal`;
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS objects (
        kind TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL, uid TEXT NOT NULL,
        resource_version INTEGER NOT NULL, json TEXT NOT NULL, PRIMARY KEY (kind, namespace, name));
      CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS events (
        id INTEGER PRIMARY KEY AUTOINCREMENT, namespace TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL, uid TEXT NOT NULL,
        type TEXT NOT NULL, reason TEXT NOT NULL, message TEXT NOT NULL, count INTEGER NOT NULL,
        first_timestamp TEXT NOT NULL, last_timestamp TEXT NOT NULL);
      CREATE INDEX IF NOT EXISTS events_by_object ON events (uid);
      CREATE TABLE IF NOT EXISTS workloads (
        namespace TEXT NOT NULL, name TEXT NOT NULL, uid TEXT NOT NULL, container_id TEXT, PRIMARY KEY (namespace, name));
    `);
    this.stmts = {
      upsert: this.db.prepare(
        'INSERT INTO objects (kind, namespace, name, uid, resource_version, json) ' +
          'VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (kind, namespace, name) DO UPDATE SET ' +
          'uid = excluded.uid, resource_version = excluded.resource_version, json = excluded.json',
      ),
      remove: this.db.prepare('DELETE FROM objects WHERE kind = ? AND namespace = ? AND name = ?'),
      setRv: this.db.prepare(
        "INSERT INTO meta (key, value) VALUES ('resourceVersion', ?) " +
          'ON CONFLICT (key) DO UPDATE SET value = excluded.value',
      ),
      lastEvent: this.db.prepare(
        'SELECT id, count FROM events WHERE uid = ? AND reason = ? AND message = ? ORDER BY id DESC LIMIT 1',
      ),
      bumpEvent: this.db.prepare('UPDATE events SET count = count + 1, last_timestamp = ? WHERE id = ?'),
      addEvent: this.db.prepare(
        'INSERT INTO events ' +
          '(namespace, kind, name, uid, type, reason, message, count, first_timestamp, last_timestamp) ' +
          'VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?, ?)',
      ),
      eventsOf: this.db.prepare('SELECT * FROM events WHERE uid = ? ORDER BY id'),
      putWorkload: this.db.prepare(
        'INSERT INTO workloads (namespace, name, uid, container_id) VALUES (?, ?, ?, ?) ' +
          'ON CONFLICT (namespace, name) DO UPDATE SET uid = excluded.uid, container_id = excluded.container_id',
      ),
      deleteWorkload: this.db.prepare('DELETE FROM workloads WHERE namespace = ? AND name = ?'),
      workloads: this.db.prepare('SELECT namespace, name, uid, container_id AS containerId FROM workloads'),
      totalChanges: this.db.prepare('SELECT total_changes()').pluck(),
      trimEvents: this.db.prepare('DELETE FROM events WHERE id <= (SELECT MAX(id) FROM events) - ?'),
    };
    for (const row of this.db.prepare('SELECT json FROM objects').all() as Array<{ json: string }>) {
      const obj = deepFreeze(JSON.parse(row.json) as AnyHub);
      this.objects.set(key(obj.kind, obj.metadata.namespace, obj.metadata.name!), obj);
    }
    const rv = this.db.prepare("SELECT value FROM meta WHERE key = 'resourceVersion'").get() as
      { value: string } | undefined;
    this.rv = Number(rv?.value ?? 0);
  }

  close(): void {
    // SQLite's close checkpoints the WAL into the database and syncs it: nothing left to flush.
    this.db.close();
    if (this.walFd !== undefined) closeSync(this.walFd);
    this.walFd = undefined;
  }

  /**
   * Resolves once everything committed before the call is on the disk (an fdatasync of the WAL,
   * which is what synchronous=FULL does at each commit). Callers at the same moment share one.
   */
  async flush(): Promise<void> {
    if (!this.db.open) return;
    const want = this.changes();
    while (this.durable < want && this.db.open) {
      this.syncing ??= this.syncWal().finally(() => (this.syncing = undefined));
      await this.syncing;
    }
  }

  private changes(): number {
    return this.stmts.totalChanges.get() as number;
  }

  private async syncWal(): Promise<void> {
    const upTo = this.changes();
    // The WAL exists from the first commit on and stays (reset in place, not replaced) while the
    // database is open.
    this.walFd ??= openSync(this.walFile, 'r');
    await new Promise<void>((resolve, reject) => fdatasync(this.walFd!, (err) => (err ? reject(err) : resolve())));
    this.walSyncs++;
    this.durable = Math.max(this.durable, upTo);
  }

  watch(fn: (ev: WatchEvent) => void): () => void {
    this.emitter.on('event', fn);
    return () => this.emitter.off('event', fn);
  }

  /** A copy the caller may change; with `cached`, the stored object itself, frozen. */
  async get<K extends KindName>(
    kind: K,
    namespace: string,
    name: string,
    opts: GetOptions = {},
  ): Promise<HubKinds[K] | undefined> {
    if (opts.cached) return this.objects.get(key(kind, namespace, name)) as HubKinds[K] | undefined;
    return this.getSync(kind, namespace, name);
  }

  getSync<K extends KindName>(kind: K, namespace: string, name: string): HubKinds[K] | undefined {
    const obj = this.objects.get(key(kind, namespace, name));
    return obj ? (structuredClone(obj) as HubKinds[K]) : undefined;
  }

  async list<K extends KindName>(kind: K, opts: ListOptions = {}): Promise<Array<HubKinds[K]>> {
    return this.listSync(kind, opts);
  }

  /** Copies the caller may change; with `cached`, the stored objects themselves, frozen. */
  listSync<K extends KindName>(kind: K, opts: ListOptions = {}): Array<HubKinds[K]> {
    const out: Array<HubKinds[K]> = [];
    for (const obj of this.objects.values()) {
      if (obj.kind !== kind) continue;
      if (opts.namespace !== undefined && obj.metadata.namespace !== opts.namespace) continue;
      if (opts.labels && !Object.entries(opts.labels).every(([k, v]) => obj.metadata.labels?.[k] === v)) continue;
      out.push((opts.cached ? obj : structuredClone(obj)) as HubKinds[K]);
    }
    // Oldest first, as the API server lists; the name breaks ties within a second.
    const created = (o: AnyHub) => o.metadata.creationTimestamp ?? '';
    return out.sort((a, b) => created(a).localeCompare(created(b)) || a.metadata.name!.localeCompare(b.metadata.name!));
  }

  async create<T extends AnyHub>(input: T): Promise<T> {
    const obj = admit(input);
    const md = obj.metadata;
    if (!md.name) {
      if (!md.generateName) throw new Error('metadata.name or metadata.generateName is required');
      // Retry on the rare collision, as the API server's generator does.
      for (let i = 0; i < 8 && (!md.name || this.objects.has(key(obj.kind, md.namespace, md.name))); i++) {
        md.name = md.generateName + Array.from({ length: 5 }, () => SUFFIX[randomInt(SUFFIX.length)]).join('');
      }
    }
    this.checkOwners(obj);
    if (this.objects.has(key(obj.kind, md.namespace, md.name!))) {
      throw new AlreadyExistsError(`${obj.kind} "${md.name}" already exists in namespace "${md.namespace}"`);
    }
    md.uid = randomUUID();
    md.generation = 1;
    md.creationTimestamp = rfc3339(new Date());
    delete md.deletionTimestamp;
    delete md.managedFields;
    delete md.selfLink;
    // The status subresource: status is not set by create (the controller writes it).
    delete (obj as { status?: unknown }).status;
    this.write(obj);
    this.emit({ type: 'ADDED', object: obj });
    return structuredClone(obj);
  }

  async update<T extends AnyHub>(input: T): Promise<T> {
    const cur = this.current(input);
    const obj = admit(input);
    const broken = updateViolations(obj.kind, cur, obj);
    if (broken.length)
      throw new EngineError(
        'Invalid',
        `invalid ${obj.kind}: ${broken.map((b) => `${b.field}: ${b.message}`).join('; ')}`,
        broken,
      );
    // Identity and server-set fields are the server's; status goes through updateStatus.
    const { uid, creationTimestamp, generation } = cur.metadata;
    obj.metadata = { ...obj.metadata, uid, creationTimestamp, generation };
    (obj as { status?: unknown }).status = cur.status;
    this.checkOwners(obj);
    if (!isDeepStrictEqual(obj.spec, cur.spec)) obj.metadata.generation = (cur.metadata.generation ?? 1) + 1;
    if (isDeepStrictEqual(obj, cur)) return structuredClone(cur) as T;
    this.write(obj);
    this.emit({ type: 'MODIFIED', object: obj, old: cur });
    return structuredClone(obj);
  }

  async updateStatus<T extends AnyHub>(input: T): Promise<T> {
    const cur = this.current(input);
    // A new object sharing the old one's frozen spec; write() sets its metadata's resourceVersion.
    const obj = { ...cur, metadata: { ...cur.metadata }, status: structuredClone(input.status) } as T;
    if (isDeepStrictEqual(obj, cur)) return structuredClone(cur) as T;
    this.write(obj);
    this.emit({ type: 'MODIFIED', object: obj, old: cur });
    return structuredClone(obj);
  }

  async delete(kind: KindName, namespace: string, name: string, opts: DeleteOptions = {}): Promise<boolean> {
    const obj = this.objects.get(key(kind, namespace, name));
    if (!obj) return false;
    if (opts.uid && obj.metadata.uid !== opts.uid)
      throw new ConflictError(`${kind} "${name}" was replaced (uid precondition failed)`);
    // The object and everything it controls, transitively, go in one transaction.
    const doomed: AnyHub[] = [];
    const collect = (o: AnyHub) => {
      doomed.push(o);
      for (const dep of this.objects.values()) {
        const owned = dep.metadata.ownerReferences?.some((r) => r.uid === o.metadata.uid);
        if (owned && !doomed.includes(dep)) collect(dep);
      }
    };
    collect(obj);
    // Dependents first (foreground order), so a watcher never sees an orphan.
    doomed.reverse();
    this.db.transaction(() => {
      for (const o of doomed) this.stmts.remove.run(o.kind, o.metadata.namespace, o.metadata.name!);
      this.stmts.setRv.run(String(++this.rv));
    })();
    for (const o of doomed) {
      this.objects.delete(key(o.kind, o.metadata.namespace, o.metadata.name!));
      this.emit({ type: 'DELETED', object: o });
    }
    return true;
  }

  /** Events (events.k8s.io style, deduplicated with a count), kept durably and bounded. */
  recordEvent(obj: AnyHub, type: 'Normal' | 'Warning', reason: string, message: string): void {
    const now = rfc3339(new Date());
    const last = this.stmts.lastEvent.get(obj.metadata.uid, reason, message) as { id: number } | undefined;
    if (last) this.stmts.bumpEvent.run(now, last.id);
    else
      this.stmts.addEvent.run(
        obj.metadata.namespace,
        obj.kind,
        obj.metadata.name,
        obj.metadata.uid,
        type,
        reason,
        message,
        now,
        now,
      );
    if (Math.random() < 0.01) this.stmts.trimEvents.run(10_000);
  }

  eventsOf(uid: string): StoredEvent[] {
    return (this.stmts.eventsOf.all(uid) as Array<Record<string, unknown>>).map((r) => ({
      namespace: r.namespace as string,
      kind: r.kind as string,
      name: r.name as string,
      uid: r.uid as string,
      type: r.type as 'Normal',
      reason: r.reason as string,
      message: r.message as string,
      count: r.count as number,
      firstTimestamp: r.first_timestamp as string,
      lastTimestamp: r.last_timestamp as string,
    }));
  }

  // ---- the local substrate's own records: which container runs which Sandbox ----

  /** Written before a container starts, so a crash leaves no container the next engine cannot name. */
  putWorkload(row: WorkloadRow): void {
    this.stmts.putWorkload.run(row.namespace, row.name, row.uid, row.containerId ?? null);
  }
  deleteWorkload(namespace: string, name: string): void {
    this.stmts.deleteWorkload.run(namespace, name);
  }
  workloads(): WorkloadRow[] {
    const rows = this.stmts.workloads.all() as Array<WorkloadRow & { containerId: string | null }>;
    return rows.map((r) => ({ ...r, containerId: r.containerId ?? undefined }));
  }

  /**
   * An owner that no longer exists: the garbage collector would delete such an object at once,
   * so the write is refused instead. This closes the race of a reconcile that read its claim
   * just before the claim was deleted and would otherwise adopt a sandbox for nobody.
   */
  private checkOwners(obj: AnyHub): void {
    for (const ref of obj.metadata.ownerReferences ?? []) {
      const owner = [...this.objects.values()].find((o) => o.metadata.uid === ref.uid);
      if (!owner) {
        const name = obj.metadata.name ?? obj.metadata.generateName;
        throw new NotFoundError(`${obj.kind} "${name}": its owner ${ref.kind} "${ref.name}" no longer exists`);
      }
    }
  }

  private current(input: AnyHub): AnyHub {
    const cur = this.objects.get(key(input.kind, input.metadata.namespace, input.metadata.name ?? ''));
    if (!cur)
      throw new NotFoundError(
        `${input.kind} "${input.metadata.name}" not found in namespace "${input.metadata.namespace}"`,
      );
    if (
      input.metadata.resourceVersion !== undefined &&
      input.metadata.resourceVersion !== cur.metadata.resourceVersion
    ) {
      const { kind, metadata } = input;
      const versions = `resourceVersion ${metadata.resourceVersion} is not the latest, ${cur.metadata.resourceVersion}`;
      throw new ConflictError(`${kind} "${metadata.name}" was modified (${versions}); read it again and retry`);
    }
    return cur;
  }

  /** Durable before it is visible: the row is committed (and fsynced) before the cache changes. */
  private write(obj: AnyHub): void {
    const md = obj.metadata;
    const rv = this.rv + 1;
    md.resourceVersion = String(rv);
    this.db.transaction(() => {
      this.stmts.upsert.run(obj.kind, md.namespace, md.name, md.uid, rv, JSON.stringify(obj));
      this.stmts.setRv.run(String(rv));
    })();
    this.rv = rv;
    this.objects.set(key(obj.kind, md.namespace, md.name!), deepFreeze(obj));
  }

  /** Watchers get the stored objects, frozen: one event costs no copy, whoever listens. */
  private emit(ev: WatchEvent): void {
    this.emitter.emit('event', ev);
  }
}
