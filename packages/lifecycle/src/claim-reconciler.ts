// SandboxClaim reconciler (upstream 2.4): gives a claim a Sandbox — a ready warm-pool member when
// the claim allows one, else a new Sandbox named after the claim — mirrors the Sandbox's Ready
// and Finished conditions, and ends the claim at its expiry (shutdownTime, or Finished +
// ttlSecondsAfterFinished) by its shutdownPolicy: Delete removes the claim (and so its Sandbox),
// Retain removes only the Sandbox.
import { isDeepStrictEqual } from 'node:util';
import {
  ANNOTATION_SANDBOX_NAME, ANNOTATION_SANDBOX_TEMPLATE_REF, LABEL_SANDBOX_TEMPLATE_REF_HASH, LABEL_WARM_POOL_SANDBOX, SandboxClaimConditions, WARM_POOL_DEFAULT,
  WARM_POOL_NONE, claimSource, findCondition, isRestrictedMetadataKey, nameHash, newCondition, removeCondition, setCondition,
  type Condition, type Sandbox, type SandboxClaim, type SandboxClaimStatus, type SandboxTemplate,
} from '@asb/api';
import { adoptedByClaim, injectEnv, sandboxForClaim } from './blueprint.ts';
import { controllerOf, isControlledBy, isDeleting, keyOf, perController, settleHold, writeStatus } from './objects.ts';
import { isSandboxReady } from './sandbox-reconciler.ts';
import { isAlreadyExists, isConflict, isNotFound, type Deps, type Result } from './substrate.ts';

const MISSING_RETRY_MS = 60_000;
/** Candidates tried before starting cold: each failure means another claim won that one. */
const ADOPTION_TRIES = 12;

type ReadyReason = keyof typeof SandboxClaimConditions.Ready.reasons;

/** When the claim expires: the earlier of shutdownTime and Finished + ttlSecondsAfterFinished. */
export function claimExpiry(claim: SandboxClaim): number | undefined {
  const times: number[] = [];
  const lc = claim.spec.lifecycle;
  if (lc?.shutdownTime) times.push(Date.parse(lc.shutdownTime));
  const finished = findCondition(claim.status?.conditions, 'Finished');
  if (lc?.ttlSecondsAfterFinished !== undefined && finished?.status === 'True') {
    times.push(Date.parse(finished.lastTransitionTime) + lc.ttlSecondsAfterFinished * 1000);
  }
  return times.length ? Math.min(...times) : undefined;
}

