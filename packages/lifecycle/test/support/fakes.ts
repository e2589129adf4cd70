// Fakes for the reconcilers' unit tests (pure logic only): an in-memory store with the API
// server's semantics the reconcilers rely on, workloads whose state a test sets, a settable
// clock. The real substrates are proven by the end-to-end suites.
import { EventEmitter } from 'node:events';
import { isDeepStrictEqual } from 'node:util';
import type { Sandbox, SandboxTemplate } from '@asb/api';
import {
  AlreadyExistsError,
  ClaimReconciler,
  ConflictError,
  NotFoundError,
  PoolReconciler,
  RefillPolicy,
  type RefillPolicyOptions,
  type AnyHub,
  type Deps,
  type HubKinds,
  type KindName,
  type ListOptions,
  type WatchEvent,
  type WatchableStore,
  type WorkloadChange,
  type WorkloadState,
  type Workloads,
} from '../../src/index.ts';

const k = (kind: string, ns: string, name: string) => `${kind}/${ns}/${name}`;

export class MemoryStore implements WatchableStore {
  readonly objects = new Map<string, AnyHub>();
  private readonly ee = new EventEmitter();
  private rv = 0;
  private uid = 0;
  private seq = 0;
  writes = 0;
  constructor(private readonly clock: { now(): Date }) {}
  watch(fn: (ev: WatchEvent) => void) {
    this.ee.on('e', fn);
    return () => {
      this.ee.off('e', fn);
    };
  }
  async get<K extends KindName>(kind: K, ns: string, name: string) {
    const o = this.objects.get(k(kind, ns, name));
    return o ? (structuredClone(o) as HubKinds[K]) : undefined;
  }
  async list<K extends KindName>(kind: K, opts: ListOptions = {}) {
    return [...this.objects.values()]
      .filter(
        (o) =>
          o.kind === kind &&
          (opts.namespace === undefined || o.metadata.namespace === opts.namespace) &&
          Object.entries(opts.labels ?? {}).every(([a, b]) => o.metadata.labels?.[a] === b),
      )
      .map((o) => structuredClone(o) as HubKinds[K]);
  }
  async create<T extends AnyHub>(input: T): Promise<T> {
    const o = structuredClone(input);
    if (!o.metadata.name) o.metadata.name = `${o.metadata.generateName}${String(++this.seq).padStart(5, '0')}`;
    if (this.objects.has(k(o.kind, o.metadata.namespace, o.metadata.name)))
      throw new AlreadyExistsError(o.metadata.name);
    Object.assign(o.metadata, {
      uid: `uid-${++this.uid}`,
      generation: 1,
      creationTimestamp: new Date(this.clock.now().getTime() + this.uid).toISOString(),
    });
    delete (o as { status?: unknown }).status;
    return this.put(o, 'ADDED');
  }
  async update<T extends AnyHub>(input: T): Promise<T> {
    const cur = this.check(input);
    const o = { ...structuredClone(input), status: cur.status } as T;
    o.metadata.generation = isDeepStrictEqual(o.spec, cur.spec)
      ? cur.metadata.generation
      : (cur.metadata.generation ?? 1) + 1;
    return this.put(o, 'MODIFIED');
  }
  async updateStatus<T extends AnyHub>(input: T): Promise<T> {
    const cur = this.check(input);
    return this.put({ ...structuredClone(cur), status: structuredClone(input.status) } as T, 'MODIFIED');
  }
  async delete(kind: KindName, ns: string, name: string, opts: { uid?: string } = {}) {
    const o = this.objects.get(k(kind, ns, name));
    if (!o) return false;
    if (opts.uid && opts.uid !== o.metadata.uid) throw new ConflictError('uid');
    this.objects.delete(k(kind, ns, name));
    this.ee.emit('e', { type: 'DELETED', object: o });
    for (const dep of [...this.objects.values()]) {
      if (dep.metadata.ownerReferences?.some((r) => r.uid === o.metadata.uid))
        await this.delete(dep.kind, dep.metadata.namespace, dep.metadata.name!);
    }
    return true;
  }
  private check(input: AnyHub): AnyHub {
    const cur = this.objects.get(k(input.kind, input.metadata.namespace, input.metadata.name!));
    if (!cur) throw new NotFoundError(input.metadata.name);
    if (input.metadata.resourceVersion !== cur.metadata.resourceVersion) throw new ConflictError(input.metadata.name);
    return cur;
  }
  private put<T extends AnyHub>(o: T, type: WatchEvent['type']): T {
    for (const ref of o.metadata.ownerReferences ?? []) {
      if (![...this.objects.values()].some((x) => x.metadata.uid === ref.uid))
        throw new NotFoundError(`owner ${ref.name} gone`);
    }
    const old = this.objects.get(k(o.kind, o.metadata.namespace, o.metadata.name!));
    o.metadata.resourceVersion = String(++this.rv);
    this.writes++;
    this.objects.set(k(o.kind, o.metadata.namespace, o.metadata.name!), o);
    this.ee.emit('e', { type, object: structuredClone(o), ...(old ? { old: structuredClone(old) } : {}) });
    return structuredClone(o);
  }
}

