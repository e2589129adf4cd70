// Runs the reconcilers: one work queue per kind, fed by the store's watch and the workloads'
// change notices. At start every object is queued once, which is also how expiry timers come
// back after a restart (each reconcile asks to be requeued at its object's expiry).
import type { Logger } from 'pino';
import { LABEL_WARM_POOL_SANDBOX, nameHash } from '@asb/api';
import { reconcileClaim } from './claim-reconciler.ts';
import { keyOf, splitKey, controllerOf } from './objects.ts';
import { reconcilePool } from './pool-reconciler.ts';
import { reconcileSandbox } from './sandbox-reconciler.ts';
import { isNotFound, type Deps, type WatchableStore, type WatchEvent } from './substrate.ts';
import { WorkQueue } from './queue.ts';

export interface ControllerOptions {
  /** Keys reconciled at once per kind (distinct keys only; one key is never run twice at once). */
  sandboxWorkers?: number;
  claimWorkers?: number;
  poolWorkers?: number;
  log?: Pick<Logger, 'warn' | 'debug'>;
}

export class LifecycleController {
  readonly sandboxes: WorkQueue;
  readonly claims: WorkQueue;
  readonly pools: WorkQueue;
  private unwatch?: () => void;

  constructor(private readonly deps: Deps & { store: WatchableStore }, opts: ControllerOptions = {}) {
    const onError = (kind: string) => (key: string, err: unknown) => {
      // Conflicts are routine (two writers); anything else is worth a line.
      if ((err as Error)?.name === 'ConflictError') opts.log?.debug({ kind, key }, 'conflict; retrying');
      else opts.log?.warn({ kind, key, err: (err as Error)?.message ?? String(err) }, 'reconcile failed; retrying');
    };
    const q = (fn: (d: Deps, ns: string, name: string) => Promise<{ requeueAfterMs?: number }>, workers: number, kind: string) =>
      new WorkQueue(async (key) => {
        const [ns, name] = splitKey(key);
        // An object deleted while it was being reconciled: nothing left to do (its DELETED event
        // queues whatever follows from that).
        try { return await fn(deps, ns, name); } catch (err) { if (isNotFound(err)) return {}; throw err; }
      }, { concurrency: workers, baseBackoffMs: 5, maxBackoffMs: 30_000, onError: onError(kind) });
    this.sandboxes = q(reconcileSandbox, opts.sandboxWorkers ?? 32, 'Sandbox');
    this.claims = q(reconcileClaim, opts.claimWorkers ?? 16, 'SandboxClaim');
    this.pools = q(reconcilePool, opts.poolWorkers ?? 4, 'SandboxWarmPool');
  }

  async start(): Promise<void> {
    const { store, workloads } = this.deps;
    this.unwatch = store.watch((ev) => this.route(ev));
    workloads.onChange((ns, name) => this.sandboxes.add(keyOf(ns, name)));
    for (const sb of await store.list('Sandbox')) this.sandboxes.add(keyOf(sb.metadata.namespace, sb.metadata.name!));
    for (const c of await store.list('SandboxClaim')) this.claims.add(keyOf(c.metadata.namespace, c.metadata.name!));
    for (const p of await store.list('SandboxWarmPool')) this.pools.add(keyOf(p.metadata.namespace, p.metadata.name!));
  }

  /** Stops reconciling; resolves when the reconciles under way have ended. */
  async stop(): Promise<void> {
    this.unwatch?.();
    await Promise.all([this.sandboxes, this.claims, this.pools].map((q) => q.stop()));
  }

  /** Resolves when no reconcile is queued or running (timers for later do not count). */
  async idle(): Promise<void> {
    for (let i = 0; i < 3; i++) await Promise.all([this.sandboxes.idle(), this.claims.idle(), this.pools.idle()]);
  }

  private route(ev: WatchEvent): void {
    const obj = ev.object;
    const ns = obj.metadata.namespace;
    const key = keyOf(ns, obj.metadata.name!);
    switch (obj.kind) {
      case 'Sandbox': {
        this.sandboxes.add(key);
        // Its controller (claim or pool) reads its state; on adoption the pool (the old owner)
        // loses a member and must hear of it.
        const owner = controllerOf(obj);
        if (owner?.kind === 'SandboxClaim') this.claims.add(keyOf(ns, owner.name));
        if (owner?.kind === 'SandboxWarmPool') this.pools.add(keyOf(ns, owner.name));
        const oldOwner = ev.old && controllerOf(ev.old);
        if (oldOwner?.kind === 'SandboxWarmPool' && oldOwner.uid !== owner?.uid) this.pools.add(keyOf(ns, oldOwner.name));
        const poolHash = obj.metadata.labels?.[LABEL_WARM_POOL_SANDBOX];
        if (poolHash && !controllerOf(obj)) void this.poolsByHash(ns, poolHash);
        break;
      }
      case 'SandboxClaim': this.claims.add(key); break;
      case 'SandboxWarmPool': this.pools.add(key); break;
      case 'SandboxTemplate': void this.onTemplate(ns, obj.metadata.name!); break;
    }
  }

  /** A template changed: its pools may need members, claims waiting for it may proceed. */
  private async onTemplate(ns: string, name: string): Promise<void> {
    for (const p of await this.deps.store.list('SandboxWarmPool', { namespace: ns })) {
      if (p.spec.sandboxTemplateRef.name === name) this.pools.add(keyOf(ns, p.metadata.name!));
    }
    for (const c of await this.deps.store.list('SandboxClaim', { namespace: ns })) {
      const reason = c.status?.conditions?.find((x) => x.type === 'Ready')?.reason;
      if (reason === 'TemplateNotFound' || reason === 'WarmPoolNotFound') this.claims.add(keyOf(ns, c.metadata.name!));
    }
  }

  private async poolsByHash(ns: string, hash: string): Promise<void> {
    for (const p of await this.deps.store.list('SandboxWarmPool', { namespace: ns })) {
      if (nameHash(p.metadata.name!) === hash) this.pools.add(keyOf(ns, p.metadata.name!));
    }
  }
}
