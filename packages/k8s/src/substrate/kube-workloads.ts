// The workloads behind Sandboxes on Kubernetes: a Pod per Sandbox, a PVC per volumeClaimTemplate
// and, when asked for, a headless Service, made as upstream's Sandbox reconciler makes them (names,
// labels, annotations, controller references: ../../../../shared/reference, section 2.1). The
// garbage collector removes them with their Sandbox, so release has nothing to do.
import * as k8s from '@kubernetes/client-node';
import {
  ANNOTATION_PROPAGATED_ANNOTATIONS,
  ANNOTATION_PROPAGATED_LABELS,
  ANNOTATION_POD_NAME,
  LABEL_CREATED_BY,
  LABEL_SANDBOX_NAME_HASH,
  LABEL_CLAIM_UID,
  LABEL_SANDBOX_TEMPLATE_REF_HASH,
  LABEL_WARM_POOL_SANDBOX,
  isSystemReservedKey,
  nameHash,
  normalizeCreatedBy,
  type Sandbox,
} from '@asb/api';
import {
  MultiplePodsError,
  controllerRef,
  type StopState,
  type WorkloadChange,
  type WorkloadState,
  type Workloads,
} from '@asb/lifecycle';
import { mapApiError } from './kube-store.ts';
import { retryTransient } from './transient.ts';

const FIELD_MANAGER = 'sandbox-controller';

/** The pod that backs a Sandbox: the `pod-name` annotation (a warm pool member keeps its pod's
 *  name through adoption), else the Sandbox's name. */
export function podNameOf(sb: Sandbox): string {
  return sb.metadata.annotations?.[ANNOTATION_POD_NAME] ?? sb.metadata.name!;
}

/** Labels the extensions put on a Sandbox that its Pod carries too (upstream's
 *  computeExtensionPodLabels): the claim's uid while a claim owns it (v1.0; v0.5 left it off the
 *  Pod), the pool's while a pool owns it, the template's while a pool or claim does. */
function extensionPodLabels(sb: Sandbox): Record<string, string> {
  const owner = sb.metadata.ownerReferences?.find((r) => r.controller);
  if (!owner || !owner.apiVersion.startsWith('extensions.agents.x-k8s.io/')) return {};
  const out: Record<string, string> = {};
  const l = sb.metadata.labels ?? {};
  if (owner.kind === 'SandboxClaim' && l[LABEL_CLAIM_UID]) out[LABEL_CLAIM_UID] = l[LABEL_CLAIM_UID];
  if (owner.kind === 'SandboxWarmPool' && l[LABEL_WARM_POOL_SANDBOX])
    out[LABEL_WARM_POOL_SANDBOX] = l[LABEL_WARM_POOL_SANDBOX];
  if (l[LABEL_SANDBOX_TEMPLATE_REF_HASH]) out[LABEL_SANDBOX_TEMPLATE_REF_HASH] = l[LABEL_SANDBOX_TEMPLATE_REF_HASH];
  return out;
}

/** created-by on the Pod, as upstream's metrics normalise it. */
function createdByLabel(sb: Sandbox): Record<string, string> {
  const v = sb.metadata.labels?.[LABEL_CREATED_BY];
  if (!v) return {};
  return { [LABEL_CREATED_BY]: normalizeCreatedBy(v) };
}

const userKeys = (m: Record<string, string> | undefined) =>
  Object.fromEntries(Object.entries(m ?? {}).filter(([k]) => !isSystemReservedKey(k)));

/** The Pod upstream's controller creates for a Sandbox. Pure: tested without a cluster. The
 *  template's labels and annotations are copied but for system-reserved keys, which only the
 *  controllers set. */
export function podFor(sb: Sandbox): k8s.V1Pod {
  const tpl = sb.spec.podTemplate;
  const userLabels = userKeys(tpl.metadata?.labels);
  const userAnnotations = userKeys(tpl.metadata?.annotations);
  const labels = {
    ...userLabels,
    ...extensionPodLabels(sb),
    ...createdByLabel(sb),
    [LABEL_SANDBOX_NAME_HASH]: nameHash(sb.metadata.name!),
  };
  const annotations: Record<string, string> = { ...userAnnotations };
  const propagatedLabels = Object.keys(userLabels).sort();
  const propagatedAnnotations = Object.keys(userAnnotations).sort();
  if (propagatedLabels.length) annotations[ANNOTATION_PROPAGATED_LABELS] = propagatedLabels.join(',');
  if (propagatedAnnotations.length) annotations[ANNOTATION_PROPAGATED_ANNOTATIONS] = propagatedAnnotations.join(',');
  const spec = structuredClone(tpl.spec) as unknown as k8s.V1PodSpec;
  // One PVC volume per volumeClaimTemplate, replacing a volume of the same name.
  for (const vct of sb.spec.volumeClaimTemplates ?? []) {
    const volume: k8s.V1Volume = {
      name: vct.metadata.name,
      persistentVolumeClaim: { claimName: `${vct.metadata.name}-${sb.metadata.name}` },
    };
    spec.volumes = [...(spec.volumes ?? []).filter((v) => v.name !== vct.metadata.name), volume];
  }
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: podNameOf(sb),
      namespace: sb.metadata.namespace,
      labels,
      annotations,
      ownerReferences: [controllerRef(sb)],
    },
    spec,
  };
}