/** Workloads whose state the test decides: `ready` says what ensure() reports by default. */
export class FakeWorkloads implements Workloads {
  readonly running = new Map<string, WorkloadState>();
  readonly released: string[] = [];
  readonly stopped: string[] = [];
  ready = true;
  private fns: Array<(ns: string, name: string, change?: WorkloadChange) => void> = [];
  async ensure(sb: Sandbox) {
    const key = `${sb.metadata.namespace}/${sb.metadata.name}`;
    if (!this.running.has(key))
      this.running.set(
        key,
        this.ready
          ? { phase: 'Running', ready: true, message: 'Pod is Ready', podIPs: [] }
          : { phase: 'Pending', ready: false, message: 'Pod exists with phase: Pending', podIPs: [] },
      );
    return this.running.get(key)!;
  }
  async stop(sb: Sandbox) {
    const key = `${sb.metadata.namespace}/${sb.metadata.name}`;
    this.running.delete(key);
    this.stopped.push(key);
    return { stage: 'gone' as const };
  }
  async release(ns: string, name: string) {
    this.running.delete(`${ns}/${name}`);
    this.released.push(`${ns}/${name}`);
  }
  onChange(fn: (ns: string, name: string, change?: WorkloadChange) => void) {
    this.fns.push(fn);
  }
  set(ns: string, name: string, state: WorkloadState, change?: WorkloadChange) {
    this.running.set(`${ns}/${name}`, state);
    for (const f of this.fns) f(ns, name, change);
  }
}

export class FakeClock {
  t = Date.parse('2026-11-24T12:00:00Z');
  now() {
    return new Date(this.t);
  }
  advance(ms: number) {
    this.t += ms;
  }
}

/**
 * The substrate fakes, and the pool and claim reconcilers of one controller over them.
 * `refill`: the controller's refill policy; `claimsQueued`: whether its claim queue is non-empty.
 * The claim stream's clock (`stream`, for claims first) is set by the test, apart from `clock`.
 */
export function fakeDeps(refill: RefillPolicyOptions = {}, claimsQueued: () => boolean = () => false) {
  const clock = new FakeClock();
  const events: string[] = [];
  const deps: Deps & { store: MemoryStore; workloads: FakeWorkloads; clock: FakeClock } = {
    store: new MemoryStore(clock),
    workloads: new FakeWorkloads(),
    clock,
    recorder: {
      event: (o, _t, reason, msg) => {
        events.push(`${o.metadata.name} ${reason}: ${msg}`);
      },
    },
  };
  const stream = { t: 0 };
  const policy = new RefillPolicy(
    refill,
    {
      get length() {
        return claimsQueued() ? 1 : 0;
      },
    },
    () => stream.t,
  );
  const pools = new PoolReconciler(deps, policy);
  const claims = new ClaimReconciler(deps);
  return {
    ...deps,
    events,
    refill: policy,
    stream,
    reconcilePool: (ns: string, name: string) => pools.reconcile(ns, name),
    reconcileClaim: (ns: string, name: string) => claims.reconcile(ns, name),
  };
}

export function template(name = 'tpl', image = 'python:3.13-slim'): SandboxTemplate {
  return {
    apiVersion: 'extensions.agents.x-k8s.io/v1beta1',
    kind: 'SandboxTemplate',
    metadata: { name, namespace: 'default' },
    spec: {
      podTemplate: { spec: { containers: [{ name: 'main', image }] } },
      networkPolicyManagement: 'Managed',
      envVarsInjectionPolicy: 'Disallowed',
      volumeClaimTemplatesPolicy: 'Disallowed',
    },
  };
}
