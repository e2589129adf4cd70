// Sandbox (agents.x-k8s.io): one isolated environment — a workload, a stable address, optional
// volumes and a shutdown time. v1alpha1 says "replicas: 0|1"; v1beta1 (upstream's storage version
// since v0.5) says "operatingMode: Running|Suspended" for the same intent.
import { z } from 'zod';
import { Condition } from './conditions.ts';
import { DateTime, SANDBOX_GROUP, resource, type FieldHints, type Version } from './meta.ts';
import { PodTemplate, VolumeClaimTemplates } from './podspec.ts';

export const SandboxShutdownPolicy = z.enum(['Delete', 'Retain']);
export type SandboxShutdownPolicy = z.infer<typeof SandboxShutdownPolicy>;
export const SandboxOperatingMode = z.enum(['Running', 'Suspended']);
export type SandboxOperatingMode = z.infer<typeof SandboxOperatingMode>;

/** Shared with SandboxTemplate (upstream's SandboxBlueprint): what the workload is. */
export const blueprintFields = {
  podTemplate: PodTemplate,
  /** One PVC per entry, named `<vct>-<sandbox>`, mounted as the volume `<vct>`. Atomic list. */
  volumeClaimTemplates: VolumeClaimTemplates.optional(),
  /** Headless Service: unset keeps an existing one but never creates; true creates; false deletes. */
  service: z.boolean().optional(),
};

const lifecycleFields = {
  /** When the Sandbox expires: its pod and Service are deleted, then shutdownPolicy applies to it. */
  shutdownTime: DateTime.optional(),
  /** Retain keeps the expired Sandbox (Ready=False/SandboxExpired); Delete deletes it. */
  shutdownPolicy: SandboxShutdownPolicy.default('Retain'),
};

const specV1alpha1 = z
  .object({
    ...blueprintFields,
    ...lifecycleFields,
    /** Desired state: 1 keeps a pod running, 0 suspends (pod deleted; object and PVCs kept). */
    replicas: z.number().int().min(0, 'must be 0 or 1').max(1, 'must be 0 or 1').default(1),
  })
  .strict();

const specV1beta1 = z
  .object({
    ...blueprintFields,
    ...lifecycleFields,
    /** Desired state; observed state is the Ready condition. */
    operatingMode: SandboxOperatingMode.default('Running'),
  })
  .strict();

const statusFields = {
  /** `<service>.<namespace>.svc.<cluster domain>`. */
  serviceFQDN: z.string().optional(),
  service: z.string().optional(),
  conditions: z.array(Condition).optional(),
  /** `agents.x-k8s.io/sandbox-name-hash=<hash>` (the scale subresource's selector). */
  selector: z.string().optional(),
  /** Cleared whenever there is no pod. */
  podIPs: z.array(z.string()).optional(),
};
const statusReplicas = z.number().int().min(0).max(1);

// Status is loose: the API server ignores status on create and update (status subresource), so
// YAML saved from `kubectl get -o yaml` of a newer server must still apply.
const statusV1alpha1 = z.looseObject({ ...statusFields, replicas: statusReplicas.optional() });
const statusV1beta1 = z.looseObject({ ...statusFields, nodeName: z.string().optional() });
/** The hub keeps both versions' status fields; the controller sets replicas so v1alpha1 readers see it. */
const statusHub = z.looseObject({
  ...statusFields,
  nodeName: z.string().optional(),
  replicas: statusReplicas.optional(),
});

const API_V1ALPHA1 = `${SANDBOX_GROUP}/v1alpha1` as const;
const API_V1BETA1 = `${SANDBOX_GROUP}/v1beta1` as const;

export const SandboxV1alpha1 = resource('Sandbox', API_V1ALPHA1, 'dns1035Label', specV1alpha1, statusV1alpha1);
export type SandboxV1alpha1 = z.infer<typeof SandboxV1alpha1>;
export const SandboxV1beta1 = resource('Sandbox', API_V1BETA1, 'dns1035Label', specV1beta1, statusV1beta1);
export type SandboxV1beta1 = z.infer<typeof SandboxV1beta1>;

/** The hub (internal) Sandbox: v1beta1, plus v1alpha1's status.replicas. What the engines store. */
export const Sandbox = resource('Sandbox', API_V1BETA1, 'dns1035Label', specV1beta1, statusHub);
export type Sandbox = z.infer<typeof Sandbox>;
export type SandboxInput = z.input<typeof Sandbox>;
export type SandboxSpec = Sandbox['spec'];
export type SandboxStatus = NonNullable<Sandbox['status']>;

const shared: FieldHints = {
  'spec.template': 'did you mean spec.podTemplate?',
  'spec.containers': 'containers go under spec.podTemplate.spec.containers',
  'spec.lifecycle':
    'on a Sandbox, shutdownTime and shutdownPolicy sit directly under spec (spec.lifecycle is a SandboxClaim field)',
  'spec.ttl': 'did you mean spec.shutdownTime (an RFC 3339 time such as 2026-01-02T15:04:05Z)?',
  'spec.podTemplate.metadata.name':
    'a pod template takes only labels and annotations; the pod is named after the Sandbox',
  'spec.podTemplate.metadata.namespace':
    "a pod template takes only labels and annotations; the pod lives in the Sandbox's namespace",
};
export const SANDBOX_HINTS: Record<Version, FieldHints> = {
  v1alpha1: {
    ...shared,
    'spec.operatingMode':
      'did you mean spec.replicas (1 = Running, 0 = Suspended)? operatingMode is the v1beta1 spelling',
  },
  v1beta1: {
    ...shared,
    'spec.replicas': 'did you mean spec.operatingMode (Running or Suspended)? replicas is the v1alpha1 spelling',
  },
};