export async function reconcileClaim(d: Deps, namespace: string, name: string): Promise<Result> {
  const read = await d.store.get('SandboxClaim', namespace, name);
  if (!read || isDeleting(read)) return {};
  // (Replaced by each write of the claim's metadata: the status is written on the latest.)
  let claim: SandboxClaim = read;
  const now = d.clock.now();
  const status: SandboxClaimStatus = structuredClone(claim.status ?? {});
  const ready = (reason: ReadyReason, message: string): Condition =>
    newCondition(SandboxClaimConditions.Ready, reason, message, { now, observedGeneration: claim.metadata.generation });
  const fail = async (reason: ReadyReason, message: string, retryMs?: number): Promise<Result> => {
    status.conditions = setCondition(status.conditions, ready(reason, message));
    await writeStatus(d.store, claim, status);
    return retryMs !== undefined ? { requeueAfterMs: retryMs } : {};
  };

  // ---- expiry ----
  const expiry = claimExpiry(claim);
  if (expiry !== undefined && expiry <= now.getTime()) {
    if (findCondition(status.conditions, 'Ready')?.reason !== 'ClaimExpired') {
      status.conditions = setCondition(status.conditions, ready('ClaimExpired', 'Claim expired. Sandbox cleanup initiated.'));
      await writeStatus(d.store, claim, status);
      d.recorder.event(claim, 'Normal', 'ClaimExpired', 'Claim expired. Sandbox cleanup initiated.');
    }
    const policy = claim.spec.lifecycle?.shutdownPolicy ?? 'Retain';
    if (policy === 'Delete' || policy === 'DeleteForeground') {
      await d.store.delete('SandboxClaim', namespace, name, { uid: claim.metadata.uid, propagation: policy === 'DeleteForeground' ? 'Foreground' : 'Background' });
      return {};
    }
    const own = status.sandbox?.name ? await d.store.get('Sandbox', namespace, status.sandbox.name) : undefined;
    if (own && isControlledBy(own, claim)) await d.store.delete('Sandbox', namespace, own.metadata.name!, { uid: own.metadata.uid });
    return {};
  }
  const requeue: Result = expiry !== undefined ? { requeueAfterMs: expiry - now.getTime() } : {};

  // ---- what to make the Sandbox from ----
  const src = claimSource(claim);
  let templateName: string;
  let poolName: string | undefined; // undefined: any pool of the template; '' : none (cold)
  if (src.by === 'warmPool') {
    const pool = await d.store.get('SandboxWarmPool', namespace, src.warmPool);
    if (!pool) return fail('WarmPoolNotFound', `SandboxWarmPool "${src.warmPool}" not found in namespace "${namespace}"`, MISSING_RETRY_MS);
    templateName = pool.spec.sandboxTemplateRef.name;
    poolName = pool.metadata.name;
  } else {
    templateName = src.template;
    poolName = src.warmpool === WARM_POOL_NONE ? '' : src.warmpool === WARM_POOL_DEFAULT ? undefined : src.warmpool;
  }
  const template = await d.store.get('SandboxTemplate', namespace, templateName);
  if (!template) return fail('TemplateNotFound', `SandboxTemplate "${templateName}" not found in namespace "${namespace}"`, MISSING_RETRY_MS);
  const restricted = Object.keys({ ...claim.spec.additionalPodMetadata?.labels, ...claim.spec.additionalPodMetadata?.annotations }).filter(isRestrictedMetadataKey);
  if (restricted.length) return fail('InvalidMetadata', `additionalPodMetadata uses restricted keys: ${restricted.join(', ')}`);
  const pod = injectEnv(template.spec.podTemplate, claim, template);
  if (!pod.ok) return fail('EnvVarsInjectionRejected', pod.message);
  // Env makes the pod differ from the pool's: such a claim always starts cold.
  if (claim.spec.env?.length) poolName = '';

  // ---- find or make its Sandbox ----
  const found = await findOwn(d, claim);
  claim = found.claim;
  let sandbox = found.sandbox;
  if (!sandbox && poolName !== '') ({ claim, sandbox } = await adoptWarm(d, claim, template, poolName));
  if (!sandbox) {
    try {
      sandbox = await d.store.create(sandboxForClaim(claim, template, pod.podTemplate));
      d.recorder.event(claim, 'Normal', 'SandboxProvisioned', `Created Sandbox "${sandbox.metadata.name}"`);
    } catch (err) {
      if (!isAlreadyExists(err)) throw err;
      const existing = await d.store.get('Sandbox', namespace, name);
      if (!existing || !isControlledBy(existing, claim)) return fail('ReconcilerError', `Error seen: a Sandbox named "${name}" exists and does not belong to this claim`);
      sandbox = existing;
    }
  }

  // ---- status: the Sandbox's own conditions, mirrored ----
  status.sandbox = { name: sandbox.metadata.name, ...(sandbox.status?.podIPs?.length ? { podIPs: sandbox.status.podIPs } : {}) };
  const sbReady = findCondition(sandbox.status?.conditions, 'Ready');
  status.conditions = setCondition(status.conditions, sbReady ?? ready('SandboxNotReady', 'Sandbox is not ready yet'));
  const finished = findCondition(sandbox.status?.conditions, 'Finished');
  status.conditions = finished ? setCondition(status.conditions, finished) : removeCondition(status.conditions, 'Finished');
  // Still not ready, only in the Sandbox's words now ("Pod exists with phase: Pending" after our
  // "Sandbox is not ready yet"): routine progress, reported with the readiness that follows, at
  // the latest STATUS_SETTLE_MS after the Sandbox said it. Any other reason is reported at once.
  const was = findCondition(claim.status?.conditions, 'Ready')?.reason;
  const routine = sbReady?.status === 'False' && sbReady.reason === 'DependenciesNotReady' && (was === 'SandboxNotReady' || was === 'DependenciesNotReady');
  const hold = routine ? settleHold(sbReady.lastTransitionTime, now, requeue) : undefined;
  if (hold && isDeepStrictEqual(readyReasonless(claim.status), readyReasonless(status))) return hold;
  await writeStatus(d.store, claim, status);
  // Finished may have just started a ttl: come back when it ends.
  const newExpiry = claimExpiry({ ...claim, status });
  if (newExpiry !== undefined && newExpiry !== expiry) return { requeueAfterMs: Math.max(0, newExpiry - now.getTime()) };
  return requeue;
}

