// A stand-in for GKE's Pod snapshot controller, for tests on our control plane (no cluster here
// has GKE's): it answers each PodSnapshotManualTrigger with a PodSnapshot labelled like the
// target Pod, and Triggered=True/Complete naming it (or Triggered=False/Failed when the Pod is
// missing); a Pod started again for a sandbox that has snapshots gets PodRestored=True naming the
// newest, as GKE's restore does. It is the other side of the protocol, not the SDK under test.
import * as k8s from '@kubernetes/client-node';

const G = { group: 'podsnapshot.gke.io', version: 'v1' };
const HASH = 'agents.x-k8s.io/sandbox-name-hash';
const now = () => new Date().toISOString().replace(/\.\d+Z$/, 'Z');

export async function startGkeStandIn(kubeconfig: string): Promise<{ stop(): void }> {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(kubeconfig);
  const api = kc.makeApiClient(k8s.CustomObjectsApi);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const seenPods = new Set<string>();

  const onTrigger = async (t: any) => {
    if (t.status?.conditions?.length) return;
    const ns = t.metadata.namespace;
    const pod = await core.readNamespacedPod({ namespace: ns, name: t.spec.targetPod }).catch(() => undefined);
    let status: object;
    if (!pod) {
      status = {
        conditions: [
          {
            type: 'Triggered',
            status: 'False',
            reason: 'Failed',
            message: `pod ${t.spec.targetPod} not found`,
            lastTransitionTime: now(),
          },
        ],
      };
    } else {
      const id = t.metadata.uid as string; // (one snapshot per trigger, however often this step is retried)
      await api
        .createNamespacedCustomObject({
          ...G,
          plural: 'podsnapshots',
          namespace: ns,
          body: {
            apiVersion: 'podsnapshot.gke.io/v1',
            kind: 'PodSnapshot',
            metadata: { name: id, labels: { [HASH]: pod.metadata!.labels![HASH]! } },
            spec: { sourcePod: pod.metadata!.name },
          },
        })
        .catch((err) => {
          if ((err as { code?: number }).code !== 409) throw err;
        });
      status = {
        conditions: [
          {
            type: 'Triggered',
            status: 'True',
            reason: 'Complete',
            message: 'snapshot taken',
            lastTransitionTime: now(),
          },
        ],
        snapshotCreated: { name: id },
      };
    }
    await api.patchNamespacedCustomObjectStatus(
      { ...G, plural: 'podsnapshotmanualtriggers', namespace: ns, name: t.metadata.name, body: { status } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
  };

  /** Pods restored from a snapshot, by uid: the snapshot's name. */
  const restored = new Map<string, string>();
  const onPod = async (p: k8s.V1Pod) => {
    const hash = p.metadata?.labels?.[HASH];
    if (!hash) return;
    const uid = p.metadata!.uid!;
    if (!seenPods.has(uid)) {
      seenPods.add(uid);
      const snaps = (
        await api.listNamespacedCustomObject({
          ...G,
          plural: 'podsnapshots',
          namespace: p.metadata!.namespace!,
          labelSelector: `${HASH}=${hash}`,
        })
      ).items as any[];
      // A snapshot taken of an earlier Pod of this sandbox: this one is its restore.
      const newest = snaps
        .filter(
          (s) =>
            s.spec.sourcePod === p.metadata!.name &&
            Date.parse(s.metadata.creationTimestamp) <= new Date(p.metadata!.creationTimestamp!).getTime(),
        )
        .sort((a, b) => Date.parse(b.metadata.creationTimestamp) - Date.parse(a.metadata.creationTimestamp))[0];
      if (newest) restored.set(uid, newest.metadata.name);
    }
    const snapshot = restored.get(uid);
    // KWOK rewrites the conditions as it plays the Pod's start: the condition is put back until
    // it stays (GKE sets it before the containers start, so it is there once the Pod is Ready).
    if (!snapshot || p.status?.conditions?.some((c) => c.type === 'PodRestored')) return;
    await core.patchNamespacedPodStatus(
      {
        namespace: p.metadata!.namespace!,
        name: p.metadata!.name!,
        body: {
          status: {
            conditions: [
              {
                type: 'PodRestored',
                status: 'True',
                reason: 'Restored',
                message: `restored from PodSnapshot ${snapshot}`,
                lastTransitionTime: now(),
              },
            ],
          },
        },
      },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.StrategicMergePatch),
    );
  };

  // As a controller does: informers (list, then watch; started again when they fail, e.g. with
  // 429 while a new CRD's storage initialises), and a failed step retried.
  const retried = async (fn: () => Promise<void>) => {
    for (let i = 0; ; i++) {
      try {
        return await fn();
      } catch (err) {
        if (i >= 40) {
          process.stderr.write(`gke stand-in: ${(err as Error).message}\n`);
          return;
        }
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  };
  const informers: Array<k8s.Informer<any>> = [];
  let stopped = false;
  const inform = async (path: string, list: () => Promise<any>, fn: (o: any) => Promise<void>) => {
    const informer = k8s.makeInformer(kc, path, list);
    informer.on('add', (o) => void retried(() => fn(o)));
    informer.on('update', (o) => void retried(() => fn(o)));
    // (Not after stop: a restart loop would keep the test process alive once the cluster is gone.)
    informer.on('error', () => {
      if (!stopped)
        setTimeout(() => {
          if (!stopped) void informer.start().catch(() => undefined);
        }, 500).unref();
    });
    await retried(() => informer.start());
    informers.push(informer);
  };
  await inform(
    '/apis/podsnapshot.gke.io/v1/podsnapshotmanualtriggers',
    () => api.listClusterCustomObject({ ...G, plural: 'podsnapshotmanualtriggers' }),
    onTrigger,
  );
  await inform('/api/v1/pods', () => core.listPodForAllNamespaces(), onPod);
  return {
    stop: () => {
      stopped = true;
      for (const i of informers) void i.stop();
    },
  };
}
