// SandboxClaim reconciler (upstream 2.4): gives a claim a Sandbox — a ready warm-pool member when
// the claim allows one, else a new Sandbox named after the claim — mirrors the Sandbox's Ready
// and Finished conditions, and ends the claim at its expiry (shutdownTime, or Finished +
// ttlSecondsAfterFinished) by its shutdownPolicy: Delete removes the claim (and so its Sandbox),
// Retain removes only the Sandbox.
// A pass reads, decides with pure functions (decideClaimExpiry, decideSource, decideClaimStatus),
// ensures the claim's one child, its Sandbox, and writes the status once.
import { isDeepStrictEqual } from 'node:util';
import {
  ANNOTATION_CONTROLLER_FIRST_OBSERVED_AT,
  ANNOTATION_SANDBOX_NAME,
  ANNOTATION_SANDBOX_TEMPLATE_REF,
  LABEL_SANDBOX_TEMPLATE_REF_HASH,
  LABEL_WARM_POOL_SANDBOX,
  SandboxClaimConditions,
  WARM_POOL_DEFAULT,
  WARM_POOL_NONE,
  claimSource,
  findCondition,
  isRestrictedMetadataKey,
  nameHash,
  newCondition,
  removeCondition,
  setCondition,
  type Condition,
  type PodTemplate,
  type Sandbox,
  type SandboxClaim,
  type SandboxClaimStatus,
  type SandboxTemplate,
  type SandboxWarmPool,
  rfc3339Micros,
} from '@asb/api';
import { adoptedByClaim, injectEnv, mergeVolumeClaimTemplates, sandboxForClaim } from './blueprint.ts';
import { controllerOf, isControlledBy, isDeleting, keyOf, settleHold, writeStatus } from './objects.ts';
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

/** What an expired claim's pass does. */
export interface ClaimExpiryPlan {
  /** The status with Ready ClaimExpired, when it does not say so yet (and the event that goes with it). */
  status?: SandboxClaimStatus;
  event?: { reason: 'ClaimExpired'; message: string };
  /** Delete removes the claim (its Sandbox goes with it); Retain only the Sandbox, if it is the claim's. */
  remove: { claim: 'Background' | 'Foreground' } | { sandbox: string | undefined };
}

/** Expired at `now`: what to do; undefined while it is not. (Pure.) */
export function decideClaimExpiry(claim: SandboxClaim, now: Date): ClaimExpiryPlan | undefined {
  const expiry = claimExpiry(claim);
  if (expiry === undefined || expiry > now.getTime()) return undefined;
  const message = 'Claim expired. Sandbox cleanup initiated.';
  const said = findCondition(claim.status?.conditions, 'Ready')?.reason === 'ClaimExpired';
  const conditions = said
    ? undefined
    : setCondition(claim.status?.conditions, readyCondition(claim, 'ClaimExpired', message, now));
  const policy = claim.spec.lifecycle?.shutdownPolicy ?? 'Retain';
  const remove: ClaimExpiryPlan['remove'] =
    policy === 'Delete' || policy === 'DeleteForeground'
      ? { claim: policy === 'DeleteForeground' ? 'Foreground' : 'Background' }
      : { sandbox: claim.status?.sandbox?.name };
  return {
    ...(conditions
      ? { status: { ...structuredClone(claim.status ?? {}), conditions }, event: { reason: 'ClaimExpired', message } }
      : {}),
    remove,
  };
}

/** What a claim's source (its pool, its template) resolved to when read. */
export interface SourceObservation {
  /** The named pool (spec.warmPoolRef), when the claim names one: undefined if not found. */
  pool?: SandboxWarmPool;
  /** Read only once the pool is known. */
  template?: SandboxTemplate;
}

/** Why the claim cannot have a Sandbox now: its Ready condition, and when to look again. */
export interface ClaimFailure {
  reason: ReadyReason;
  message: string;
  retryMs?: number;
}

/** What the claim's Sandbox is made from; `poolName`: undefined: any pool of the template; '': none (cold). */
export interface ClaimSourcePlan {
  ok: true;
  template: SandboxTemplate;
  pod: PodTemplate;
  /** The template's, merged with the claim's own. */
  volumeClaimTemplates?: Sandbox['spec']['volumeClaimTemplates'];
  poolName: string | undefined;
}

/**
 * What to make the claim's Sandbox from: the template, the pod (the claim's env injected), and
 * the pool to adopt from (undefined: any pool of the template; '': none, start cold). (Pure.)
 */
