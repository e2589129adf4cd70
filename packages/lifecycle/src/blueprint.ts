// How a Sandbox is made from a SandboxTemplate: for a warm pool (upstream's pool reconciler) and
// for a cold claim (the claim reconciler), with the labels and annotations upstream puts on them.
import {
  isDns1123Label,
  ANNOTATION_POD_NAME,
  ANNOTATION_SAFE_TO_EVICT,
  ANNOTATION_SANDBOX_TEMPLATE_REF,
  LABEL_CLAIM_UID,
  LABEL_CREATED_BY,
  LABEL_LAUNCH_TYPE,
  LABEL_SANDBOX_POD_TEMPLATE_HASH,
  LABEL_SANDBOX_TEMPLATE_HASH,
  LABEL_SANDBOX_TEMPLATE_REF_HASH,
  LABEL_WARM_POOL_SANDBOX,
  nameHash,
  type Sandbox,
  type SandboxClaim,
  type SandboxTemplate,
  type SandboxWarmPool,
} from '@asb/api';
import { randomBytes } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { controllerRef } from './objects.ts';

type PodTemplate = Sandbox['spec']['podTemplate'];

/** Identifies a template's pod spec: pool members made from an older spec are stale. */
export function podTemplateHash(template: SandboxTemplate): string {
  return nameHash(JSON.stringify(template.spec.podTemplate));
}

/**
 * Secure defaults upstream applies to every template-derived pod spec: no service account token;
 * and under the default managed NetworkPolicy (no rules of the template's own), public DNS
 * resolvers instead of the cluster's, so a sandbox cannot enumerate the cluster's Services.
 */
function secureDefaults(pod: PodTemplate, template: SandboxTemplate): PodTemplate {
  const spec = { ...pod.spec } as PodTemplate['spec'] & {
    automountServiceAccountToken?: boolean;
    dnsPolicy?: string;
    dnsConfig?: unknown;
  };
  if (spec.automountServiceAccountToken === undefined) spec.automountServiceAccountToken = false;
  const managed = (template.spec.networkPolicyManagement ?? 'Managed') === 'Managed';
  if (managed && !template.spec.networkPolicy && spec.dnsPolicy === undefined) {
    spec.dnsPolicy = 'None';
    spec.dnsConfig = { nameservers: ['8.8.8.8', '1.1.1.1'] };
  }
  return { ...pod, spec };
}

function withPodLabels(
  pod: PodTemplate,
  labels: Record<string, string>,
  annotations: Record<string, string> = {},
): PodTemplate {
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
    [LABEL_SANDBOX_TEMPLATE_HASH]: nameHash(JSON.stringify(template.spec)),
  };
}

/**
 * A pool member the template no longer makes (upstream's isSandboxStale): one of another template
 * (the pool now names a different one); else, when its pod template hash differs, one whose pod
 * spec (secure defaults applied), volumes (name and spec) or Service differ from the template's.
 * The pod template's metadata is not compared: a label added to the template is not a rollout.
 * (Pure.)
 */
export function isStaleMember(sb: Sandbox, template: SandboxTemplate): boolean {
  const labels = sb.metadata.labels ?? {};
  if (labels[LABEL_SANDBOX_TEMPLATE_REF_HASH] !== nameHash(template.metadata.name!)) return true;
  if (labels[LABEL_SANDBOX_POD_TEMPLATE_HASH] === podTemplateHash(template)) return false;
  const made = secureDefaults(structuredClone(template.spec.podTemplate), template).spec;
  const volumes = (list: Sandbox['spec']['volumeClaimTemplates']) =>
    (list ?? []).map((v) => ({ name: v.metadata.name, spec: v.spec }));
  return !(
    isDeepStrictEqual(made, sb.spec.podTemplate.spec) &&
    isDeepStrictEqual(volumes(template.spec.volumeClaimTemplates), volumes(sb.spec.volumeClaimTemplates)) &&
    template.spec.service === sb.spec.service
  );
}

/** What the API server's generateName makes: the base cut to 58 characters, 5 random ones after. */
export function generatedName(base: string): string {
  const alphabet = 'bcdfghjklmnpqrstvwxz2456789';
  const bytes = randomBytes(5);
  return base.slice(0, 58) + Array.from(bytes, (b) => alphabet[b % alphabet.length]).join('');
}

/** A warm pool member: named `<pool>-xxxxx` (as generateName would, but here, so that its
 *  pod-name annotation is written with it instead of by a second update), owned by the pool,
 *  labelled for adoption. `eviction`: its pod may be evicted by the cluster autoscaler
 *  (upstream's default). */
