// SandboxWarmPool reconciler (upstream 2.3): keeps `replicas` unclaimed Sandboxes of the
// template. A claim's adoption takes a member out of the pool (its pool label and owner go), so
// the next pass creates a replacement. Scale-down removes unready members first, then the newest.
// Members made from an older pod template are stale: Recreate deletes them, OnReplenish keeps them
// until claimed. A member not Ready within the readiness grace period is replaced, unless its pod
// cannot be scheduled: a replacement would be as unschedulable (upstream's #1215 delete/create
// loop), so it is held, and the pool says so with a WarmPoolNotProgressing event.
// A pass reads (observePool), decides (decidePool, pure) and writes (applyPool).
import {
  LABEL_WARM_POOL_SANDBOX,
  findCondition,
  nameHash,
  type Sandbox,
  type SandboxTemplate,
  type SandboxWarmPool,
} from '@asb/api';
import { isStaleMember, sandboxForPool } from './blueprint.ts';
import { controllerOf, controllerRef, isDeleting, keyOf, writeStatus } from './objects.ts';
import type { RefillGrant, RefillPolicy } from './refill-policy.ts';
import { isSandboxReady } from './sandbox-reconciler.ts';
import { isAlreadyExists, isConflict, type Deps, type Result } from './substrate.ts';

/** A member that never became ready in this long is replaced (upstream's
 *  --sandbox-warm-pool-readiness-grace-period, default 5m). */
export const UNREADY_REPLACE_MS = 5 * 60_000;
/** A pool holding unschedulable members looks again this often (upstream's
 *  --sandbox-warm-pool-unschedulable-recheck-interval, default 1m). */
export const UNSCHEDULABLE_RECHECK_MS = 60_000;
const EXPECTATION_TTL_MS = 60_000;

/** What a pass sees of a pool. */
export interface PoolObservation {
  pool: SandboxWarmPool;
  template?: SandboxTemplate;
  /** Its members: its label, controlled by it, not being deleted (orphans adopted already). */
  members: Sandbox[];
  /** Members this controller created that the watch cache does not show yet. */
  pendingCreates: number;
}

/** What a pass does to a pool. */
export interface PoolPlan {
  /** Stale (Recreate) or never ready: deleted one after another. */
  replace: Sandbox[];
  /** Beyond `replicas`: deleted together. */
  scaleDown: Sandbox[];
  /** New members to create. */
  create: number;
  status: NonNullable<SandboxWarmPool['status']>;
  requeueAfterMs?: number;
  /** Members past the grace period whose pod cannot be scheduled: held, not replaced. */
  unschedulable: number;
}

/** How long members may take to become ready, and how often a pool stuck on scheduling looks again. */
export interface PoolTimings {
  readinessGracePeriodMs: number;
  unschedulableRecheckMs: number;
}
const DEFAULT_TIMINGS: PoolTimings = {
  readinessGracePeriodMs: UNREADY_REPLACE_MS,
  unschedulableRecheckMs: UNSCHEDULABLE_RECHECK_MS,
};

/** The scheduler said no (the Sandbox mirrors its pod's PodScheduled condition). */
export function isUnschedulable(sb: Sandbox): boolean {
  const c = findCondition(sb.status?.conditions, 'PodScheduled');
  return c?.status === 'False' && c.reason === 'Unschedulable';
}

/**
 * The pool's plan from what it has (pure). `grant` is the refill policy's answer for this pass,
 * asked once, with the member count (those on their way included) after replacements.
 */
