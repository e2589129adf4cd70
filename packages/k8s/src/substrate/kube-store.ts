// The lifecycle's object store on a Kubernetes API server: the four kinds as custom objects,
// read and written in v1beta1 (the storage version) and converted to and from the hub that the
// reconcilers work on (packages/api/src/convert.ts), with the API server's own optimistic
// concurrency, generateName, and garbage collection. Changes arrive through informers.
import { isDeepStrictEqual } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import { mapKubeApiError, type KubeApiFailure, type KubeErrorTable } from '@asb/kube';
import { retryTransient } from './transient.ts';
import { KINDS, fromHub, toHub, validateObject, withoutManagedFields, type AnyObject } from '@asb/api';
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
  type WatchEvent,
  type WatchableStore,
} from '@asb/lifecycle';

const VERSION = 'v1beta1';
const KIND_LIST: KindName[] = ['Sandbox', 'SandboxTemplate', 'SandboxClaim', 'SandboxWarmPool'];

/** The API server's errors as the store's: Conflict, AlreadyExists, NotFound; others as they are. */
const STORE_ERRORS = {
  NotFound: (what, f) => new NotFoundError(`${what}: ${f.message}`),
  AlreadyExists: (what, f) => new AlreadyExistsError(`${what}: ${f.message}`),
  Conflict: (what, f) => new ConflictError(`${what}: ${f.message}`),
  Forbidden: other,
  Invalid: other,
  Unreachable: other,
  Other: other,
} satisfies KubeErrorTable<Error>;
function other(what: string, f: KubeApiFailure): Error {
  return new Error(`${what}: ${f.code ? `HTTP ${f.code}: ` : ''}${f.message}`);
}

export function mapApiError(err: unknown, what: string): Error {
  return mapKubeApiError(err, what, STORE_ERRORS);
}

/** A served object from the API server → the hub (defaults applied, then converted). */
export function hubFromServed(raw: unknown): AnyHub {
  const v = validateObject(withoutManagedFields(raw));
  // The API server validated it against the CRD; our schema is the same contract. An object
  // that fails ours anyway is reported, not silently dropped.
  if (!v.ok)
    throw new Error(
      `object from the API server does not validate: ${v.errors.map((e) => `${e.path}: ${e.message}`).join('; ')}`,
    );
  return toHub(v.object);
}

export class KubeStore implements WatchableStore {
  private readonly api: k8s.CustomObjectsApi;
  private readonly listeners = new Set<(ev: WatchEvent) => void>();
  /** The last version of each object seen by the informers: the `old` of a MODIFIED event. */
  private readonly seen = new Map<string, AnyHub>();
  /**
   * What reads are served from: the informers' objects, or this process's own writes when those
   * are newer (write-through). The informer delivers a write a moment after it returns; a
   * reconcile in that moment would otherwise start from the version before it and fail with a
   * conflict (1.8 per Sandbox in a 300-claim burst, each one a wasted write and a retry).
   */
  private readonly latest = new KindIndex();
  private informers: Array<k8s.Informer<k8s.KubernetesObject>> = [];

  constructor(
    private readonly kc: k8s.KubeConfig,
    private readonly opts: { fieldManager?: string } = {},
  ) {
    this.api = kc.makeApiClient(k8s.CustomObjectsApi);
  }

  private coords(kind: KindName) {
    const info = KINDS[kind];
    return { group: info.group, version: VERSION, plural: info.plural };
  }

  /**
   * From the informers' cache when it holds the object (as controller-runtime's client reads):
   * it may lag the last write, and a write based on it then fails with a conflict and is retried.
   * A miss asks the API server, so that an object created a moment ago is not taken for absent.
   */
  async get<K extends KindName>(
    kind: K,
    namespace: string,
    name: string,
    opts: GetOptions = {},
  ): Promise<HubKinds[K] | undefined> {
    const cached = this.informers.length ? this.latest.get(kind, namespace, name) : undefined;
    if (cached) return structuredClone(cached) as HubKinds[K];
    if (opts.cached && this.informers.length) return undefined;
    try {
      const obj: unknown = await this.api.getNamespacedCustomObject({ ...this.coords(kind), namespace, name });
      return hubFromServed(obj) as HubKinds[K];
    } catch (err) {
      if ((err as { code?: number }).code === 404) return undefined;
      throw mapApiError(err, `get ${kind} ${namespace}/${name}`);
    }
  }