/** Label keys the controller may have put on a Pod and so may take off again. */
const MANAGED_POD_LABELS = [
  LABEL_CLAIM_UID,
  LABEL_WARM_POOL_SANDBOX,
  LABEL_SANDBOX_TEMPLATE_REF_HASH,
  LABEL_CREATED_BY,
];

/**
 * The metadata patch that brings an existing Pod in line with its Sandbox (after an adoption, or
 * a template's labels changed), as upstream's updatePodMetadata: the Sandbox's labels and
 * annotations are set, and those the controller put there before (the propagated-keys
 * annotations say which) but no longer wants are removed. Undefined when nothing changes.
 */
export function podMetadataPatch(
  pod: k8s.V1Pod,
  sb: Sandbox,
): { labels: Record<string, string | null>; annotations: Record<string, string | null> } | undefined {
  const want = podFor(sb).metadata!;
  const have = { labels: pod.metadata?.labels ?? {}, annotations: pod.metadata?.annotations ?? {} };
  const listed = (key: string) => (have.annotations[key] ?? '').split(',').filter(Boolean);
  const patch = { labels: {} as Record<string, string | null>, annotations: {} as Record<string, string | null> };
  const sync = (kind: 'labels' | 'annotations', removable: string[]) => {
    const w = want[kind] ?? {};
    for (const [k, v] of Object.entries(w)) if (have[kind][k] !== v) patch[kind][k] = v;
    for (const k of removable) if (have[kind][k] !== undefined && w[k] === undefined) patch[kind][k] = null;
  };
  sync('labels', [...listed(ANNOTATION_PROPAGATED_LABELS), ...MANAGED_POD_LABELS]);
  sync('annotations', [
    ...listed(ANNOTATION_PROPAGATED_ANNOTATIONS),
    ANNOTATION_PROPAGATED_LABELS,
    ANNOTATION_PROPAGATED_ANNOTATIONS,
  ]);
  return Object.keys(patch.labels).length || Object.keys(patch.annotations).length ? patch : undefined;
}

export function pvcsFor(sb: Sandbox): k8s.V1PersistentVolumeClaim[] {
  return (sb.spec.volumeClaimTemplates ?? []).map((vct) => ({
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: {
      name: `${vct.metadata.name}-${sb.metadata.name}`,
      namespace: sb.metadata.namespace,
      labels: { ...vct.metadata.labels, [LABEL_SANDBOX_NAME_HASH]: nameHash(sb.metadata.name!) },
      ...(vct.metadata.annotations ? { annotations: vct.metadata.annotations } : {}),
      ownerReferences: [controllerRef(sb) as k8s.V1OwnerReference],
    },
    spec: vct.spec as unknown as k8s.V1PersistentVolumeClaimSpec,
  }));
}

export function serviceFor(sb: Sandbox): k8s.V1Service {
  const hash = nameHash(sb.metadata.name!);
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name: sb.metadata.name!,
      namespace: sb.metadata.namespace,
      labels: { [LABEL_SANDBOX_NAME_HASH]: hash },
      ownerReferences: [controllerRef(sb)],
    },
    spec: { clusterIP: 'None', selector: { [LABEL_SANDBOX_NAME_HASH]: hash } },
  };
}

/** A pod's phase and readiness as the lifecycle reads them. */
export function stateOfPod(pod: k8s.V1Pod): WorkloadState {
  const phase = (pod.status?.phase ?? 'Pending') as WorkloadState['phase'];
  const ready = pod.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True';
  const podIPs = (pod.status?.podIPs ?? []).map((p) => p.ip).filter((ip): ip is string => !!ip);
  // upstream's messages, word for word (computeReadyCondition).
  const message =
    phase === 'Succeeded'
      ? 'Pod completed successfully'
      : phase === 'Failed'
        ? 'Pod failed'
        : ready && podIPs.length
          ? 'Pod is Ready'
          : ready
            ? 'Pod is Ready but has no podIPs yet'
            : phase === 'Running'
              ? 'Pod is Running but not Ready'
              : `Pod exists with phase: ${phase}`;
  const sc = pod.status?.conditions?.find((c) => c.type === 'PodScheduled');
  const scheduled: WorkloadState['scheduled'] = sc
    ? {
        status: sc.status as 'True' | 'False' | 'Unknown',
        reason: sc.reason || (sc.status === 'True' ? 'PodScheduled' : 'PodSchedulingUnknown'),
        message: sc.message ?? '',
        ...(sc.lastTransitionTime ? { since: new Date(sc.lastTransitionTime).toISOString() } : {}),
      }
    : {
        status: 'Unknown',
        reason: 'PodSchedulingUnknown',
        message: 'Pod has not reported a PodScheduled condition yet',
      };
  return {
    phase,
    ready: ready && podIPs.length > 0,
    message,
    podIPs,
    scheduled,
    ...(pod.spec?.nodeName ? { nodeName: pod.spec.nodeName } : {}),
  };
}

