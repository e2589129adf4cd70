// The local engine's own annotations for snapshots (upstream has none: on GKE, Pod snapshots are
// separate objects). In one place so that the service, the workloads and the CLI agree.
import { createHash } from 'node:crypto';
import type { Sandbox } from '@asb/api';

/** On a Sandbox: start its processes from this snapshot (set by suspend and by a fork; removed
 *  once the sandbox is running again). */
export const ANNOTATION_RESTORE_SNAPSHOT = 'sandbox.asb.dev/restore-snapshot';
/** On a SandboxTemplate: new sandboxes (pool members included) start from this snapshot. */
export const ANNOTATION_GOLDEN_SNAPSHOT = 'sandbox.asb.dev/golden-snapshot';
/** On a SandboxTemplate: snapshots kept per sandbox, oldest removed first (default 3). */
export const ANNOTATION_MAX_SNAPSHOTS = 'sandbox.asb.dev/max-snapshots';
export const DEFAULT_MAX_SNAPSHOTS = 3;

/** What a restore depends on: the pod spec (image, command, env, mounts) and the volumes' names.
 *  Labels and annotations are not in it: a claim's labels do not make a golden start unusable. */
export function runtimeSpecHash(sb: Sandbox): string {
  const vcts = (sb.spec.volumeClaimTemplates ?? []).map((v) => v.metadata.name);
  return createHash('sha256')
    .update(JSON.stringify({ pod: sb.spec.podTemplate.spec, vcts }))
    .digest('hex')
    .slice(0, 16);
}