/**
 * The claim's Sandbox if it has one already: by status, by the sandbox-name annotation an
 * adoption writes first (finishing an adoption that was cut short), or by its own name (cold).
 * Reads come from the watch cache; the annotation is the lock that makes that safe: a claim
 * whose cached copy predates an adoption cannot adopt again, since writing the annotation
 * needs the claim's current resourceVersion.
 */
async function findOwn(d: Deps, claim: SandboxClaim): Promise<{ claim: SandboxClaim; sandbox?: Sandbox }> {
  const ns = claim.metadata.namespace;
  const owned = (sb: Sandbox | undefined): boolean => !!sb && isControlledBy(sb, claim) && !isDeleting(sb);
  const statusName = claim.status?.sandbox?.name;
  if (statusName) {
    const sb = await d.store.get('Sandbox', ns, statusName);
    if (owned(sb)) return { claim, sandbox: sb! };
  }
  const assigned = claim.metadata.annotations?.[ANNOTATION_SANDBOX_NAME];
  if (assigned) {
    const sb = await d.store.get('Sandbox', ns, assigned);
    if (owned(sb)) return { claim, sandbox: sb! };
    if (sb && !isDeleting(sb) && isAdoptable(sb)) {
      // Still the pool's: the adoption stopped between its two writes. Finish it (a stale cached
      // copy makes this a conflict, and the claim is reconciled again).
      const template = await d.store.get('SandboxTemplate', ns, sb.metadata.annotations?.[ANNOTATION_SANDBOX_TEMPLATE_REF] ?? '');
      if (template) return { claim, sandbox: await d.store.update(adoptedByClaim(sb, claim, template)) };
    }
    // Gone, or another claim's: the reference is dropped, and the claim looks again.
    claim = await d.store.update(withAssigned(claim, undefined));
  }
  const sb = await d.store.get('Sandbox', ns, claim.metadata.name!, { cached: true });
  return owned(sb) ? { claim, sandbox: sb! } : { claim };
}

/** A claim's status with its Ready condition's status alone (not why, nor since when). */
function readyReasonless(status: SandboxClaimStatus | undefined): SandboxClaimStatus {
  const conditions = (status?.conditions ?? []).map((c) => (c.type === 'Ready' ? { type: c.type, status: c.status } as Condition : c));
  return { ...status, conditions };
}

function withAssigned(claim: SandboxClaim, sandboxName: string | undefined): SandboxClaim {
  const annotations = { ...claim.metadata.annotations };
  if (sandboxName) annotations[ANNOTATION_SANDBOX_NAME] = sandboxName; else delete annotations[ANNOTATION_SANDBOX_NAME];
  return { ...claim, metadata: { ...claim.metadata, annotations } };
}