  async list<K extends KindName>(kind: K, opts: ListOptions = {}): Promise<Array<HubKinds[K]>> {
    // From the informers' cache: no API call, and no JSON of every match to parse (a claim burst
    // on a pool of 1,000 would otherwise list the pool once per claim).
    if (opts.cached && this.informers.length) {
      const out: Array<HubKinds[K]> = [];
      for (const o of this.latest.of(kind)) {
        if (opts.namespace && o.metadata.namespace !== opts.namespace) continue;
        if (opts.labels && !Object.entries(opts.labels).every(([k, v]) => o.metadata.labels?.[k] === v)) continue;
        out.push(o as HubKinds[K]);
      }
      return out;
    }
    const labelSelector = opts.labels
      ? Object.entries(opts.labels)
          .map(([k, v]) => `${k}=${v}`)
          .join(',')
      : undefined;
    try {
      const res = (
        opts.namespace
          ? await this.api.listNamespacedCustomObject({
              ...this.coords(kind),
              namespace: opts.namespace,
              labelSelector,
            })
          : await this.api.listClusterCustomObject({ ...this.coords(kind), labelSelector })
      ) as { items: unknown[] };
      return res.items.map(
        (o) => hubFromServed({ apiVersion: `${KINDS[kind].group}/${VERSION}`, kind, ...(o as object) }) as HubKinds[K],
      );
    } catch (err) {
      throw mapApiError(err, `list ${kind}`);
    }
  }

  async create<T extends AnyHub>(obj: T): Promise<T> {
    const body = fromHub(obj as never, VERSION) as AnyObject;
    try {
      const created: unknown = await this.api.createNamespacedCustomObject({
        ...this.coords(obj.kind),
        namespace: obj.metadata.namespace,
        body,
        fieldManager: this.opts.fieldManager,
      });
      return this.wrote(hubFromServed(created) as T);
    } catch (err) {
      throw mapApiError(
        err,
        `create ${obj.kind} ${obj.metadata.namespace}/${obj.metadata.name ?? obj.metadata.generateName}`,
      );
    }
  }

  async update<T extends AnyHub>(obj: T): Promise<T> {
    const body = fromHub(obj as never, VERSION) as AnyObject;
    try {
      const updated: unknown = await this.api.replaceNamespacedCustomObject({
        ...this.coords(obj.kind),
        namespace: obj.metadata.namespace,
        name: obj.metadata.name!,
        body,
        fieldManager: this.opts.fieldManager,
      });
      return this.wrote(hubFromServed(updated) as T);
    } catch (err) {
      throw mapApiError(err, `update ${obj.kind} ${obj.metadata.namespace}/${obj.metadata.name}`);
    }
  }

  async updateStatus<T extends AnyHub>(obj: T): Promise<T> {
    const body = fromHub(obj as never, VERSION) as AnyObject;
    // The hub's status has fields v1beta1 cannot store (Sandbox status.replicas): a status that
    // differs from the cached one only there is the same stored object, and the API server would
    // answer a no-op. Not sending it saves a request per reconcile (it was 11 per Sandbox).
    const cached = this.latest.get(obj.kind, obj.metadata.namespace, obj.metadata.name);
    if (
      cached &&
      cached.metadata.resourceVersion === obj.metadata.resourceVersion &&
      isDeepStrictEqual((fromHub(cached as never, VERSION) as AnyObject).status ?? {}, body.status ?? {})
    )
      return structuredClone(cached) as T;
    try {
      const updated: unknown = await this.api.replaceNamespacedCustomObjectStatus({
        ...this.coords(obj.kind),
        namespace: obj.metadata.namespace,
        name: obj.metadata.name!,
        body,
        fieldManager: this.opts.fieldManager,
      });
      return this.wrote(hubFromServed(updated) as T);
    } catch (err) {
      throw mapApiError(err, `update status of ${obj.kind} ${obj.metadata.namespace}/${obj.metadata.name}`);
    }
  }

  async delete(kind: KindName, namespace: string, name: string, opts: DeleteOptions = {}): Promise<boolean> {
    try {
      await this.api.deleteNamespacedCustomObject({
        ...this.coords(kind),
        namespace,
        name,
        body: {
          apiVersion: 'v1',
          kind: 'DeleteOptions',
          propagationPolicy: opts.propagation ?? 'Background',
          ...(opts.uid ? { preconditions: { uid: opts.uid } } : {}),
        },
      });
      return true;
    } catch (err) {
      const code = (err as { code?: number }).code;
      if (code === 404) return false;
      // A uid precondition that no longer holds: the object of that name is another one.
      if (code === 409 && opts.uid) return false;
      throw mapApiError(err, `delete ${kind} ${namespace}/${name}`);
    }
  }

