// How a Sandbox is made from a SandboxTemplate: for a warm pool (upstream's pool reconciler) and
// for a cold claim (the claim reconciler), with the labels and annotations upstream puts on them.
import {
  ANNOTATION_SANDBOX_TEMPLATE_REF, LABEL_CLAIM_UID, LABEL_SANDBOX_POD_TEMPLATE_HASH, LABEL_SANDBOX_TEMPLATE_REF_HASH,
  LABEL_WARM_POOL_SANDBOX, nameHash,
  type Sandbox, type SandboxClaim, type SandboxTemplate, type SandboxWarmPool,
} from '@asb/api';
import { controllerRef } from './objects.ts';

type PodTemplate = Sandbox['spec']['podTemplate'];

/** Identifies a template's pod spec: pool members made from an older spec are stale. */
export function podTemplateHash(template: SandboxTemplate): string {
  return nameHash(JSON.stringify(template.spec.podTemplate));
}

/** Secure defaults upstream applies to every template-derived pod spec. */
function secureDefaults(pod: PodTemplate): PodTemplate {
  const spec = { ...pod.spec } as PodTemplate['spec'] & { automountServiceAccountToken?: boolean };
  if (spec.automountServiceAccountToken === undefined) spec.automountServiceAccountToken = false;
  return { ...pod, spec };
}

function withPodLabels(pod: PodTemplate, labels: Record<string, string>, annotations: Record<string, string> = {}): PodTemplate {
  const md = pod.metadata ?? {};
  const mergedAnn = { ...md.annotations, ...annotations };
  return {
    ...pod,
    metadata: {
      labels: { ...md.labels, ...labels },
      ...(Object.keys(mergedAnn).length ? { annotations: mergedAnn } : {}),
    },
  };
}

export function poolLabels(pool: SandboxWarmPool, template: SandboxTemplate): Record<string, string> {
  return {
    [LABEL_WARM_POOL_SANDBOX]: nameHash(pool.metadata.name!),
    [LABEL_SANDBOX_TEMPLATE_REF_HASH]: nameHash(template.metadata.name!),
    [LABEL_SANDBOX_POD_TEMPLATE_HASH]: podTemplateHash(template),
  };
}

/** A warm pool member: `generateName: <pool>-`, owned by the pool, labelled for adoption. */
export function sandboxForPool(pool: SandboxWarmPool, template: SandboxTemplate): Sandbox {
  const labels = poolLabels(pool, template);
  return {
    apiVersion: 'agents.x-k8s.io/v1beta1',
    kind: 'Sandbox',
    metadata: {
      generateName: `${pool.metadata.name!.slice(0, 58)}-`,
      namespace: pool.metadata.namespace,
      labels,
      annotations: { [ANNOTATION_SANDBOX_TEMPLATE_REF]: template.metadata.name! },
      ownerReferences: [controllerRef(pool)],
    },
    spec: {
      podTemplate: secureDefaults(withPodLabels(structuredClone(template.spec.podTemplate), labels)),
      ...(template.spec.volumeClaimTemplates ? { volumeClaimTemplates: structuredClone(template.spec.volumeClaimTemplates) } : {}),
      ...(template.spec.service !== undefined ? { service: template.spec.service } : {}),
      operatingMode: 'Running',
      shutdownPolicy: 'Retain',
    },
  };
}

export type EnvInjection = { ok: true; podTemplate: PodTemplate } | { ok: false; message: string };

