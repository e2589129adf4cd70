// Sandbox reconciler (upstream 2.1): keeps the workload in line with the spec — running, suspended
// (operatingMode Suspended / replicas 0: processes end, volumes stay) or expired (shutdownTime:
// the workload goes, then shutdownPolicy Delete removes the object, Retain keeps it) — and reports
// what it sees in status.conditions.
// A pass reads, decides the status with pure functions, and writes it once.
import {
  LABEL_SANDBOX_NAME_HASH,
  SandboxConditions,
  findCondition,
  nameHash,
  newCondition,
  removeCondition,
  rfc3339,
  setCondition,
  type Condition,
  type Sandbox,
  type SandboxStatus,
} from '@asb/api';
import { isDeepStrictEqual } from 'node:util';
import { MultiplePodsError, type Deps, type Result, type StopState, type WorkloadState } from './substrate.ts';
import { isDeleting, settleHold, writeStatus } from './objects.ts';

/** Where a sandbox's Service is found: `<svc>.<ns>.svc.<cluster domain>` (upstream's --cluster-domain). */
export const DEFAULT_CLUSTER_DOMAIN = 'cluster.local';

export interface SandboxReconcileOptions {
  /** For status.serviceFQDN. @default DEFAULT_CLUSTER_DOMAIN */
  clusterDomain?: string;
}

export async function reconcileSandbox(
  d: Deps,
  namespace: string,
  name: string,
  opts: SandboxReconcileOptions = {},
): Promise<Result> {
  const found = await d.store.get('Sandbox', namespace, name);
  if (!found) {
    // Deleted (by a user, its claim or its pool): the workload and its volumes go with it.
    await d.workloads.release(namespace, name);
    return {};
  }
  const sb = found;
  if (isDeleting(sb)) return {};
  const now = d.clock.now();

  const expiry = decideSandboxExpiry(sb, now);
  if (expiry) {
    if (expiry.stage === 'mark') {
      // First pass: say so, then come back to tear down (upstream's two passes).
      await writeStatus(d.store, sb, expiry.status);
      return { requeueAfterMs: 0 };
    }
    await d.workloads.stop(sb);
    if (expiry.stage === 'delete') {
      await d.store.delete('Sandbox', namespace, name, { uid: sb.metadata.uid });
      return {};
    }
    await writeStatus(d.store, sb, expiry.status);
    return {};
  }
  const requeue = untilExpiry(sb, now);

  if (sb.spec.operatingMode === 'Suspended') {
    const left = await d.workloads.stop(sb, { suspend: true });
    await writeStatus(d.store, sb, suspendedStatus(sb, left, now, opts.clusterDomain ?? DEFAULT_CLUSTER_DOMAIN));
    return requeue;
  }

  let w: WorkloadState;
  try {
    w = await d.workloads.ensure(sb);
  } catch (err) {
    if (err instanceof MultiplePodsError) {
      // Said once, as upstream's Warning event; the pods' own changes bring the next pass.
      if (findCondition(sb.status?.conditions, 'Ready')?.reason !== 'MultiplePods')
        d.recorder.event(sb, 'Warning', 'MultiplePods', err.message);
      await writeStatus(d.store, sb, errorStatus(sb, err, now));
      return requeue;
    }
    await writeStatus(d.store, sb, errorStatus(sb, err, now));
    throw err;
  }
  // No pod-name annotation is written here: this pod is named after the Sandbox, which is what a
  // reader assumes without one (v1.0 no longer writes it; a pool member gets it with its blueprint).
  // A write here would also race a client's update made with the create's resourceVersion.
  const out = runningStatus(sb, w, now, opts.clusterDomain ?? DEFAULT_CLUSTER_DOMAIN);
  if (out.status) await writeStatus(d.store, sb, out.status);
  return out.result;
}

type ReadyReason = keyof typeof SandboxConditions.Ready.reasons;
type SuspendedReason = keyof typeof SandboxConditions.Suspended.reasons;
const ready = (sb: Sandbox, reason: ReadyReason, message: string, now: Date): Condition =>
  newCondition(SandboxConditions.Ready, reason, message, { now, observedGeneration: sb.metadata.generation });