export function decidePool(
  o: PoolObservation,
  nowMs: number,
  grant: (current: number, desired: number, want: number) => RefillGrant,
  timings: PoolTimings = DEFAULT_TIMINGS,
): PoolPlan {
  const { pool, template } = o;
  const grace = timings.readinessGracePeriodMs;
  const stale = (sb: Sandbox) => template !== undefined && isStaleMember(sb, template);
  const age = (sb: Sandbox) => nowMs - Date.parse(sb.metadata.creationTimestamp ?? new Date(nowMs).toISOString());
  const replace: Sandbox[] = [];
  let members: Sandbox[] = [];
  let unschedulable = 0;
  for (const sb of o.members) {
    const recreate = pool.spec.updateStrategy?.type === 'Recreate' && stale(sb);
    const overdue = !isSandboxReady(sb) && age(sb) > grace;
    const held = overdue && isUnschedulable(sb);
    if (held && !recreate) unschedulable++;
    (recreate || (overdue && !held) ? replace : members).push(sb);
  }
  const desired = pool.spec.replicas;
  const current = members.length + o.pendingCreates;
  const shaped = grant(current, desired, template ? desired - current : 0);
  let scaleDown: Sandbox[] = [];
  let create = 0;
  if (members.length > desired) {
    // Unready first, then the newest.
    const order = [...members].sort((a, b) => Number(isSandboxReady(a)) - Number(isSandboxReady(b)) || age(a) - age(b));
    scaleDown = order.slice(0, members.length - desired);
    members = members.filter((m) => !scaleDown.includes(m));
  } else if (shaped.allow > 0 && template) create = shaped.allow;

  const status = {
    ...pool.status,
    replicas: members.length + create,
    readyReplicas: members.filter(isSandboxReady).length,
    selector: `${LABEL_WARM_POOL_SANDBOX}=${nameHash(pool.metadata.name!)}`,
    observedGeneration: pool.metadata.generation,
  };
  // A member that is not ready yet is looked at again when it changes (watch); the replacement
  // after the grace period needs a timer (the members made now are not ready, and no age), and so
  // does a member held for the scheduler.
  const waitingAges = [
    ...members.filter((m) => !isSandboxReady(m) && age(m) <= grace).map(age),
    ...(create ? [0] : []),
  ];
  const replaceAt = waitingAges.length ? Math.max(1000, grace - Math.max(...waitingAges)) : undefined;
  const recheck = unschedulable ? timings.unschedulableRecheckMs : undefined;
  const later = [shaped.retryMs, replaceAt, recheck].filter((x) => x !== undefined);
  return {
    replace,
    scaleDown,
    create,
    status,
    unschedulable,
    ...(later.length ? { requeueAfterMs: Math.min(...later) } : {}),
  };
}

/**
 * Members created and not yet seen in the (possibly lagging) watch cache, by pool uid: counted as
 * members until seen, so that a pass right after a burst of creates does not create them again
 * (controller-runtime's "expectations"); forgotten after a minute, in case a create event was lost.
 */
export class CreateExpectations {
  private readonly byOwner = new Map<string, Map<string, number>>();

  /** How many of `owner`'s creates are still unseen, once those `seen` and those expired are dropped. */
  outstanding(owner: string, seen: Iterable<string>, nowMs: number): number {
    const pending = this.byOwner.get(owner);
    if (!pending) return 0;
    for (const name of seen) pending.delete(name);
    for (const [n, until] of pending) if (until < nowMs) pending.delete(n);
    if (!pending.size) this.byOwner.delete(owner);
    return pending.size;
  }

  expect(owner: string, names: string[], untilMs: number): void {
    if (!names.length) return;
    const pending = this.byOwner.get(owner) ?? new Map<string, number>();
    for (const n of names) pending.set(n, untilMs);
    this.byOwner.set(owner, pending);
  }
}

export interface PoolReconcilerOptions {
  /** Members' pods get cluster-autoscaler.kubernetes.io/safe-to-evict "true" (upstream's
   *  --enable-warm-pool-eviction). @default false here; the Kubernetes controller turns it on */
  warmPoolEviction?: boolean;
  /** @default UNREADY_REPLACE_MS */
  readinessGracePeriodMs?: number;
  /** @default UNSCHEDULABLE_RECHECK_MS */
  unschedulableRecheckMs?: number;
}

/** One per controller: it owns what the pools' passes remember (expectations; the refill policy's state). */
export class PoolReconciler {
  private readonly expected = new CreateExpectations();
  /** Pools whose last pass held unschedulable members: an event is sent when this changes. */
  private readonly notProgressing = new Set<string>();
  private readonly timings: PoolTimings;

  constructor(
    private readonly d: Deps,
    private readonly refill: RefillPolicy,
    private readonly opts: PoolReconcilerOptions = {},
  ) {
    this.timings = {
      readinessGracePeriodMs: opts.readinessGracePeriodMs || UNREADY_REPLACE_MS,
      unschedulableRecheckMs: opts.unschedulableRecheckMs || UNSCHEDULABLE_RECHECK_MS,
    };
  }

  async reconcile(namespace: string, name: string): Promise<Result> {
    const now = this.d.clock.now().getTime();
    const seen = await this.observe(namespace, name, now);
    if (!seen) return {};
    const key = keyOf(namespace, name);
    const plan = decidePool(
      seen,
      now,
      (current, desired, want) => this.refill.grant(key, current, desired, want, now),
      this.timings,
    );
    await this.apply(seen, plan, now);
    this.reportProgress(key, seen.pool, plan.unschedulable);
    return plan.requeueAfterMs !== undefined ? { requeueAfterMs: plan.requeueAfterMs } : {};
  }

