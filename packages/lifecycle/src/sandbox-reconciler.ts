// Sandbox reconciler (upstream 2.1): keeps the workload in line with the spec — running, suspended
// (operatingMode Suspended / replicas 0: processes end, volumes stay) or expired (shutdownTime:
// the workload goes, then shutdownPolicy Delete removes the object, Retain keeps it) — and reports
// what it sees in status.conditions.
import {
  LABEL_SANDBOX_NAME_HASH, SandboxConditions, findCondition, nameHash, newCondition, removeCondition, setCondition,
  type Sandbox, type SandboxStatus,
} from '@asb/api';
import type { Deps, Result } from './substrate.ts';
import { isDeleting, writeStatus } from './objects.ts';

export async function reconcileSandbox(d: Deps, namespace: string, name: string): Promise<Result> {
  const sb = await d.store.get('Sandbox', namespace, name);
  if (!sb) {
    // Deleted (by a user, its claim or its pool): the workload and its volumes go with it.
    await d.workloads.release(namespace, name);
    return {};
  }
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
  status.selector = `${LABEL_SANDBOX_NAME_HASH}=${nameHash(name)}`;

  // ---- suspended ----
  if (sb.spec.operatingMode === 'Suspended') {
    const gone = await d.workloads.stop(sb);
    status.replicas = 0;
    delete status.podIPs;
    status.conditions = setCondition(status.conditions, cond('SandboxSuspended', 'Sandbox is suspended'));
    status.conditions = setCondition(status.conditions, newCondition(SandboxConditions.Suspended,
      gone ? 'PodTerminated' : 'PodTerminating', gone ? 'Pod is terminated' : 'Pod is terminating', { now, observedGeneration: sb.metadata.generation }));
    status.conditions = removeCondition(status.conditions, 'Finished');
    await writeStatus(d.store, sb, status);
    return requeue;
  }

  // ---- running ----
  let w;
  try {
    w = await d.workloads.ensure(sb);
  } catch (err) {
    status.conditions = setCondition(status.conditions, cond('ReconcilerError', `Error seen: ${(err as Error).message}`));
    await writeStatus(d.store, sb, status);
    throw err;
  }
  status.replicas = 1;
  if (w.podIPs.length) status.podIPs = w.podIPs; else delete status.podIPs;
  if (w.phase === 'Succeeded' || w.phase === 'Failed') {
    const reason = w.phase === 'Succeeded' ? 'PodSucceeded' : 'PodFailed';
    status.conditions = setCondition(status.conditions, cond(reason, w.message));
    status.conditions = setCondition(status.conditions, newCondition(SandboxConditions.Finished, reason, w.message, { now, observedGeneration: sb.metadata.generation }));
  } else {
    status.conditions = setCondition(status.conditions, w.ready ? cond('DependenciesReady', 'Pod is Ready') : cond('DependenciesNotReady', w.message));
    status.conditions = removeCondition(status.conditions, 'Finished');
  }
  if (findCondition(status.conditions, 'Suspended')) {
    status.conditions = setCondition(status.conditions, newCondition(SandboxConditions.Suspended, 'NotSuspended', 'Sandbox is running', { now, observedGeneration: sb.metadata.generation }));
  }
  await writeStatus(d.store, sb, status);
  return requeue;
}

/** True when the Sandbox reports Ready. */
export function isSandboxReady(sb: Sandbox): boolean {
  return findCondition(sb.status?.conditions, 'Ready')?.status === 'True';
}