export function sandboxForPool(
  pool: SandboxWarmPool,
  template: SandboxTemplate,
  opts: { eviction?: boolean } = {},
): Sandbox {
  const name = generatedName(`${pool.metadata.name!}-`);
  const labels = poolLabels(pool, template);
  const podTemplate = withPodLabels(structuredClone(template.spec.podTemplate), labels);
  if (opts.eviction && podTemplate.metadata?.annotations?.[ANNOTATION_SAFE_TO_EVICT] === undefined) {
    podTemplate.metadata = {
      ...podTemplate.metadata,
      annotations: { ...podTemplate.metadata?.annotations, [ANNOTATION_SAFE_TO_EVICT]: 'true' },
    };
  }
  return {
    apiVersion: 'agents.x-k8s.io/v1beta1',
    kind: 'Sandbox',
    metadata: {
      name,
      namespace: pool.metadata.namespace,
      labels: { ...labels, [LABEL_LAUNCH_TYPE]: 'warm', [LABEL_CREATED_BY]: 'controller' },
      annotations: { [ANNOTATION_SANDBOX_TEMPLATE_REF]: template.metadata.name!, [ANNOTATION_POD_NAME]: name },
      ownerReferences: [controllerRef(pool)],
    },
    spec: {
      podTemplate: secureDefaults(podTemplate, template),
      ...(template.spec.volumeClaimTemplates
        ? { volumeClaimTemplates: structuredClone(template.spec.volumeClaimTemplates) }
        : {}),
      ...(template.spec.service !== undefined ? { service: template.spec.service } : {}),
      operatingMode: 'Running',
      shutdownPolicy: 'Retain',
    },
  };
}

type VolumeClaimTemplates = NonNullable<Sandbox['spec']['volumeClaimTemplates']>;
export type VolumeClaimTemplatesMerge = { ok: true; list?: VolumeClaimTemplates } | { ok: false; message: string };

/**
 * The Sandbox's volumeClaimTemplates: the template's, with the claim's per the template's
 * volumeClaimTemplatesPolicy (Disallowed; Allowed: new names only; Overrides: by name), each list
 * checked for empty and repeated names, as upstream's mergeVolumeClaimTemplates. (Pure.)
 */
export function mergeVolumeClaimTemplates(claim: SandboxClaim, template: SandboxTemplate): VolumeClaimTemplatesMerge {
  const own = template.spec.volumeClaimTemplates;
  const invalid = (list: ReadonlyArray<{ metadata?: { name?: string } }>) => {
    const seen = new Set<string>();
    for (const [i, vct] of list.entries()) {
      const name = vct.metadata?.name;
      if (!name) return `invalid volume claim templates: name at index ${i} is empty`;
      if (seen.has(name)) return `invalid volume claim templates: duplicate name "${name}"`;
      // (Ours: each becomes a PVC `<name>-<sandbox>` and a pod volume, so a DNS label.)
      if (!isDns1123Label(name)) return `invalid volume claim templates: name "${name}" is not a DNS label`;
      seen.add(name);
    }
    return undefined;
  };
  const fail = (message: string): VolumeClaimTemplatesMerge => ({ ok: false, message });
  const bad = own && invalid(own);
  const asked = claim.spec.volumeClaimTemplates;
  if (!asked?.length) return bad ? fail(`invalid volume claim templates in template: ${bad}`) : { ok: true, list: own };
  const merging = 'failed to merge volume claim templates';
  if (bad) return fail(`${merging}: template: ${bad}`);
  const badClaim = invalid(asked);
  if (badClaim) return fail(`${merging}: claim: ${badClaim}`);
  const extra = asked as VolumeClaimTemplates; // (every name checked just above)
  const base = own ?? [];
  const names = new Set(base.map((v) => v.metadata.name));
  switch (template.spec.volumeClaimTemplatesPolicy ?? 'Disallowed') {
    case 'Disallowed':
      return fail(`${merging}: volume claim templates are disallowed by the template`);
    case 'Allowed': {
      const clash = extra.find((v) => names.has(v.metadata.name));
      if (clash)
        return fail(
          `${merging}: overriding volume claim templates is forbidden by the template: cannot override template volume "${clash.metadata.name}"`,
        );
      return { ok: true, list: structuredClone([...base, ...extra]) };
    }
    case 'Overrides': {
      const byName = new Map(extra.map((v) => [v.metadata.name, v]));
      const kept = base.map((v) => byName.get(v.metadata.name) ?? v);
      return { ok: true, list: structuredClone([...kept, ...extra.filter((v) => !names.has(v.metadata.name))]) };
    }
  }
}

export type EnvInjection = { ok: true; podTemplate: PodTemplate } | { ok: false; message: string };

/** A claim's env per the template's envVarsInjectionPolicy (Disallowed, Allowed: new names only, Overrides). */
export function injectEnv(pod: PodTemplate, claim: SandboxClaim, template: SandboxTemplate): EnvInjection {
  const env = claim.spec.env;
  if (!env?.length) return { ok: true, podTemplate: pod };
  const policy = template.spec.envVarsInjectionPolicy ?? 'Disallowed';
  if (policy === 'Disallowed')
    return {
      ok: false,
      message: `SandboxTemplate "${template.metadata.name}" does not allow env injection (envVarsInjectionPolicy: Disallowed)`,
    };
  const out = structuredClone(pod);
  for (const e of env) {
    const container = e.containerName
      ? out.spec.containers.find((c) => c.name === e.containerName)
      : out.spec.containers[0];
    if (!container) return { ok: false, message: `env ${e.name}: no container named "${e.containerName}"` };
    const list = (container.env ??= []);
    const i = list.findIndex((x) => x.name === e.name);
    if (i >= 0 && policy === 'Allowed')
      return {
        ok: false,
        message: `env ${e.name} is set by the template; envVarsInjectionPolicy Allowed adds new names only (Overrides replaces)`,
      };
    if (i >= 0) list[i] = { name: e.name, value: e.value };
    else list.push({ name: e.name, value: e.value });
  }
  return { ok: true, podTemplate: out };
}