/** A claim's env per the template's envVarsInjectionPolicy (Disallowed, Allowed: new names only, Overrides). */
export function injectEnv(pod: PodTemplate, claim: SandboxClaim, template: SandboxTemplate): EnvInjection {
  const env = claim.spec.env;
  if (!env?.length) return { ok: true, podTemplate: pod };
  const policy = template.spec.envVarsInjectionPolicy ?? 'Disallowed';
  if (policy === 'Disallowed') return { ok: false, message: `SandboxTemplate "${template.metadata.name}" does not allow env injection (envVarsInjectionPolicy: Disallowed)` };
  const out = structuredClone(pod);
  for (const e of env) {
    const container = e.containerName ? out.spec.containers.find((c) => c.name === e.containerName) : out.spec.containers[0];
    if (!container) return { ok: false, message: `env ${e.name}: no container named "${e.containerName}"` };
    const list = (container.env ??= []);
    const i = list.findIndex((x) => x.name === e.name);
    if (i >= 0 && policy === 'Allowed') return { ok: false, message: `env ${e.name} is set by the template; envVarsInjectionPolicy Allowed adds new names only (Overrides replaces)` };
    if (i >= 0) list[i] = { name: e.name, value: e.value };
    else list.push({ name: e.name, value: e.value });
  }
  return { ok: true, podTemplate: out };
}

/** Pod labels and annotations a claim adds: its uid, the template's hash, additionalPodMetadata. */
export function claimPodMetadata(claim: SandboxClaim, template: SandboxTemplate): { labels: Record<string, string>; annotations: Record<string, string> } {
  return {
    labels: { ...claim.spec.additionalPodMetadata?.labels, [LABEL_CLAIM_UID]: claim.metadata.uid!, [LABEL_SANDBOX_TEMPLATE_REF_HASH]: nameHash(template.metadata.name!) },
    annotations: { ...claim.spec.additionalPodMetadata?.annotations },
  };
}

/** A cold claim's Sandbox: named after the claim and controlled by it. */
export function sandboxForClaim(claim: SandboxClaim, template: SandboxTemplate, podTemplate: PodTemplate): Sandbox {
  const md = claimPodMetadata(claim, template);
  return {
    apiVersion: 'agents.x-k8s.io/v1beta1',
    kind: 'Sandbox',
    metadata: {
      name: claim.metadata.name,
      namespace: claim.metadata.namespace,
      labels: { [LABEL_CLAIM_UID]: claim.metadata.uid! },
      annotations: { [ANNOTATION_SANDBOX_TEMPLATE_REF]: template.metadata.name! },
      ownerReferences: [controllerRef(claim)],
    },
    spec: {
      podTemplate: secureDefaults(withPodLabels(structuredClone(podTemplate), md.labels, md.annotations)),
      ...(template.spec.volumeClaimTemplates ? { volumeClaimTemplates: structuredClone(template.spec.volumeClaimTemplates) } : {}),
      ...(template.spec.service !== undefined ? { service: template.spec.service } : {}),
      operatingMode: 'Running',
      shutdownPolicy: 'Retain',
    },
  };
}

/** Adoption by a claim: pool labels and owner dropped, the claim becomes the controller. */
export function adoptedByClaim(sandbox: Sandbox, claim: SandboxClaim, template: SandboxTemplate): Sandbox {
  const labels = { ...sandbox.metadata.labels };
  delete labels[LABEL_WARM_POOL_SANDBOX];
  delete labels[LABEL_SANDBOX_TEMPLATE_REF_HASH];
  delete labels[LABEL_SANDBOX_POD_TEMPLATE_HASH];
  labels[LABEL_CLAIM_UID] = claim.metadata.uid!;
  const md = claimPodMetadata(claim, template);
  const pod = sandbox.spec.podTemplate;
  const podLabels = { ...pod.metadata?.labels };
  delete podLabels[LABEL_WARM_POOL_SANDBOX];
  delete podLabels[LABEL_SANDBOX_POD_TEMPLATE_HASH];
  return {
    ...sandbox,
    metadata: {
      ...sandbox.metadata,
      labels,
      annotations: { ...sandbox.metadata.annotations, 'agents.x-k8s.io/pod-name': sandbox.metadata.name! },
      ownerReferences: [controllerRef(claim)],
    },
    spec: { ...sandbox.spec, podTemplate: { ...pod, metadata: { labels: { ...podLabels, ...md.labels }, annotations: { ...pod.metadata?.annotations, ...md.annotations } } } },
  };
}
