// SandboxTemplate (extensions.agents.x-k8s.io): the blueprint claims and warm pools create
// Sandboxes from, plus the template-wide policies (network, env and volume injection by claims).
import { z } from 'zod';
import { EXTENSIONS_GROUP, resource, type FieldHints, type Version } from './meta.ts';
import { LabelSelector } from './podspec.ts';
import { blueprintFields } from './sandbox.ts';

export const NetworkPolicyManagement = z.enum(['Managed', 'Unmanaged']);
export type NetworkPolicyManagement = z.infer<typeof NetworkPolicyManagement>;
/** Disallowed: claims may not set env; Allowed: add new names only; Overrides: add or replace. */
export const EnvVarsInjectionPolicy = z.enum(['Disallowed', 'Allowed', 'Overrides']);
export type EnvVarsInjectionPolicy = z.infer<typeof EnvVarsInjectionPolicy>;
/** [v1beta1] The same three levels for claim-supplied volumeClaimTemplates. */
export const VolumeClaimTemplatesPolicy = z.enum(['Disallowed', 'Allowed', 'Overrides']);
export type VolumeClaimTemplatesPolicy = z.infer<typeof VolumeClaimTemplatesPolicy>;

/**
 * v1alpha1 has no volumeClaimTemplatesPolicy; a v1beta1 value other than the default travels in
 * this annotation (upstream's key) so a v1alpha1 read-modify-write does not reset it.
 */
export const ANNOTATION_V1BETA1_VCT_POLICY = 'api.agents.x-k8s.io/v1beta1-volume-claim-templates-policy';

function isCidr(s: string): boolean {
  const slash = s.lastIndexOf('/');
  if (slash < 0) return false;
  const addr = s.slice(0, slash);
  const bits = s.slice(slash + 1);
  if (!/^\d{1,3}$/.test(bits)) return false;
  const v4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/.test(addr);
  if (v4) return Number(bits) <= 32;
  if (!addr.includes(':')) return false;
  try {
    new URL(`http://[${addr}]/`);
  } catch {
    return false;
  }
  return Number(bits) <= 128;
}
const cidr = z.string().refine(isCidr, { message: 'must be a CIDR such as 10.0.0.0/8 or fc00::/7' });

const NetworkPolicyPort = z.looseObject({
  protocol: z.enum(['TCP', 'UDP', 'SCTP']).optional(),
  port: z
    .union([z.number().int().min(1).max(65535), z.string().min(1)], { error: 'must be a port number or name' })
    .optional(),
  endPort: z.number().int().min(1).max(65535).optional(),
});
const NetworkPolicyPeer = z.looseObject({
  podSelector: LabelSelector.optional(),
  namespaceSelector: LabelSelector.optional(),
  ipBlock: z.looseObject({ cidr, except: z.array(cidr).optional() }).optional(),
});

/**
 * Upstream's restricted NetworkPolicySpec: only the rules. The controller owns podSelector (the
 * template-ref hash) and policyTypes (always Ingress and Egress), so an empty list denies all.
 */
export const NetworkPolicySpec = z
  .object({
    ingress: z
      .array(
        z.looseObject({ ports: z.array(NetworkPolicyPort).optional(), from: z.array(NetworkPolicyPeer).optional() }),
      )
      .optional(),
    egress: z
      .array(z.looseObject({ ports: z.array(NetworkPolicyPort).optional(), to: z.array(NetworkPolicyPeer).optional() }))
      .optional(),
  })
  .strict();
export type NetworkPolicySpec = z.infer<typeof NetworkPolicySpec>;

const specFields = {
  ...blueprintFields,
  /** Managed + omitted: the secure default (ingress from the router only; public egress only). */
  networkPolicy: NetworkPolicySpec.optional(),
  networkPolicyManagement: NetworkPolicyManagement.default('Managed'),
  envVarsInjectionPolicy: EnvVarsInjectionPolicy.default('Disallowed'),
};
const specV1alpha1 = z.object(specFields).strict();
const specV1beta1 = z
  .object({ ...specFields, volumeClaimTemplatesPolicy: VolumeClaimTemplatesPolicy.default('Disallowed') })
  .strict();
// v0.4.x served an empty status; v0.5 has none. Accept what old `kubectl get -o yaml` output holds.
const status = z.looseObject({});

const API_V1ALPHA1 = `${EXTENSIONS_GROUP}/v1alpha1` as const;
const API_V1BETA1 = `${EXTENSIONS_GROUP}/v1beta1` as const;

export const SandboxTemplateV1alpha1 = resource(
  'SandboxTemplate',
  API_V1ALPHA1,
  'dnsSubdomain',
  specV1alpha1,
  status,
).superRefine((t, ctx) => {
  // Checked here so that conversion to the hub can never meet a bad value.
  const carried = t.metadata.annotations?.[ANNOTATION_V1BETA1_VCT_POLICY];
  if (carried !== undefined && !VolumeClaimTemplatesPolicy.safeParse(carried).success) {
    ctx.addIssue({
      code: 'custom',
      path: ['metadata', 'annotations', ANNOTATION_V1BETA1_VCT_POLICY],
      message: `must be one of ${VolumeClaimTemplatesPolicy.options.join(', ')}`,
      input: carried,
    });
  }
});
export type SandboxTemplateV1alpha1 = z.infer<typeof SandboxTemplateV1alpha1>;
export const SandboxTemplateV1beta1 = resource('SandboxTemplate', API_V1BETA1, 'dnsSubdomain', specV1beta1, status);
export type SandboxTemplateV1beta1 = z.infer<typeof SandboxTemplateV1beta1>;

/** The hub SandboxTemplate is v1beta1 exactly. */
export const SandboxTemplate = SandboxTemplateV1beta1;
export type SandboxTemplate = SandboxTemplateV1beta1;
export type SandboxTemplateInput = z.input<typeof SandboxTemplate>;
export type SandboxTemplateSpec = SandboxTemplate['spec'];

const shared: FieldHints = {
  'spec.template': 'did you mean spec.podTemplate?',
  'spec.containers': 'containers go under spec.podTemplate.spec.containers',
  'spec.replicas':
    'a template has no replicas; a SandboxWarmPool with spec.sandboxTemplateRef keeps sandboxes of it ready',
  'spec.networkPolicy.podSelector':
    "the controller selects the template's sandboxes itself; give only ingress and egress rules",
  'spec.networkPolicy.policyTypes':
    'both Ingress and Egress always apply (an empty list denies all); give only ingress and egress rules',
  'spec.podTemplate.metadata.name':
    'a pod template takes only labels and annotations; pods are named after their Sandbox',
};
export const TEMPLATE_HINTS: Record<Version, FieldHints> = {
  v1alpha1: {
    ...shared,
    'spec.volumeClaimTemplatesPolicy':
      'volumeClaimTemplatesPolicy is new in v1beta1: use apiVersion extensions.agents.x-k8s.io/v1beta1',
  },
  v1beta1: shared,
};
