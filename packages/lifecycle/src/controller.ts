// Runs the reconcilers: one work queue per kind, fed by the store's watch and the workloads'
// change notices. At start every object is queued once, which is also how expiry timers come
// back after a restart (each reconcile asks to be requeued at its object's expiry).
import { isDeepStrictEqual } from 'node:util';
import type { Logger } from 'pino';
import { LABEL_WARM_POOL_SANDBOX, nameHash } from '@asb/api';
import { ClaimReconciler } from './claim-reconciler.ts';
import { keyOf, splitKey, controllerOf } from './objects.ts';
import { PoolReconciler } from './pool-reconciler.ts';
import { RefillPolicy, type RefillPolicyOptions } from './refill-policy.ts';
import { reconcileSandbox } from './sandbox-reconciler.ts';
import { isNotFound, type AnyHub, type Deps, type WatchableStore, type WatchEvent } from './substrate.ts';
import { WorkQueue } from './queue.ts';

export interface ControllerOptions {
  /** Keys reconciled at once per kind (distinct keys only; one key is never run twice at once). */
  sandboxWorkers?: number;
  claimWorkers?: number;
  poolWorkers?: number;
  log?: Pick<Logger, 'warn' | 'debug'>;
  /**
   * Reconcile a Sandbox this long after its workload changes, so that changes in quick
   * succession (a Pod created, bound, started) make one status write, not one each. A change
   * the workloads call settled (Ready, ended, gone) is reconciled at once.
   * @default 0 (at once)
   */
  workloadChangeDelayMs?: number;
  /** Warm pools' refills: upstream v0.5's shaping, and claims first. @default none (immediately, unpaced) */
  refill?: RefillPolicyOptions;
  /** For status.serviceFQDN. @default "cluster.local" */
  clusterDomain?: string;
  /** Claims get agents.x-k8s.io/controller-first-observed-at when first seen (upstream's; one more
   *  write per claim). @default false here; the Kubernetes controller turns it on, as upstream */
  claimObservedAtAnnotation?: boolean;
  /** Pool members' pods get cluster-autoscaler.kubernetes.io/safe-to-evict "true" (upstream's
   *  --enable-warm-pool-eviction). @default false here; the Kubernetes controller turns it on */
  warmPoolEviction?: boolean;
  /** A pool member not Ready in this long is replaced, or held if its pod is unschedulable
   *  (upstream's --sandbox-warm-pool-readiness-grace-period). @default 5 minutes */
  warmPoolReadinessGracePeriodMs?: number;
  /** A pool holding unschedulable members looks again this often. @default 1 minute */
  warmPoolUnschedulableRecheckMs?: number;
  /**
   * Reconcile a pool at most this long after one of its members changes, so that the changes of
   * many members make one pass (each pass reads every member: a pool of 1,000 filling, each
   * member created, bound and made ready, would otherwise make thousands). A change of the pool
   * itself is reconciled at once.
   * @default 0 (at once)
   */
  poolMemberChangeDelayMs?: number;
}

export class LifecycleController {
  readonly sandboxes: WorkQueue;
  readonly claims: WorkQueue;
  readonly pools: WorkQueue;
  private unwatch?: () => void;
  private readonly workloadChangeDelayMs: number;
  private readonly poolMemberChangeDelayMs: number;
  /** What waits for claims (refills, adopted Sandboxes' follow-ups), and what that remembers. */
  readonly refill: RefillPolicy;
  /** Looks again, while follow-ups wait for claims to be quiet. */
  private deferTimer?: NodeJS.Timeout;

  private readonly log?: Pick<Logger, 'warn' | 'debug'>;
  private stopped = false;

