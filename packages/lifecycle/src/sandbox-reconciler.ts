// Sandbox reconciler (upstream 2.1): keeps the workload in line with the spec — running, suspended
// (operatingMode Suspended / replicas 0: processes end, volumes stay) or expired (shutdownTime:
// the workload goes, then shutdownPolicy Delete removes the object, Retain keeps it) — and reports
// what it sees in status.conditions.
import {
  ANNOTATION_POD_NAME, LABEL_SANDBOX_NAME_HASH, SandboxConditions, findCondition, nameHash, newCondition, removeCondition, setCondition,
  type Condition, type Sandbox, type SandboxStatus,
} from '@asb/api';
import { isDeepStrictEqual } from 'node:util';
import type { Deps, Result } from './substrate.ts';
import { isDeleting, rfc3339, settleHold, writeStatus } from './objects.ts';

/** Where a sandbox's Service is found: `<svc>.<ns>.svc.<cluster domain>` (upstream's --cluster-domain). */
export const DEFAULT_CLUSTER_DOMAIN = 'cluster.local';

export async function reconcileSandbox(d: Deps, namespace: string, name: string): Promise<Result> {
  const found = await d.store.get('Sandbox', namespace, name);
  if (!found) {
    // Deleted (by a user, its claim or its pool): the workload and its volumes go with it.
    await d.workloads.release(namespace, name);
    return {};
  }
  let sb = found;
  if (isDeleting(sb)) return {};
  const now = d.clock.now();
  const cond = (reason: keyof typeof SandboxConditions.Ready.reasons, message: string) =>
    newCondition(SandboxConditions.Ready, reason, message, { now, observedGeneration: sb.metadata.generation });
  let status: SandboxStatus = structuredClone(sb.status ?? {});

  // ---- expiry ----
  const shutdownAt = sb.spec.shutdownTime ? Date.parse(sb.spec.shutdownTime) : undefined;
  if (shutdownAt !== undefined && shutdownAt <= now.getTime()) {
    if (findCondition(status.conditions, 'Ready')?.reason !== 'SandboxExpired') {
      // First pass: say so, then come back to tear down (upstream's two passes).
      status.conditions = setCondition(status.conditions, cond('SandboxExpired', 'Sandbox has expired'));
      await writeStatus(d.store, sb, status);
      return { requeueAfterMs: 0 };
    }
    await d.workloads.stop(sb);
    if (sb.spec.shutdownPolicy === 'Delete') {
      await d.store.delete('Sandbox', namespace, name, { uid: sb.metadata.uid });
      return {};
    }
    await writeStatus(d.store, sb, { conditions: status.conditions });
    return {};
  }
  const requeue: Result = shutdownAt !== undefined ? { requeueAfterMs: shutdownAt - now.getTime() } : {};
  const suspended = (reason: keyof typeof SandboxConditions.Suspended.reasons, message: string) =>
    newCondition(SandboxConditions.Suspended, reason, message, { now, observedGeneration: sb.metadata.generation });

  // ---- suspended ----
  if (sb.spec.operatingMode === 'Suspended') {
    const gone = await d.workloads.stop(sb);
    status.replicas = 0;
    delete status.podIPs;
    delete status.nodeName;
    // upstream's words: Ready says suspending/suspended, Suspended says what became of the pod.
    status.conditions = setCondition(status.conditions, cond('SandboxSuspended', gone ? 'Sandbox is suspended' : 'Sandbox is suspending'));
    status.conditions = setCondition(status.conditions, gone ? suspended('PodTerminated', 'Pod has been terminated. Sandbox is suspended') : suspended('PodTerminating', 'Pod is terminating. Sandbox is suspending'));
    status.conditions = removeCondition(removeCondition(status.conditions, 'Finished'), 'PodScheduled');
    await writeStatus(d.store, sb, status);
    return requeue;
  }

  // ---- running ----
  // Which pod backs it, written down as upstream does (a pool member keeps its pod's name
  // through adoption; every other Sandbox's pod is named after it).
  if (!sb.metadata.annotations?.[ANNOTATION_POD_NAME]) {
    sb = await d.store.update({ ...sb, metadata: { ...sb.metadata, annotations: { ...sb.metadata.annotations, [ANNOTATION_POD_NAME]: name } } });
  }
  let w;
  try {
    w = await d.workloads.ensure(sb);
  } catch (err) {
    status.conditions = setCondition(status.conditions, cond('ReconcilerError', `Error seen: ${(err as Error).message}`));
    await writeStatus(d.store, sb, status);
    throw err;
  }
  status.replicas = 1;
  status.selector = `${LABEL_SANDBOX_NAME_HASH}=${nameHash(name)}`;
  if (w.podIPs.length) status.podIPs = w.podIPs; else delete status.podIPs;
  if (w.nodeName) status.nodeName = w.nodeName; else delete status.nodeName;
  if (w.service) {
    status.service = w.service;
    status.serviceFQDN = `${w.service}.${namespace}.svc.${d.clusterDomain ?? DEFAULT_CLUSTER_DOMAIN}`;
  }
  status.conditions = setCondition(status.conditions, suspended('NotSuspended', 'Sandbox is not suspended'));
  if (w.scheduled) {
    // Copied verbatim (the scheduler's own reasons, e.g. Unschedulable), so not a declared reason.
    const { since: _since, ...scheduled } = w.scheduled;
    const c: Condition = { type: 'PodScheduled', ...scheduled, lastTransitionTime: rfc3339(now), observedGeneration: sb.metadata.generation };
    status.conditions = setCondition(status.conditions, c);
  }
  if (w.phase === 'Succeeded' || w.phase === 'Failed') {
    const reason = w.phase === 'Succeeded' ? 'PodSucceeded' : 'PodFailed';
    // The substrate says how it ended: upstream's words on Kubernetes, the cause (out of
    // memory, exit code) on the local engine.
    status.conditions = setCondition(status.conditions, cond(reason, w.message));
    status.conditions = setCondition(status.conditions, newCondition(SandboxConditions.Finished, reason, w.message, { now, observedGeneration: sb.metadata.generation }));
  } else {
    // A required Service is part of readiness: "Pod is Ready; Service Exists".
    const serviceRequired = sb.spec.service === true;
    const message = w.message + (serviceRequired ? (w.service ? '; Service Exists' : '; Service does not exist') : '');
    const ready = w.ready && (!serviceRequired || !!w.service);
    status.conditions = setCondition(status.conditions, ready ? cond('DependenciesReady', message) : cond('DependenciesNotReady', message));
    status.conditions = removeCondition(status.conditions, 'Finished');
  }
  // A Pod bound but not Ready yet: its binding alone waits to be reported with its readiness, if
  // that comes soon, so that the two make one status write. (An unschedulable Pod is reported at
  // once; a bound one at the latest STATUS_SETTLE_MS after its binding.)
  const bound = w.scheduled?.status === 'True' && !w.ready && w.phase !== 'Succeeded' && w.phase !== 'Failed';
  const hold = bound ? settleHold(w.scheduled!.since, now, requeue) : undefined;
  if (hold && isDeepStrictEqual(withoutBinding(sb.status), withoutBinding(status))) return hold;
  await writeStatus(d.store, sb, status);
  return requeue;
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