const suspended = (sb: Sandbox, reason: SuspendedReason, message: string, now: Date): Condition =>
  newCondition(SandboxConditions.Suspended, reason, message, { now, observedGeneration: sb.metadata.generation });

/**
 * Past its shutdownTime: first `mark` (Ready says SandboxExpired; the pass comes back at once),
 * then the workload stops and the Sandbox is deleted (shutdownPolicy Delete) or `retain`ed with
 * its conditions alone. Undefined while it is not expired. (Pure.)
 */
export function decideSandboxExpiry(
  sb: Sandbox,
  now: Date,
): { stage: 'mark' | 'retain'; status: SandboxStatus } | { stage: 'delete' } | undefined {
  const shutdownAt = sb.spec.shutdownTime ? Date.parse(sb.spec.shutdownTime) : undefined;
  if (shutdownAt === undefined || shutdownAt > now.getTime()) return undefined;
  const status = structuredClone(sb.status ?? {});
  if (findCondition(status.conditions, 'Ready')?.reason !== 'SandboxExpired') {
    status.conditions = setCondition(status.conditions, ready(sb, 'SandboxExpired', 'Sandbox has expired', now));
    // The pod goes now: its scheduling is no longer mirrored (Finished, a result, stays).
    status.conditions = removeCondition(status.conditions, 'PodScheduled');
    return { stage: 'mark', status };
  }
  if (sb.spec.shutdownPolicy === 'Delete') return { stage: 'delete' };
  return { stage: 'retain', status: { conditions: status.conditions } };
}

/** Come back at the shutdownTime, if any. */
function untilExpiry(sb: Sandbox, now: Date): Result {
  const shutdownAt = sb.spec.shutdownTime ? Date.parse(sb.spec.shutdownTime) : undefined;
  return shutdownAt !== undefined ? { requeueAfterMs: shutdownAt - now.getTime() } : {};
}

/**
 * Suspended (operatingMode Suspended), from what stopping the workload left. upstream's words:
 * Ready says suspending until the pod is gone; Suspended says what became of the pod, and a pod by
 * the Sandbox's name that is someone else's is refused, not deleted. (Pure.)
 */
export function suspendedStatus(sb: Sandbox, left: StopState, now: Date, clusterDomain: string): SandboxStatus {
  const status = structuredClone(sb.status ?? {});
  status.replicas = 0;
  delete status.podIPs;
  delete status.nodeName;
  if (left.service) {
    status.service = left.service;
    status.serviceFQDN = `${left.service}.${sb.metadata.namespace}.svc.${clusterDomain}`;
  }
  // A pod by the name is there: the selector that finds it (upstream sets it whenever one is).
  if (left.stage !== 'gone') status.selector = `${LABEL_SANDBOX_NAME_HASH}=${nameHash(sb.metadata.name!)}`;
  const message = left.stage === 'gone' ? 'Sandbox is suspended' : 'Sandbox is suspending';
  status.conditions = setCondition(status.conditions, ready(sb, 'SandboxSuspended', message, now));
  const why = {
    gone: () => suspended(sb, 'PodTerminated', 'Pod has been terminated. Sandbox is suspended', now),
    ending: () => suspended(sb, 'PodTerminating', 'Pod is terminating. Sandbox is suspending', now),
    notOwned: () => suspended(sb, 'PodNotOwned', 'Refused to delete pod because it is not owned by this sandbox', now),
  }[left.stage]();
  status.conditions = setCondition(status.conditions, why);
  status.conditions = removeCondition(status.conditions, 'Finished');
  // Its own pod, still ending, is still mirrored; no pod, or someone else's, is not.
  status.conditions =
    left.stage === 'ending' && left.scheduled
      ? setCondition(status.conditions, podScheduled(sb, left.scheduled, now))
      : removeCondition(status.conditions, 'PodScheduled');
  return status;
}

/** The pod's PodScheduled condition, copied verbatim (the scheduler's own reasons, e.g.
 *  Unschedulable, so not a declared reason). */
function podScheduled(sb: Sandbox, scheduled: NonNullable<WorkloadState['scheduled']>, now: Date): Condition {
  const { since: _since, ...c } = scheduled;
  return { type: 'PodScheduled', ...c, lastTransitionTime: rfc3339(now), observedGeneration: sb.metadata.generation };
}