export function decideSource(
  claim: SandboxClaim,
  seen: SourceObservation,
): ClaimSourcePlan | ({ ok: false } & ClaimFailure) {
  const namespace = claim.metadata.namespace;
  const src = claimSource(claim);
  let templateName: string;
  let poolName: string | undefined;
  if (src.by === 'warmPool') {
    if (!seen.pool) {
      const message = `SandboxWarmPool "${src.warmPool}" not found in namespace "${namespace}"`;
      return { ok: false, reason: 'WarmPoolNotFound', message, retryMs: MISSING_RETRY_MS };
    }
    templateName = seen.pool.spec.sandboxTemplateRef.name;
    poolName = seen.pool.metadata.name;
  } else {
    templateName = src.template;
    poolName = src.warmpool === WARM_POOL_NONE ? '' : src.warmpool === WARM_POOL_DEFAULT ? undefined : src.warmpool;
  }
  const template = seen.template;
  if (!template) {
    const message = `SandboxTemplate "${templateName}" not found in namespace "${namespace}"`;
    return { ok: false, reason: 'TemplateNotFound', message, retryMs: MISSING_RETRY_MS };
  }
  const meta = claim.spec.additionalPodMetadata;
  const restricted = Object.keys({ ...meta?.labels, ...meta?.annotations }).filter(isRestrictedMetadataKey);
  if (restricted.length) {
    const message = `additionalPodMetadata uses restricted keys: ${restricted.join(', ')}`;
    return { ok: false, reason: 'InvalidMetadata', message };
  }
  const pod = injectEnv(template.spec.podTemplate, claim, template);
  if (!pod.ok) return { ok: false, reason: 'EnvVarsInjectionRejected', message: pod.message };
  const volumes = mergeVolumeClaimTemplates(claim, template);
  if (!volumes.ok) return { ok: false, reason: 'VolumeClaimTemplatesError', message: volumes.message };
  // Env or volumes of its own make the Sandbox differ from the pool's: such a claim starts cold.
  if (claim.spec.env?.length || claim.spec.volumeClaimTemplates?.length) poolName = '';
  return { ok: true, template, pod: pod.podTemplate, volumeClaimTemplates: volumes.list, poolName };
}

/** A claim's status with Ready saying why it has no Sandbox. (Pure.) */
export function failedStatus(
  claim: SandboxClaim,
  base: SandboxClaimStatus | undefined,
  f: ClaimFailure,
  now: Date,
): SandboxClaimStatus {
  const status = structuredClone(base ?? {});
  status.conditions = setCondition(status.conditions, readyCondition(claim, f.reason, f.message, now));
  return status;
}

/**
 * The claim's status from its Sandbox (its Ready and Finished conditions, mirrored), and the
 * pass's result: `status` undefined when nothing is to be written now (routine progress held).
 * `base`: the status the pass began from. (Pure.)
 */
export function decideClaimStatus(
  claim: SandboxClaim,
  base: SandboxClaimStatus | undefined,
  sandbox: Sandbox,
  now: Date,
): { status?: SandboxClaimStatus; result: Result } {
  const expiry = claimExpiry(claim);
  const requeue: Result = expiry !== undefined ? { requeueAfterMs: expiry - now.getTime() } : {};
  const status = structuredClone(base ?? {});
  status.sandbox = {
    name: sandbox.metadata.name,
    ...(sandbox.status?.podIPs?.length ? { podIPs: sandbox.status.podIPs } : {}),
  };
  const sbReady = findCondition(sandbox.status?.conditions, 'Ready');
  const notYet = readyCondition(claim, 'SandboxNotReady', 'Sandbox is not ready yet', now);
  status.conditions = setCondition(status.conditions, sbReady ?? notYet);
  const finished = findCondition(sandbox.status?.conditions, 'Finished');
  status.conditions = finished
    ? setCondition(status.conditions, finished)
    : removeCondition(status.conditions, 'Finished');
  // Still not ready, only in the Sandbox's words now ("Pod exists with phase: Pending" after our
  // "Sandbox is not ready yet"): routine progress, reported with the readiness that follows, at
  // the latest STATUS_SETTLE_MS after the Sandbox said it. Any other reason is reported at once.
  const was = findCondition(claim.status?.conditions, 'Ready')?.reason;
  const routine =
    sbReady?.status === 'False' &&
    sbReady.reason === 'DependenciesNotReady' &&
    (was === 'SandboxNotReady' || was === 'DependenciesNotReady');
  const hold = routine ? settleHold(sbReady.lastTransitionTime, now, requeue) : undefined;
  if (hold && isDeepStrictEqual(readyReasonless(claim.status), readyReasonless(status))) return { result: hold };
  // Finished may have just started a ttl: come back when it ends.
  const newExpiry = claimExpiry({ ...claim, status });
  if (newExpiry !== undefined && newExpiry !== expiry) {
    return { status, result: { requeueAfterMs: Math.max(0, newExpiry - now.getTime()) } };
  }
  return { status, result: requeue };
}