  /**
   * Keeps a successful write for reads until the informer shows it (or something newer). Only
   * for objects the informer already holds: a created one it has not seen could be deleted
   * before it does, and would then linger here (reads of those ask the API server instead).
   */
  private wrote<T extends AnyHub>(obj: T): T {
    const current = this.latest.get(obj.kind, obj.metadata.namespace, obj.metadata.name);
    if (current && isNewer(obj, current)) this.latest.set(structuredClone(obj));
    return obj;
  }

  watch(fn: (ev: WatchEvent) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Starts one informer per kind; resolves when each has listed once. */
  async start(): Promise<void> {
    for (const kind of KIND_LIST) {
      const { group, plural } = KINDS[kind];
      const informer = k8s.makeInformer(
        this.kc,
        `/apis/${group}/${VERSION}/${plural}`,
        () => this.api.listClusterCustomObject({ group, version: VERSION, plural }) as never,
      );
      const emit = (type: WatchEvent['type']) => (raw: k8s.KubernetesObject) => {
        const key = cacheKey(kind, raw.metadata?.namespace, raw.metadata?.name);
        const mine = this.latest.get(kind, raw.metadata?.namespace, raw.metadata?.name);
        let object: AnyHub;
        // Our own write coming back was parsed and checked when its response came.
        if (
          mine &&
          mine.metadata.uid === raw.metadata?.uid &&
          mine.metadata.resourceVersion === raw.metadata?.resourceVersion
        )
          object = mine;
        else
          try {
            object = hubFromServed({ apiVersion: `${group}/${VERSION}`, kind, ...raw });
          } catch {
            return;
          }
        const old = this.seen.get(key);
        if (type === 'DELETED') {
          this.seen.delete(key);
          this.latest.delete(kind, raw.metadata?.namespace, raw.metadata?.name);
        } else {
          this.seen.set(key, object);
          // A write of ours the watch has not delivered yet stays the one reads see.
          if (!mine || !isNewer(mine, object)) this.latest.set(object);
        }
        const ev: WatchEvent = type === 'MODIFIED' && old ? { type, object, old } : { type, object };
        for (const l of this.listeners) l(ev);
      };
      informer.on('add', emit('ADDED'));
      informer.on('update', emit('MODIFIED'));
      informer.on('delete', emit('DELETED'));
      // The informer stops on a watch error; it is restarted after a moment (a relist).
      informer.on('error', () => setTimeout(() => void informer.start().catch(() => undefined), 1000));
      // Its first list may meet an API server still setting up the CRDs just applied (429).
      await retryTransient(() => informer.start());
      this.informers.push(informer);
    }
  }

  async stop(): Promise<void> {
    await Promise.all(this.informers.map((i) => i.stop().catch(() => undefined)));
    this.informers = [];
  }
}

/** Objects by kind, then "namespace/name": a list of one kind does not walk the others. */
class KindIndex {
  private readonly byKind = new Map<string, Map<string, AnyHub>>();
  get(kind: string, namespace: string | undefined, name: string | undefined): AnyHub | undefined {
    return this.byKind.get(kind)?.get(`${namespace}/${name}`);
  }
  set(obj: AnyHub): void {
    let m = this.byKind.get(obj.kind);
    if (!m) this.byKind.set(obj.kind, (m = new Map<string, AnyHub>()));
    m.set(`${obj.metadata.namespace}/${obj.metadata.name}`, obj);
  }
  delete(kind: string, namespace: string | undefined, name: string | undefined): void {
    this.byKind.get(kind)?.delete(`${namespace}/${name}`);
  }
  of(kind: string): Iterable<AnyHub> {
    return this.byKind.get(kind)?.values() ?? [];
  }
}

const cacheKey = (kind: string, namespace: string | undefined, name: string | undefined) =>
  `${kind}/${namespace}/${name}`;

/**
 * Whether `a` is a later version of the same object than `b`. Resource versions are opaque to
 * clients, but every API server on etcd hands out its revision, a number: only those are
 * compared, and anything else counts as not newer (reads then wait for the informer, as before).
 */
function isNewer(a: AnyHub, b: AnyHub): boolean {
  const ra = a.metadata.resourceVersion,
    rb = b.metadata.resourceVersion;
  if (a.metadata.uid !== b.metadata.uid || !ra || !rb || !/^\d+$/.test(ra) || !/^\d+$/.test(rb)) return false;
  return BigInt(ra) > BigInt(rb);
}
