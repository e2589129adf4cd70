// SandboxWarmPool reconciler (upstream 2.3): keeps `replicas` unclaimed Sandboxes of the
// template. A claim's adoption takes a member out of the pool (its pool label and owner go), so
// the next pass creates a replacement. Scale-down removes unready members first, then the newest.
// Members made from an older pod template are stale: Recreate deletes them, OnReplenish keeps them
// until claimed.
import { LABEL_SANDBOX_POD_TEMPLATE_HASH, LABEL_WARM_POOL_SANDBOX, nameHash, type Sandbox } from '@asb/api';
import { podTemplateHash, sandboxForPool } from './blueprint.ts';
import { controllerOf, controllerRef, isDeleting, keyOf, perController, writeStatus } from './objects.ts';
import { isSandboxReady } from './sandbox-reconciler.ts';
import { isAlreadyExists, isConflict, type Deps, type Result } from './substrate.ts';

/** A member that never became ready in this long is replaced. */
export const UNREADY_REPLACE_MS = 5 * 60_000;

/**
 * What the pool reconciler remembers between passes, per controller, by pool.
 * - expected, by pool uid: members this process created that the (possibly lagging) watch cache
 *   may not show yet, counted as members until seen, so that a pass right after a burst of creates
 *   does not create them again (controller-runtime's "expectations"); forgotten after a minute, in
 *   case a create event was lost.
 * - refills, by "ns/name": refill shaping as upstream v0.5 keeps it: the member count last seen
 *   (a drop means claims are taking members), the hold that drop arms, and a token bucket that
 *   holds at most one second of creates.
 */
interface PoolMemory { expected: Map<string, Map<string, number>>; refills: Map<string, RefillState> }
interface RefillState {
  lastMembers: number; holdUntil: number; tokens: number; tokensAt: number;
  /** Claims first: when this drain's wait for the claim queue began, and whether it is used up. */
  claimsWaitFrom?: number; claimsWaitSpent?: boolean;
  /** Claims took members since the pool was last full: what it makes now are replacements. */
  drained?: boolean;
}
const memoryOf = perController((): PoolMemory => ({ expected: new Map(), refills: new Map() }));
const EXPECTATION_TTL_MS = 60_000;
/** How often a pool waiting for the claim queue looks again. */
const CLAIMS_FIRST_POLL_MS = 100;

/**
 * How many replacements this pass may create (of `want`), and when to look again if fewer. The
 * first sight of a pool (new, or after a restart) never holds: a fill or scale-up starts at once.
 */
function shapeRefill(refills: Map<string, RefillState>, key: string, d: Deps, current: number, desired: number, want: number, now: number): { allow: number; retryMs?: number } {
  const delay = d.warmPoolRefill?.replenishDelayMs ?? 0, rate = d.warmPoolRefill?.maxRefillRate ?? 0;
  let st = refills.get(key);
  let dropped = false;
  if (!st) { st = { lastMembers: current, holdUntil: 0, tokens: Math.max(1, rate), tokensAt: now }; refills.set(key, st); } else {
    dropped = current < st.lastMembers;
    st.lastMembers = current;
    if (current >= desired) { st.holdUntil = 0; st.claimsWaitFrom = undefined; st.claimsWaitSpent = false; st.drained = false; }
    else if (dropped) {
      st.drained = true;
      if (delay > 0) st.holdUntil = now + delay; // re-armed while the burst lasts
    }
  }
  if (want <= 0) return { allow: 0 };
  if (st.holdUntil > now) return { allow: 0, retryMs: st.holdUntil - now };
  // Claims first: members being taken while claims are queued, or arrive one after another,
  // wait to be replaced until claims are quiet, once per drain and for a bounded time, so that a
  // steady stream of claims cannot keep the pool from refilling (upstream's replenish delay can:
  // its own caveat). Between claims one after another, a pool down to a quarter of its size
  // starts refilling, for the claims still to come. (Claims already queued gain nothing from a
  // refill: one that finds no member starts cold at once, so a burst keeps the API server.)
  const cf = d.claimsFirst;
  const queued = !!cf?.claimsQueued(), arriving = !!cf?.claimsArriving();
  if (cf && !st.claimsWaitSpent && (dropped || st.claimsWaitFrom !== undefined)) {
    if (queued || (arriving && current > desired / 4)) {
      st.claimsWaitFrom ??= now;
      if (now - st.claimsWaitFrom < cf.maxDeferMs) return { allow: 0, retryMs: CLAIMS_FIRST_POLL_MS };
      st.claimsWaitSpent = true; // waited its time in this drain: refill now, however busy
    } else st.claimsWaitFrom = undefined;
  }
  // Replacements made while claims are still busy (a quarter left, or the wait spent) are paced,
  // so that they do not take the API server from them: all at once, 750 replacements made every
  // claim behind them wait seconds (p95 6 s for claims at a steady 40/s). Once claims are quiet,
  // the full rate. (A fill or scale-up is not a refill: it goes at once.)
  const pace = (queued || arriving) && st.drained ? cf?.refillPerS ?? 0 : 0;
  const r = rate > 0 && pace > 0 ? Math.min(rate, pace) : rate || pace;
  if (r <= 0) return { allow: want };
  st.tokens = Math.min(Math.max(1, r), st.tokens + ((now - st.tokensAt) / 1000) * r);
  st.tokensAt = now;
  const allow = Math.min(want, Math.floor(st.tokens));
  st.tokens -= allow;
  return allow < want ? { allow, retryMs: Math.ceil(((1 - (st.tokens % 1)) / r) * 1000) } : { allow };
}