function readyCondition(claim: SandboxClaim, reason: ReadyReason, message: string, now: Date): Condition {
  const observedGeneration = claim.metadata.generation;
  return newCondition(SandboxClaimConditions.Ready, reason, message, { now, observedGeneration });
}

export interface ClaimReconcileOptions {
  /**
   * Stamp each claim, when first seen, with agents.x-k8s.io/controller-first-observed-at (RFC 3339,
   * microseconds), as upstream does for its startup-latency metric: one more write per claim
   * (upstream's --disable-claim-observability-annotations skips it). @default false
   */
  observedAtAnnotation?: boolean;
}

/** One per controller: it owns the adoptions its claims have under way. */
export class ClaimReconciler {
  /** Pool members ("ns/name") a claim of this controller is adopting at this moment. */
  private readonly taking = new Set<string>();

  constructor(
    private readonly d: Deps,
    private readonly opts: ClaimReconcileOptions = {},
  ) {}

  async reconcile(namespace: string, name: string): Promise<Result> {
    const { store, recorder } = this.d;
    let read = await store.get('SandboxClaim', namespace, name);
    if (!read || isDeleting(read)) return {};
    if (this.opts.observedAtAnnotation && !read.metadata.annotations?.[ANNOTATION_CONTROLLER_FIRST_OBSERVED_AT])
      read = await store.update({
        ...read,
        metadata: {
          ...read.metadata,
          annotations: { ...read.metadata.annotations, [ANNOTATION_CONTROLLER_FIRST_OBSERVED_AT]: rfc3339Micros() },
        },
      });
    const now = this.d.clock.now();
    const base = read.status;

    const expired = decideClaimExpiry(read, now);
    if (expired) {
      if (expired.status) {
        await writeStatus(store, read, expired.status);
        if (expired.event) recorder.event(read, 'Normal', expired.event.reason, expired.event.message);
      }
      if ('claim' in expired.remove) {
        const propagation = expired.remove.claim;
        await store.delete('SandboxClaim', namespace, name, { uid: read.metadata.uid, propagation });
        return {};
      }
      const own = expired.remove.sandbox ? await store.get('Sandbox', namespace, expired.remove.sandbox) : undefined;
      if (own && isControlledBy(own, read)) {
        await store.delete('Sandbox', namespace, own.metadata.name!, { uid: own.metadata.uid });
      }
      return {};
    }

    const fail = async (claim: SandboxClaim, f: ClaimFailure): Promise<Result> => {
      await writeStatus(store, claim, failedStatus(claim, base, f, now));
      return f.retryMs !== undefined ? { requeueAfterMs: f.retryMs } : {};
    };
    const source = decideSource(read, await this.readSource(read));
    if (!source.ok) return fail(read, source);

    const got = await this.ensureSandbox(read, source);
    if ('failure' in got) return fail(got.claim, got.failure);
    const out = decideClaimStatus(got.claim, base, await newestStatus(this.d, got.sandbox), now);
    if (out.status) await writeStatus(store, got.claim, out.status);
    return out.result;
  }

  /** The claim's pool (when it names one) and template. */
  private async readSource(claim: SandboxClaim): Promise<SourceObservation> {
    const ns = claim.metadata.namespace;
    const src = claimSource(claim);
    if (src.by === 'warmPool') {
      const pool = await this.d.store.get('SandboxWarmPool', ns, src.warmPool);
      if (!pool) return {};
      const template = await this.d.store.get('SandboxTemplate', ns, pool.spec.sandboxTemplateRef.name);
      return { pool, ...(template ? { template } : {}) };
    }
    const template = await this.d.store.get('SandboxTemplate', ns, src.template);
    return template ? { template } : {};
  }

  /**
   * The claim's Sandbox: the one it has, else a warm one adopted, else a new one. `claim`: the
   * claim as the adoption's writes of its metadata left it (the status is written on it).
   */
  private async ensureSandbox(
    read: SandboxClaim,
    { template, pod, volumeClaimTemplates, poolName }: ClaimSourcePlan,
  ): Promise<{ claim: SandboxClaim; sandbox: Sandbox } | { claim: SandboxClaim; failure: ClaimFailure }> {
    const { store, recorder } = this.d;
    const { namespace, name } = read.metadata as { namespace: string; name: string };
    let { claim, sandbox } = await findOwn(this.d, read);
    if (!sandbox && poolName !== '') ({ claim, sandbox } = await this.adoptWarm(claim, template, poolName));
    if (sandbox) return { claim, sandbox };
    try {
      sandbox = await store.create(sandboxForClaim(claim, template, pod, volumeClaimTemplates));
      recorder.event(claim, 'Normal', 'SandboxProvisioned', `Created Sandbox "${sandbox.metadata.name}"`);
      return { claim, sandbox };
    } catch (err) {
      if (!isAlreadyExists(err)) throw err;
      const existing = await store.get('Sandbox', namespace, name);
      if (!existing || !isControlledBy(existing, claim)) {
        const message = `Error seen: a Sandbox named "${name}" exists and does not belong to this claim`;
        return { claim, failure: { reason: 'ReconcilerError', message } };
      }
      return { claim, sandbox: existing };
    }
  }