  constructor(
    private readonly deps: Deps & { store: WatchableStore },
    opts: ControllerOptions = {},
  ) {
    this.log = opts.log;
    const onError = (kind: string) => (key: string, err: unknown) => {
      // Conflicts are routine (two writers); anything else is worth a line.
      if ((err as Error)?.name === 'ConflictError') opts.log?.debug({ kind, key }, 'conflict; retrying');
      else opts.log?.warn({ kind, key, err: (err as Error)?.message ?? String(err) }, 'reconcile failed; retrying');
    };
    type Reconcile = (ns: string, name: string) => Promise<{ requeueAfterMs?: number }>;
    const q = (reconcile: Reconcile, workers: number, kind: string) =>
      new WorkQueue(
        async (key) => {
          const [ns, name] = splitKey(key);
          // An object deleted while it was being reconciled: nothing left to do (its DELETED event
          // queues whatever follows from that).
          try {
            return await reconcile(ns, name);
          } catch (err) {
            if (isNotFound(err)) return {};
            throw err;
          }
        },
        { concurrency: workers, baseBackoffMs: 5, maxBackoffMs: 30_000, onError: onError(kind) },
      );
    const d: Deps = { store: deps.store, workloads: deps.workloads, recorder: deps.recorder, clock: deps.clock };
    const sandboxOpts = { clusterDomain: opts.clusterDomain };
    this.sandboxes = q((ns, name) => reconcileSandbox(d, ns, name, sandboxOpts), opts.sandboxWorkers ?? 32, 'Sandbox');
    const claims = new ClaimReconciler(d, { observedAtAnnotation: opts.claimObservedAtAnnotation });
    this.claims = q((ns, name) => claims.reconcile(ns, name), opts.claimWorkers ?? 16, 'SandboxClaim');
    this.refill = new RefillPolicy(opts.refill, this.claims);
    const pools = new PoolReconciler(d, this.refill, {
      warmPoolEviction: opts.warmPoolEviction,
      readinessGracePeriodMs: opts.warmPoolReadinessGracePeriodMs,
      unschedulableRecheckMs: opts.warmPoolUnschedulableRecheckMs,
    });
    this.pools = q((ns, name) => pools.reconcile(ns, name), opts.poolWorkers ?? 4, 'SandboxWarmPool');
    this.workloadChangeDelayMs = opts.workloadChangeDelayMs ?? 0;
    this.poolMemberChangeDelayMs = opts.poolMemberChangeDelayMs ?? 0;
  }

  async start(): Promise<void> {
    const { store, workloads } = this.deps;
    this.unwatch = store.watch((ev) => this.route(ev));
    // A workload that is Ready (or ended, or gone) is reported at once: nothing it is batched
    // with would follow soon, and its claim waits for it (on a node, a Pod's Ready comes seconds
    // after its other changes, and the delay would only add to every claim's latency).
    workloads.onChange((ns, name, change) => {
      if (change?.settled) this.sandboxes.addNow(keyOf(ns, name));
      else this.sandboxes.addAfter(keyOf(ns, name), this.workloadChangeDelayMs);
    });
    for (const sb of await store.list('Sandbox')) this.sandboxes.add(keyOf(sb.metadata.namespace, sb.metadata.name!));
    for (const c of await store.list('SandboxClaim')) this.claims.add(keyOf(c.metadata.namespace, c.metadata.name!));
    for (const p of await store.list('SandboxWarmPool')) this.pools.add(keyOf(p.metadata.namespace, p.metadata.name!));
  }

  /** Stops reconciling; resolves when the reconciles under way have ended. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.unwatch?.();
    clearInterval(this.deferTimer);
    this.refill.clearFollowUps();
    await Promise.all([this.sandboxes, this.claims, this.pools].map((q) => q.stop()));
  }

  /** Resolves when no reconcile is queued or running (timers for later do not count). */
  async idle(): Promise<void> {
    for (let i = 0; i < 3; i++) {
      await Promise.all([this.sandboxes.idle(), this.claims.idle(), this.pools.idle()]);
      while (this.refill.heldFollowUps) await new Promise((r) => setTimeout(r, 20));
    }
  }