/** The claim's created-by label, to be carried by what is made for it (nothing when it has none). */
function createdByOf(claim: SandboxClaim): Record<string, string> {
  const v = claim.metadata.labels?.[LABEL_CREATED_BY];
  return v ? { [LABEL_CREATED_BY]: v } : {};
}

/** Labels without those of a pool member (and without its creator, the controller). */
function withoutPoolLabels(labels: Record<string, string> | undefined): Record<string, string> {
  const out = { ...labels };
  for (const k of [
    LABEL_WARM_POOL_SANDBOX,
    LABEL_SANDBOX_POD_TEMPLATE_HASH,
    LABEL_SANDBOX_TEMPLATE_HASH,
    LABEL_CREATED_BY,
  ])
    delete out[k];
  return out;
}

/** Pod labels and annotations a claim adds: its uid, the template's hash, additionalPodMetadata. */
export function claimPodMetadata(
  claim: SandboxClaim,
  template: SandboxTemplate,
): { labels: Record<string, string>; annotations: Record<string, string> } {
  return {
    labels: {
      ...claim.spec.additionalPodMetadata?.labels,
      [LABEL_CLAIM_UID]: claim.metadata.uid!,
      [LABEL_SANDBOX_TEMPLATE_REF_HASH]: nameHash(template.metadata.name!),
      // Who made the claim (an SDK, the CLI) marks its pod too, as upstream's claim identity labels do.
      ...createdByOf(claim),
    },
    annotations: { ...claim.spec.additionalPodMetadata?.annotations },
  };
}

/** A cold claim's Sandbox: named after the claim and controlled by it. */
export function sandboxForClaim(
  claim: SandboxClaim,
  template: SandboxTemplate,
  podTemplate: PodTemplate,
  volumeClaimTemplates = template.spec.volumeClaimTemplates,
): Sandbox {
  const md = claimPodMetadata(claim, template);
  return {
    apiVersion: 'agents.x-k8s.io/v1beta1',
    kind: 'Sandbox',
    metadata: {
      name: claim.metadata.name,
      namespace: claim.metadata.namespace,
      labels: {
        [LABEL_CLAIM_UID]: claim.metadata.uid!,
        [LABEL_LAUNCH_TYPE]: 'cold',
        [LABEL_SANDBOX_TEMPLATE_REF_HASH]: nameHash(template.metadata.name!),
        ...createdByOf(claim),
      },
      annotations: {
        [ANNOTATION_SANDBOX_TEMPLATE_REF]: template.metadata.name!,
        [ANNOTATION_POD_NAME]: claim.metadata.name!,
      },
      ownerReferences: [controllerRef(claim)],
    },
    spec: {
      podTemplate: secureDefaults(withPodLabels(structuredClone(podTemplate), md.labels, md.annotations), template),
      ...(volumeClaimTemplates ? { volumeClaimTemplates: structuredClone(volumeClaimTemplates) } : {}),
      ...(template.spec.service !== undefined ? { service: template.spec.service } : {}),
      operatingMode: 'Running',
      shutdownPolicy: 'Retain',
    },
  };
}

/** Adoption by a claim: pool labels and owner dropped (the template's ref hash and the launch
 *  type stay), the claim becomes the controller; created-by becomes the claim's. */
export function adoptedByClaim(sandbox: Sandbox, claim: SandboxClaim, template: SandboxTemplate): Sandbox {
  const labels = {
    ...withoutPoolLabels(sandbox.metadata.labels),
    [LABEL_CLAIM_UID]: claim.metadata.uid!,
    [LABEL_LAUNCH_TYPE]: 'warm',
    ...createdByOf(claim),
  };
  const md = claimPodMetadata(claim, template);
  const pod = sandbox.spec.podTemplate;
  const podLabels = withoutPoolLabels(pod.metadata?.labels);
  // The pool's eviction mark goes (a claimed sandbox is someone's work), unless the template set it.
  const podAnnotations = { ...pod.metadata?.annotations };
  if (template.spec.podTemplate.metadata?.annotations?.[ANNOTATION_SAFE_TO_EVICT] === undefined)
    delete podAnnotations[ANNOTATION_SAFE_TO_EVICT];
  return {
    ...sandbox,
    metadata: {
      ...sandbox.metadata,
      labels,
      annotations: { ...sandbox.metadata.annotations, [ANNOTATION_POD_NAME]: sandbox.metadata.name! },
      ownerReferences: [controllerRef(claim)],
    },
    spec: {
      ...sandbox.spec,
      podTemplate: {
        ...pod,
        metadata: { labels: { ...podLabels, ...md.labels }, annotations: { ...podAnnotations, ...md.annotations } },
      },
    },
  };
}