  /**
   * Takes a warm Sandbox of the template (of the named pool, if one is named), ready ones first as
   * upstream does: the claim first records the candidate in its sandbox-name
   * annotation (the claim's lock: one adoption at a time per claim), then takes the Sandbox (the
   * Sandbox's resourceVersion lets only one claim win it; the loser tries the next candidate).
   */
  private async adoptWarm(
    claim: SandboxClaim,
    template: SandboxTemplate,
    poolName: string | undefined,
  ): Promise<{ claim: SandboxClaim; sandbox?: Sandbox }> {
    const d = this.d;
    const labels: Record<string, string> = { [LABEL_SANDBOX_TEMPLATE_REF_HASH]: nameHash(template.metadata.name!) };
    if (poolName) labels[LABEL_WARM_POOL_SANDBOX] = nameHash(poolName);
    // A stale answer is harmless here: adopting a Sandbox that changed meanwhile is a conflict.
    // Members another claim of this controller is taking right now are left to it: only claims of
    // another process can still collide (and the Sandbox's resourceVersion settles those).
    const taking = this.taking;
    const members = (
      await d.store.list('Sandbox', { namespace: claim.metadata.namespace, labels, cached: true })
    ).filter(
      (sb) => !isDeleting(sb) && isAdoptable(sb) && !taking.has(keyOf(sb.metadata.namespace, sb.metadata.name!)),
    );
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
      const { namespace, name } = listed.metadata as { namespace: string; name: string };
      const candidate = await d.store.get('Sandbox', namespace, name, { cached: true });
      const key = keyOf(namespace, name);
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
    if (claim.metadata.annotations?.[ANNOTATION_SANDBOX_NAME]) {
      claim = await d.store.update(withAssigned(claim, undefined));
    }
    return { claim };
  }
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
      const template = await d.store.get(
        'SandboxTemplate',
        ns,
        sb.metadata.annotations?.[ANNOTATION_SANDBOX_TEMPLATE_REF] ?? '',
      );
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
  const conditions = (status?.conditions ?? []).map((c) =>
    c.type === 'Ready' ? ({ type: c.type, status: c.status } as Condition) : c,
  );
  return { ...status, conditions };
}

/**
 * The Sandbox as its own reconciler last reported it, when the copy at hand predates that: an
 * adoption's write returns the Sandbox at a new generation that its status has not observed yet,
 * and the Sandbox's reconciler often reports it before the claim's status is written. The claim
 * copies the Sandbox's Ready condition verbatim (as upstream), so a status from the older copy
 * is written again at once. Only a copy of the same Sandbox whose Ready condition has observed a
 * later generation replaces it (a lagging cache never does).
 */
async function newestStatus(d: Deps, sandbox: Sandbox): Promise<Sandbox> {
  const observed = findCondition(sandbox.status?.conditions, 'Ready')?.observedGeneration;
  if (observed === undefined || observed >= (sandbox.metadata.generation ?? 0)) return sandbox;
  const { namespace, name, uid } = sandbox.metadata;
  const current = await d.store.get('Sandbox', namespace, name!, { cached: true });
  const newer = findCondition(current?.status?.conditions, 'Ready')?.observedGeneration;
  return current && current.metadata.uid === uid && newer !== undefined && newer > observed ? current : sandbox;
}

function withAssigned(claim: SandboxClaim, sandboxName: string | undefined): SandboxClaim {
  const annotations = { ...claim.metadata.annotations };
  if (sandboxName) annotations[ANNOTATION_SANDBOX_NAME] = sandboxName;
  else delete annotations[ANNOTATION_SANDBOX_NAME];
  return { ...claim, metadata: { ...claim.metadata, annotations } };
}

const isAdoptable = (sb: Sandbox) =>
  sb.metadata.labels?.[LABEL_WARM_POOL_SANDBOX] !== undefined && controllerOf(sb)?.kind === 'SandboxWarmPool';