/**
 * What a pod's watch event says of its Sandbox: settled when the pod is Ready, has ended or is
 * gone (reported at once; its earlier changes may wait to be reported together).
 */
export function podChange(pod: k8s.V1Pod, deleted: boolean): WorkloadChange {
  const { ready, phase } = stateOfPod(pod);
  return { settled: deleted || ready || phase === 'Succeeded' || phase === 'Failed' };
}

export class KubeWorkloads implements Workloads {
  private readonly core: k8s.CoreV1Api;
  private listeners: Array<(ns: string, name: string, change?: WorkloadChange) => void> = [];
  private informer?: k8s.Informer<k8s.V1Pod> & k8s.ObjectCache<k8s.V1Pod>;

  constructor(private readonly kc: k8s.KubeConfig) {
    this.core = kc.makeApiClient(k8s.CoreV1Api);
  }

  onChange(fn: (ns: string, name: string, change?: WorkloadChange) => void): void {
    this.listeners.push(fn);
  }

  async ensure(sb: Sandbox): Promise<WorkloadState> {
    const ns = sb.metadata.namespace;
    for (const pvc of pvcsFor(sb))
      await this.createIfMissing(
        () =>
          this.core.createNamespacedPersistentVolumeClaim({ namespace: ns, body: pvc, fieldManager: FIELD_MANAGER }),
        `PVC ${pvc.metadata!.name}`,
      );
    const service = await this.ensureService(sb);
    // More than one pod controlled by this Sandbox (a user's copy given its owner reference, a
    // controller bug): none is picked, none is created, and the Sandbox says so (upstream's).
    const owned = await this.controlledPods(sb);
    if (owned > 1) throw new MultiplePodsError(owned);
    // A pod the cache does not show is created at once (its informer has listed them all): when it
    // exists after all, the create says so and the pod is read. This saves a GET per new Sandbox.
    let pod = this.informer ? this.informer.get(podNameOf(sb), ns) : await this.getPod(ns, podNameOf(sb));
    if (!pod) {
      try {
        pod = await this.core.createNamespacedPod({ namespace: ns, body: podFor(sb), fieldManager: FIELD_MANAGER });
      } catch (err) {
        if ((err as { code?: number }).code !== 409) throw mapApiError(err, `create Pod ${ns}/${podNameOf(sb)}`);
        pod = await this.getPod(ns, podNameOf(sb));
        if (!pod) return { phase: 'Pending', ready: false, message: 'Pod is being replaced', podIPs: [] };
      }
    }
    const owner = pod.metadata?.ownerReferences?.find((r) => r.controller);
    if (owner && owner.uid !== sb.metadata.uid) {
      throw new Error(
        `Pod ${ns}/${pod.metadata!.name} is controlled by ${owner.kind} ${owner.name}, not by this Sandbox`,
      );
    }
    const patch = podMetadataPatch(pod, sb);
    if (patch) {
      try {
        pod = await this.core.patchNamespacedPod(
          { namespace: ns, name: pod.metadata!.name!, body: { metadata: patch }, fieldManager: FIELD_MANAGER },
          k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
        );
      } catch (err) {
        throw mapApiError(err, `update the labels of Pod ${ns}/${pod.metadata!.name}`);
      }
    }
    return { ...stateOfPod(pod), ...(service ? { service } : {}) };
  }

  async stop(sb: Sandbox, opts: { suspend?: boolean } = {}): Promise<StopState> {
    const ns = sb.metadata.namespace;
    const name = podNameOf(sb);
    // Suspended, the Service stays (upstream's); expired, it goes with the pod.
    const service = opts.suspend ? await this.ensureService(sb) : undefined;
    if (!opts.suspend) await this.deleteOwnService(sb);
    const kept = service ? { service } : {};
    const pod = await this.getPod(ns, name);
    if (!pod) return { stage: 'gone', ...kept };
    // A pod by this name that is not this Sandbox's (a user's, another controller's) is refused,
    // never deleted: a Sandbox must not be a way to delete pods its owner could not.
    const owner = pod.metadata?.ownerReferences?.find((r) => r.controller);
    if (owner?.uid !== sb.metadata.uid) return { stage: 'notOwned', ...kept };
    if (!pod.metadata?.deletionTimestamp) {
      try {
        await this.core.deleteNamespacedPod({
          namespace: ns,
          name,
          body: { preconditions: { uid: pod.metadata!.uid } },
        });
      } catch (err) {
        if ((err as { code?: number }).code !== 404) throw mapApiError(err, `delete Pod ${ns}/${name}`);
      }
    }
    const still = await this.getPod(ns, name);
    if (!still) return { stage: 'gone', ...kept };
    return { stage: 'ending', scheduled: stateOfPod(still).scheduled, ...kept };
  }