  private route(ev: WatchEvent): void {
    const obj = ev.object;
    const ns = obj.metadata.namespace;
    const key = keyOf(ns, obj.metadata.name!);
    switch (obj.kind) {
      case 'Sandbox': {
        // Its controller (claim or pool) reads its state; on adoption the pool (the old owner)
        // loses a member and must hear of it.
        const owner = controllerOf(obj);
        const oldOwner = ev.old && controllerOf(ev.old);
        if (oldOwner?.kind === 'SandboxWarmPool' && owner?.kind === 'SandboxClaim') this.followUp(key);
        // A change of its status alone (its own reconcile's write, mostly) asks nothing of it.
        else if (!(ev.type === 'MODIFIED' && ev.old && onlyStatusChanged(ev.old, obj))) this.sandboxes.add(key);
        if (owner?.kind === 'SandboxClaim') this.claims.add(keyOf(ns, owner.name));
        if (owner?.kind === 'SandboxWarmPool') this.pools.addAfter(keyOf(ns, owner.name), this.poolMemberChangeDelayMs);
        if (oldOwner?.kind === 'SandboxWarmPool' && oldOwner.uid !== owner?.uid)
          this.pools.addAfter(keyOf(ns, oldOwner.name), this.poolMemberChangeDelayMs);
        const poolHash = obj.metadata.labels?.[LABEL_WARM_POOL_SANDBOX];
        if (poolHash && !controllerOf(obj))
          this.inBackground('find the pools of an orphaned member', () => this.poolsByHash(ns, poolHash));
        break;
      }
      case 'SandboxClaim':
        if (ev.type === 'ADDED') this.refill.claimArrived();
        this.claims.add(key);
        break;
      case 'SandboxWarmPool':
        this.pools.add(key);
        break;
      case 'SandboxTemplate':
        this.inBackground(`follow template ${key}`, () => this.onTemplate(ns, obj.metadata.name!));
        break;
    }
  }

  /** An adopted Sandbox's reconcile: now if claims are quiet, else once they are (or at the latest). */
  private followUp(key: string): void {
    if (!this.refill.holdFollowUp(key)) {
      this.sandboxes.add(key);
      return;
    }
    this.deferTimer ??= setInterval(() => {
      for (const k of this.refill.dueFollowUps()) this.sandboxes.add(k);
      if (!this.refill.heldFollowUps) {
        clearInterval(this.deferTimer);
        this.deferTimer = undefined;
      }
    }, 50).unref();
  }

  /**
   * Work an event starts outside the queues. A failure (the API server busy, or re-initializing
   * its storage after a CRD change: 429) is logged and the work tried again a second later; it
   * must never become an unhandled rejection, which ends the process.
   */
  private inBackground(what: string, fn: () => Promise<void>): void {
    fn().catch((err: unknown) => {
      if (this.stopped) return;
      this.log?.warn({ err: (err as Error)?.message ?? String(err) }, `could not ${what}; trying again in 1 s`);
      setTimeout(() => {
        if (!this.stopped) this.inBackground(what, fn);
      }, 1000).unref();
    });
  }

  /** A template changed: its pools may need members, claims waiting for it may proceed. */
  private async onTemplate(ns: string, name: string): Promise<void> {
    // (From the watch cache: these only decide what to reconcile, and each reconcile reads afresh.)
    for (const p of await this.deps.store.list('SandboxWarmPool', { namespace: ns, cached: true })) {
      if (p.spec.sandboxTemplateRef.name === name) this.pools.add(keyOf(ns, p.metadata.name!));
    }
    for (const c of await this.deps.store.list('SandboxClaim', { namespace: ns, cached: true })) {
      const reason = c.status?.conditions?.find((x) => x.type === 'Ready')?.reason;
      if (reason === 'TemplateNotFound' || reason === 'WarmPoolNotFound') this.claims.add(keyOf(ns, c.metadata.name!));
    }
  }

  private async poolsByHash(ns: string, hash: string): Promise<void> {
    for (const p of await this.deps.store.list('SandboxWarmPool', { namespace: ns, cached: true })) {
      if (nameHash(p.metadata.name!) === hash) this.pools.add(keyOf(ns, p.metadata.name!));
    }
  }
}

/** Same spec (generation) and metadata: what changed, if anything, is the status. */
function onlyStatusChanged(old: AnyHub, now: AnyHub): boolean {
  const a = old.metadata,
    b = now.metadata;
  return (
    a.uid === b.uid &&
    a.generation === b.generation &&
    a.deletionTimestamp === b.deletionTimestamp &&
    isDeepStrictEqual(a.labels, b.labels) &&
    isDeepStrictEqual(a.annotations, b.annotations) &&
    isDeepStrictEqual(a.ownerReferences, b.ownerReferences) &&
    isDeepStrictEqual(a.finalizers, b.finalizers)
  );
}
