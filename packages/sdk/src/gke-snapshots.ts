// Memory snapshots of a sandbox on GKE: Pod snapshots (podsnapshot.gke.io/v1), as upstream's
// Python client (k8s_agent_sandbox.gke_extensions.snapshots) takes them. A snapshot is asked for
// with a PodSnapshotManualTrigger naming the sandbox's Pod; GKE's snapshot controller reports
// Triggered=True/Complete with the PodSnapshot it made (status.snapshotCreated.name, the
// snapshot's id), or Triggered=False/Failed|Error. PodSnapshots carry the sandbox's name-hash
// label. A Pod that GKE started from a snapshot has the condition PodRestored=True naming it.
import { randomBytes } from 'node:crypto';
import { LABEL_SANDBOX_NAME_HASH, findCondition, nameHash } from '@asb/api';
import { readKubeApiError } from '@asb/kube';
import { InvalidError, NotFoundError, SandboxError } from './errors.ts';
import type { KubernetesCluster, Obj } from './kube-cluster.ts';
import type { SnapshotInfo, SnapshotStore } from './snapshots.ts';

export const PODSNAPSHOT_GROUP = 'podsnapshot.gke.io';
const TRIGGER = { group: PODSNAPSHOT_GROUP, version: 'v1', plural: 'podsnapshotmanualtriggers' };
const SNAPSHOT = { group: PODSNAPSHOT_GROUP, version: 'v1', plural: 'podsnapshots' };
const TIMEOUT_MS = 180_000;

const condition = (o: Obj | undefined, type: string) => findCondition(o?.status?.conditions, type);

/** `<base, 38 chars at most>-<YYYYmmdd-HHMMSS>-<8 hex>`, as upstream's client names triggers. */
export function triggerName(base: string, now = new Date()): string {
  const safe =
    base
      .toLowerCase()
      .replace(/_/g, '-')
      .slice(0, 38)
      .replace(/^-+|-+$/g, '') || 'snap';
  const t = now.toISOString();
  return `${safe}-${t.slice(0, 10).replace(/-/g, '')}-${t.slice(11, 19).replace(/:/g, '')}-${randomBytes(4).toString('hex')}`;
}

export class GkePodSnapshots implements SnapshotStore {
  /** The triggers this handle made (deleted with the sandbox, as upstream's terminate() does). */
  readonly triggers: string[] = [];

  constructor(
    private readonly cluster: KubernetesCluster,
    private readonly namespace: string,
    private readonly sandbox: string,
    private readonly podName: () => Promise<string>,
  ) {}

  private info(o: Obj): SnapshotInfo {
    // (A PodSnapshot does not say why it was taken: a listed one reads as manual.)
    return {
      id: o.metadata.name,
      namespace: this.namespace,
      sandbox: this.sandbox,
      createdAt: o.metadata.creationTimestamp ?? '',
      reason: 'manual',
    };
  }

  /** This sandbox's PodSnapshots, newest first (ready or not). */
  async list(): Promise<SnapshotInfo[]> {
    let res: { items: Obj[] };
    try {
      res = (await this.cluster.api.listNamespacedCustomObject({
        ...SNAPSHOT,
        namespace: this.namespace,
        labelSelector: `${LABEL_SANDBOX_NAME_HASH}=${nameHash(this.sandbox)}`,
      })) as { items: Obj[] };
    } catch (err) {
      throw this.apiError(err, 'list PodSnapshots');
    }
    return res.items
      .sort((a, b) => Date.parse(b.metadata.creationTimestamp ?? '') - Date.parse(a.metadata.creationTimestamp ?? ''))
      .map((o) => this.info(o));
  }

  async get(id: string): Promise<SnapshotInfo> {
    const o = await this.cluster.get(SNAPSHOT, this.namespace, id).catch((err) => {
      throw this.apiError(err, `get PodSnapshot ${id}`);
    });
    if (!o) throw new NotFoundError(`no PodSnapshot "${id}" in namespace ${this.namespace}`);
    return this.info(o);
  }