/** Pool members ("ns/name") a claim of this controller is adopting at this moment. */
const takingOf = perController(() => new Set<string>());

const isAdoptable = (sb: Sandbox) => sb.metadata.labels?.[LABEL_WARM_POOL_SANDBOX] !== undefined && controllerOf(sb)?.kind === 'SandboxWarmPool';

/**
 * Takes a warm Sandbox of the template (of the named pool, if one is named), ready ones first as
 * upstream does: the claim first records the candidate in its sandbox-name
 * annotation (the claim's lock: one adoption at a time per claim), then takes the Sandbox (the
 * Sandbox's resourceVersion lets only one claim win it; the loser tries the next candidate).
 */
async function adoptWarm(d: Deps, claim: SandboxClaim, template: SandboxTemplate, poolName: string | undefined): Promise<{ claim: SandboxClaim; sandbox?: Sandbox }> {
  const labels: Record<string, string> = { [LABEL_SANDBOX_TEMPLATE_REF_HASH]: nameHash(template.metadata.name!) };
  if (poolName) labels[LABEL_WARM_POOL_SANDBOX] = nameHash(poolName);
  // A stale answer is harmless here: adopting a Sandbox that changed meanwhile is a conflict.
  // Members another claim of this controller is taking right now are left to it: only claims of
  // another process can still collide (and the Sandbox's resourceVersion settles those).
  const taking = takingOf(d);
  const members = (await d.store.list('Sandbox', { namespace: claim.metadata.namespace, labels, cached: true }))
    .filter((sb) => !isDeleting(sb) && isAdoptable(sb) && !taking.has(keyOf(sb.metadata.namespace, sb.metadata.name!)));
  // Ready ones first, as upstream. Claims reconciled at the same moment would all try the same
  // one first and all but one lose: each starts at a random ready member instead (the list
  // wraps around), so their order among themselves does not matter, and is not sorted for (a
  // claim burst on a pool of 1,000 sorted it once per claim). Unready ones follow, oldest first.
  const ready: Sandbox[] = [];
  const unready: Sandbox[] = [];
  for (const m of members) (isSandboxReady(m) ? ready : unready).push(m);
  const k = Math.floor(Math.random() * ready.length);
  const age = (sb: Sandbox) => Date.parse(sb.metadata.creationTimestamp ?? '');
  const candidates = [...ready.slice(k), ...ready.slice(0, k), ...unready.sort((a, b) => age(a) - age(b))];
  let tries = 0;
  for (const listed of candidates) {
    if (tries >= ADOPTION_TRIES) break;
    // The newest copy: another claim may have adopted it since the list, or be taking it now.
    const candidate = await d.store.get('Sandbox', listed.metadata.namespace, listed.metadata.name!, { cached: true });
    const key = keyOf(listed.metadata.namespace, listed.metadata.name!);
    if (!candidate || isDeleting(candidate) || !isAdoptable(candidate) || taking.has(key)) continue;
    tries++;
    taking.add(key);
    try {
      // A conflict here means the claim changed (or our copy of it is stale): the whole
      // reconcile is retried, from a fresh read.
      claim = await d.store.update(withAssigned(claim, candidate.metadata.name));
      try {
        const adopted = await d.store.update(adoptedByClaim(candidate, claim, template));
        d.recorder.event(claim, 'Normal', 'SandboxAdopted', `Adopted warm pool Sandbox "${adopted.metadata.name}"`);
        return { claim, sandbox: adopted };
      } catch (err) {
        if (!isConflict(err) && !isNotFound(err)) throw err; // another claim took it first
      }
    } finally {
      taking.delete(key);
    }
  }
  // None could be taken: the claim starts cold, and names no warm Sandbox.
  if (claim.metadata.annotations?.[ANNOTATION_SANDBOX_NAME]) claim = await d.store.update(withAssigned(claim, undefined));
  return { claim };
}