/** The workload could not be ensured: Ready says the error. (Pure.) */
export function errorStatus(sb: Sandbox, err: unknown, now: Date): SandboxStatus {
  const status = structuredClone(sb.status ?? {});
  const condition =
    err instanceof MultiplePodsError
      ? ready(sb, 'MultiplePods', err.message, now)
      : ready(sb, 'ReconcilerError', `Error seen: ${(err as Error).message}`, now);
  status.conditions = setCondition(status.conditions, condition);
  return status;
}

/**
 * A running Sandbox's status from its workload, and the pass's result: `status` undefined when
 * nothing is to be written now (a binding held for the readiness that follows). (Pure.)
 */
export function runningStatus(
  sb: Sandbox,
  w: WorkloadState,
  now: Date,
  clusterDomain: string,
): { status?: SandboxStatus; result: Result } {
  const requeue = untilExpiry(sb, now);
  const status = structuredClone(sb.status ?? {});
  status.replicas = 1;
  status.selector = `${LABEL_SANDBOX_NAME_HASH}=${nameHash(sb.metadata.name!)}`;
  if (w.podIPs.length) status.podIPs = w.podIPs;
  else delete status.podIPs;
  if (w.nodeName) status.nodeName = w.nodeName;
  else delete status.nodeName;
  if (w.service) {
    status.service = w.service;
    status.serviceFQDN = `${w.service}.${sb.metadata.namespace}.svc.${clusterDomain}`;
  }
  status.conditions = setCondition(status.conditions, suspended(sb, 'NotSuspended', 'Sandbox is not suspended', now));
  if (w.scheduled) status.conditions = setCondition(status.conditions, podScheduled(sb, w.scheduled, now));
  if (w.phase === 'Succeeded' || w.phase === 'Failed') {
    const reason = w.phase === 'Succeeded' ? 'PodSucceeded' : 'PodFailed';
    // The substrate says how it ended: upstream's words on Kubernetes, the cause (out of
    // memory, exit code) on the local engine.
    status.conditions = setCondition(status.conditions, ready(sb, reason, w.message, now));
    const observedGeneration = sb.metadata.generation;
    const finished = newCondition(SandboxConditions.Finished, reason, w.message, { now, observedGeneration });
    status.conditions = setCondition(status.conditions, finished);
  } else {
    // A required Service is part of readiness: "Pod is Ready; Service Exists".
    const serviceRequired = sb.spec.service === true;
    const message = w.message + (serviceRequired ? (w.service ? '; Service Exists' : '; Service does not exist') : '');
    const isReady = w.ready && (!serviceRequired || !!w.service);
    const reason = isReady ? 'DependenciesReady' : (w.reason ?? 'DependenciesNotReady');
    status.conditions = setCondition(status.conditions, ready(sb, reason, message, now));
    status.conditions = removeCondition(status.conditions, 'Finished');
  }
  // A Pod bound but not Ready yet: its binding alone waits to be reported with its readiness, if
  // that comes soon, so that the two make one status write. (An unschedulable Pod is reported at
  // once; a bound one at the latest STATUS_SETTLE_MS after its binding.)
  const bound = w.scheduled?.status === 'True' && !w.ready && w.phase !== 'Succeeded' && w.phase !== 'Failed';
  const hold = bound ? settleHold(w.scheduled!.since, now, requeue) : undefined;
  if (hold && isDeepStrictEqual(withoutBinding(sb.status), withoutBinding(status))) return { result: hold };
  return { status, result: requeue };
}

/** A status without what a Pod's binding changes (and the stored-version artefact `replicas`). */
function withoutBinding(status: SandboxStatus | undefined): SandboxStatus {
  const { nodeName: _n, replicas: _r, ...rest } = status ?? {};
  return { ...rest, conditions: removeCondition(rest.conditions, 'PodScheduled') };
}

/** True when the Sandbox reports Ready. */
export function isSandboxReady(sb: Sandbox): boolean {
  return findCondition(sb.status?.conditions, 'Ready')?.status === 'True';
}