  create(): Promise<SnapshotInfo> {
    return this.take('snap');
  }

  /** Asks GKE for a snapshot of the sandbox's Pod and waits until it is made. */
  async take(base: string): Promise<SnapshotInfo> {
    const name = triggerName(base);
    const body = {
      apiVersion: `${PODSNAPSHOT_GROUP}/v1`,
      kind: 'PodSnapshotManualTrigger',
      metadata: { name, namespace: this.namespace },
      spec: { targetPod: await this.podName() },
    };
    try {
      await this.cluster.api.createNamespacedCustomObject({ ...TRIGGER, namespace: this.namespace, body });
    } catch (err) {
      throw this.apiError(err, `create PodSnapshotManualTrigger ${name}`);
    }
    this.triggers.push(name);
    const done = await this.cluster.waitFor<Obj>(
      TRIGGER,
      this.namespace,
      name,
      (t) => {
        if (!t)
          throw new SandboxError(
            `PodSnapshotManualTrigger ${name} was deleted before it completed`,
            409,
            'SnapshotFailed',
          );
        const c = condition(t, 'Triggered');
        if (c?.status === 'False' && (c.reason === 'Failed' || c.reason === 'Error'))
          throw new SandboxError(`snapshot failed: ${c.message ?? c.reason}`, 500, 'SnapshotFailed');
        return c?.status === 'True' && c.reason === 'Complete' && typeof t.status?.snapshotCreated?.name === 'string';
      },
      TIMEOUT_MS,
      `PodSnapshotManualTrigger ${name} to complete`,
    );
    const id = done.status?.snapshotCreated?.name ?? '';
    const snap: Obj | undefined = await this.cluster.get(SNAPSHOT, this.namespace, id).catch(() => undefined);
    const info = snap
      ? this.info(snap)
      : {
          id,
          namespace: this.namespace,
          sandbox: this.sandbox,
          createdAt: condition(done, 'Triggered')?.lastTransitionTime ?? '',
          reason: 'manual' as const,
        };
    return base.startsWith('suspend-') ? { ...info, reason: 'suspend' } : info;
  }

  async delete(id: string): Promise<void> {
    try {
      await this.cluster.api.deleteNamespacedCustomObject({ ...SNAPSHOT, namespace: this.namespace, name: id });
    } catch (err) {
      if ((err as { code?: number }).code === 404)
        throw new NotFoundError(`no PodSnapshot "${id}" in namespace ${this.namespace}`);
      throw this.apiError(err, `delete PodSnapshot ${id}`);
    }
  }

  /** The triggers this handle made; a cluster that lost them already is fine. */
  async deleteTriggers(): Promise<void> {
    for (const name of this.triggers.splice(0)) {
      await this.cluster.api
        .deleteNamespacedCustomObject({ ...TRIGGER, namespace: this.namespace, name })
        .catch(() => undefined);
    }
  }

  /** Whether the running Pod was started from snapshot `id` (its PodRestored condition names it). */
  static restoredFrom(
    pod: { status?: { conditions?: Array<{ type: string; status: string; message?: string }> } } | undefined,
    id: string,
  ): boolean {
    const c = pod?.status?.conditions?.find((x) => x.type === 'PodRestored');
    return c?.status === 'True' && (c.message ?? '').includes(id);
  }

  private apiError(err: unknown, what: string): Error {
    if (err instanceof SandboxError) return err;
    const f = readKubeApiError(err);
    // The API server has no such resource: not a GKE cluster with Pod snapshots enabled.
    if (f.noSuchResource) {
      return new InvalidError(
        `${what}: this cluster has no Pod snapshot API (${PODSNAPSHOT_GROUP}/v1); memory snapshots on Kubernetes need GKE Pod snapshots`,
      );
    }
    return new SandboxError(`${what}: ${f.message}`, f.code ?? 500, 'SnapshotFailed');
  }
}