export async function reconcilePool(d: Deps, namespace: string, name: string): Promise<Result> {
  const pool = await d.store.get('SandboxWarmPool', namespace, name);
  const { expected, refills } = memoryOf(d);
  if (!pool) refills.delete(keyOf(namespace, name));
  if (!pool || isDeleting(pool)) return {}; // members are owned: the store collects them
  const now = d.clock.now().getTime();
  const template = await d.store.get('SandboxTemplate', namespace, pool.spec.sandboxTemplateRef.name);
  const poolHash = nameHash(name);
  let members: Sandbox[] = [];
  // From the watch cache: a pool of 1,000 is not re-listed from the API server on every change.
  // Every Sandbox of the namespace: a member this process created counts as seen once the cache
  // shows it at all, in the pool or already adopted out of it.
  const all = await d.store.list('Sandbox', { namespace, cached: true });
  const pending = expected.get(pool.metadata.uid!) ?? new Map<string, number>();
  for (const sb of all) pending.delete(sb.metadata.name!);
  for (const [n, until] of pending) if (until < now) pending.delete(n);
  for (const sb of all.filter((x) => x.metadata.labels?.[LABEL_WARM_POOL_SANDBOX] === poolHash)) {
    if (isDeleting(sb)) continue;
    const owner = controllerOf(sb);
    if (owner && owner.uid !== pool.metadata.uid) continue; // someone else's
    if (!owner) {
      // An orphan with our label (its pool was re-created): adopt it.
      try { members.push(await d.store.update({ ...sb, metadata: { ...sb.metadata, ownerReferences: [controllerRef(pool)] } })); } catch (err) { if (!isConflict(err)) throw err; }
      continue;
    }
    members.push(sb);
  }

  const remove = async (sb: Sandbox) => { await d.store.delete('Sandbox', namespace, sb.metadata.name!, { uid: sb.metadata.uid }); };
  const currentHash = template ? podTemplateHash(template) : undefined;
  const stale = (sb: Sandbox) => currentHash !== undefined && sb.metadata.labels?.[LABEL_SANDBOX_POD_TEMPLATE_HASH] !== currentHash;
  const age = (sb: Sandbox) => now - Date.parse(sb.metadata.creationTimestamp ?? new Date(now).toISOString());
  const keep: Sandbox[] = [];
  for (const sb of members) {
    if ((pool.spec.updateStrategy?.type === 'Recreate' && stale(sb)) || (!isSandboxReady(sb) && age(sb) > UNREADY_REPLACE_MS)) await remove(sb);
    else keep.push(sb);
  }
  members = keep;

  const desired = pool.spec.replicas;
  const shaped = shapeRefill(refills, keyOf(namespace, name), d, members.length + pending.size, desired,
    template ? desired - members.length - pending.size : 0, now);
  if (members.length > desired) {
    // Unready first, then the newest.
    const order = [...members].sort((a, b) => Number(isSandboxReady(a)) - Number(isSandboxReady(b)) || age(a) - age(b));
    const excess = order.slice(0, members.length - desired);
    await Promise.all(excess.map(remove));
    members = members.filter((m) => !excess.includes(m));
  } else if (shaped.allow > 0 && template) {
    // (Members still on their way, not yet in the cache, count: they are not made twice.)
    // (A name already taken, one in 27^5, is drawn again.)
    const make = async (): Promise<Sandbox> => {
      try { return await d.store.create(sandboxForPool(pool, template, { eviction: d.warmPoolEviction })); } catch (err) { if (isAlreadyExists(err)) return make(); throw err; }
    };
    // Every create that succeeded is remembered even if another failed: a failure must not make
    // the next pass create the others again.
    const results = await Promise.allSettled(Array.from({ length: shaped.allow }, make));
    const made = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    for (const m of made) pending.set(m.metadata.name!, now + EXPECTATION_TTL_MS);
    // Our own creates raise the count a later pass compares with: a lagging cache then does not
    // look like members being taken.
    const st = refills.get(keyOf(namespace, name));
    if (st) st.lastMembers += made.length;
    expected.set(pool.metadata.uid!, pending);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    members.push(...made);
  }
  if (pending.size) expected.set(pool.metadata.uid!, pending); else expected.delete(pool.metadata.uid!);

  const readyReplicas = members.filter(isSandboxReady).length;
  await writeStatus(d.store, pool, {
    ...pool.status,
    replicas: members.length,
    readyReplicas,
    selector: `${LABEL_WARM_POOL_SANDBOX}=${poolHash}`,
    observedGeneration: pool.metadata.generation,
  });
  // A member that is not ready yet is looked at again when it changes (watch); the 5-minute
  // replacement needs a timer.
  const waiting = members.filter((m) => !isSandboxReady(m));
  const later = [shaped.retryMs, waiting.length ? Math.max(1000, UNREADY_REPLACE_MS - Math.max(...waiting.map(age))) : undefined].filter((x) => x !== undefined);
  return later.length ? { requeueAfterMs: Math.min(...later) } : {};
}