  /** spec.service true: its headless Service exists (answers its name); false: ours is deleted. */
  private async ensureService(sb: Sandbox): Promise<string | undefined> {
    if (sb.spec.service === true) {
      const svc = serviceFor(sb);
      await this.createIfMissing(
        () =>
          this.core.createNamespacedService({
            namespace: sb.metadata.namespace,
            body: svc,
            fieldManager: FIELD_MANAGER,
          }),
        `Service ${svc.metadata!.name}`,
      );
      return svc.metadata!.name;
    }
    if (sb.spec.service === false) await this.deleteOwnService(sb);
    return undefined;
  }

  /** Owned Pods, PVCs and Services follow their Sandbox by garbage collection. */
  async release(): Promise<void> {}

  /** Pods labelled for a Sandbox: each change reconciles the Sandbox that controls the pod. */
  async start(): Promise<void> {
    const informer = k8s.makeInformer<k8s.V1Pod>(
      this.kc,
      '/api/v1/pods',
      () => this.core.listPodForAllNamespaces({ labelSelector: LABEL_SANDBOX_NAME_HASH }),
      LABEL_SANDBOX_NAME_HASH,
    );
    const changed = (deleted: boolean) => (pod: k8s.V1Pod) => {
      const owner = pod.metadata?.ownerReferences?.find((r) => r.controller && r.kind === 'Sandbox');
      if (!owner) return;
      const change = podChange(pod, deleted);
      for (const fn of this.listeners) fn(pod.metadata!.namespace!, owner.name, change);
    };
    informer.on('add', changed(false));
    informer.on('update', changed(false));
    informer.on('delete', changed(true));
    informer.on('error', () => setTimeout(() => void informer.start().catch(() => undefined), 1000));
    await retryTransient(() => informer.start());
    this.informer = informer;
  }

  async stopInformers(): Promise<void> {
    await this.informer?.stop().catch(() => undefined);
  }

  /** From the pod informer's cache when it holds the pod (it watches the pods we label); a miss
   *  asks the API server, so a pod created a moment ago, or a foreign one, is not taken for absent. */
  /** How many pods carry this Sandbox's name-hash label and name it their controller. */
  private async controlledPods(sb: Sandbox): Promise<number> {
    const hash = nameHash(sb.metadata.name!);
    const pods = this.informer
      ? this.informer.list(sb.metadata.namespace)
      : (
          await this.core.listNamespacedPod({
            namespace: sb.metadata.namespace,
            labelSelector: `${LABEL_SANDBOX_NAME_HASH}=${hash}`,
          })
        ).items;
    return pods.filter(
      (p) =>
        p.metadata?.labels?.[LABEL_SANDBOX_NAME_HASH] === hash &&
        p.metadata.ownerReferences?.some((r) => r.controller && r.uid === sb.metadata.uid),
    ).length;
  }

  private async getPod(namespace: string, name: string): Promise<k8s.V1Pod | undefined> {
    const cached = this.informer?.get(name, namespace);
    if (cached) return cached;
    try {
      return await this.core.readNamespacedPod({ namespace, name });
    } catch (err) {
      if ((err as { code?: number }).code === 404) return undefined;
      throw mapApiError(err, `get Pod ${namespace}/${name}`);
    }
  }

  private async createIfMissing(create: () => Promise<unknown>, what: string): Promise<void> {
    try {
      await create();
    } catch (err) {
      if ((err as { code?: number }).code !== 409) throw mapApiError(err, `create ${what}`);
    }
  }

  /** Deletes the Sandbox's Service if it is its own (another's by the name is left alone). */
  private async deleteOwnService(sb: Sandbox): Promise<void> {
    const ns = sb.metadata.namespace;
    const name = sb.metadata.name!;
    try {
      const svc = await this.core.readNamespacedService({ namespace: ns, name });
      if (svc.metadata?.ownerReferences?.some((r) => r.controller && r.uid === sb.metadata.uid))
        await this.core.deleteNamespacedService({ namespace: ns, name });
    } catch (err) {
      if ((err as { code?: number }).code !== 404) throw mapApiError(err, `delete Service ${ns}/${name}`);
    }
  }
}