  /** Undefined: no pool to keep (gone, or being deleted: its members are owned, the store collects them). */
  private async observe(namespace: string, name: string, now: number): Promise<PoolObservation | undefined> {
    const { store } = this.d;
    const pool = await store.get('SandboxWarmPool', namespace, name);
    if (!pool || isDeleting(pool)) {
      this.refill.forget(keyOf(namespace, name));
      this.notProgressing.delete(keyOf(namespace, name));
      return undefined;
    }
    const template = await store.get('SandboxTemplate', namespace, pool.spec.sandboxTemplateRef.name);
    const poolHash = nameHash(name);
    // From the watch cache: a pool of 1,000 is not re-listed from the API server on every change.
    // Every Sandbox of the namespace: a member this process created counts as seen once the cache
    // shows it at all, in the pool or already adopted out of it.
    const all = await store.list('Sandbox', { namespace, cached: true });
    const pendingCreates = this.expected.outstanding(
      pool.metadata.uid!,
      all.map((sb) => sb.metadata.name!),
      now,
    );
    const members: Sandbox[] = [];
    for (const sb of all.filter((x) => x.metadata.labels?.[LABEL_WARM_POOL_SANDBOX] === poolHash)) {
      if (isDeleting(sb)) continue;
      const owner = controllerOf(sb);
      if (owner && owner.uid !== pool.metadata.uid) continue; // someone else's
      if (!owner) {
        // An orphan with our label (its pool was re-created): adopted before it is counted, so
        // that the pass decides on the members it owns.
        const adopted = { ...sb, metadata: { ...sb.metadata, ownerReferences: [controllerRef(pool)] } };
        try {
          members.push(await store.update(adopted));
        } catch (err) {
          if (!isConflict(err)) throw err;
        }
        continue;
      }
      members.push(sb);
    }
    return { pool, ...(template ? { template } : {}), members, pendingCreates };
  }

  /** Upstream's transition events: a Warning when the pool starts holding unschedulable members,
   *  a Normal one when it no longer does; nothing while the state stays. */
  private reportProgress(key: string, pool: SandboxWarmPool, unschedulable: number): void {
    const was = this.notProgressing.has(key);
    if (!!unschedulable === was) return;
    if (unschedulable) {
      this.notProgressing.add(key);
      const grace = formatGoDuration(this.timings.readinessGracePeriodMs);
      this.d.recorder.event(
        pool,
        'Warning',
        'WarmPoolNotProgressing',
        `${unschedulable}/${pool.spec.replicas} sandboxes are unschedulable past the ${grace} readiness grace period; holding them instead of replacing (replacements would be equally unschedulable)`,
      );
    } else {
      this.notProgressing.delete(key);
      this.d.recorder.event(pool, 'Normal', 'WarmPoolProgressing', 'Warm pool is progressing again');
    }
  }

  private async apply({ pool, template }: PoolObservation, plan: PoolPlan, now: number): Promise<void> {
    const { store } = this.d;
    const remove = async (sb: Sandbox) => {
      await store.delete('Sandbox', pool.metadata.namespace, sb.metadata.name!, { uid: sb.metadata.uid });
    };
    for (const sb of plan.replace) await remove(sb);
    await Promise.all(plan.scaleDown.map(remove));
    if (plan.create > 0 && template) {
      // (A name already taken, one in 27^5, is drawn again.)
      const make = async (): Promise<Sandbox> => {
        try {
          return await store.create(sandboxForPool(pool, template, { eviction: this.opts.warmPoolEviction }));
        } catch (err) {
          if (isAlreadyExists(err)) return make();
          throw err;
        }
      };
      // Every create that succeeded is remembered even if another failed: a failure must not make
      // the next pass create the others again.
      const results = await Promise.allSettled(Array.from({ length: plan.create }, make));
      const made = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value.metadata.name!] : []));
      this.expected.expect(pool.metadata.uid!, made, now + EXPECTATION_TTL_MS);
      this.refill.created(keyOf(pool.metadata.namespace, pool.metadata.name!), made.length);
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
    }
    await writeStatus(store, pool, plan.status);
  }
}

/** A duration as Go prints it (5m0s, 1m30s, 45s, 1.5s): upstream's event text has it. */
export function formatGoDuration(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  const h = Math.floor(ms / 3_600_000);
  const m = Math.floor((ms % 3_600_000) / 60_000);
  const s = (ms % 60_000) / 1000;
  return `${h ? `${h}h` : ''}${h || m ? `${m}m` : ''}${s}s`;
}
