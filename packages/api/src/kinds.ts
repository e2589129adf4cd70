// The four upstream kinds in both served versions, one zod schema each: the TS types, defaults
// and validation come from here (and a CRD generator can derive from the same schemas later).
import { z } from 'zod';
import { ObjectMeta, ConditionSchema, dnsSubdomain, labels, annotations } from './meta.ts';
import { PodTemplate, VolumeClaimTemplate } from './podspec.ts';

export const SANDBOX_GROUP = 'agents.x-k8s.io';
export const EXTENSIONS_GROUP = 'extensions.agents.x-k8s.io';
export const VERSIONS = ['v1alpha1', 'v1beta1'] as const;
export type Version = (typeof VERSIONS)[number];

const dateTime = z.iso.datetime({ offset: true, error: 'must be an RFC 3339 date-time such as 2026-01-02T15:04:05Z' });
const ref = z.object({ name: dnsSubdomain }).strict();
const status = z.looseObject({ conditions: z.array(ConditionSchema).optional() }).optional();
const object = <K extends string, G extends string, V extends Version, S extends z.ZodType>(kind: K, group: G, version: V, spec: S) => z.object({
  apiVersion: z.literal(`${group}/${version}` as `${G}/${V}`),
  kind: z.literal(kind),
  metadata: ObjectMeta,
  spec,
  status,
}).strict();

// ---- Sandbox ----
const sandboxCommon = {
  podTemplate: PodTemplate,
  volumeClaimTemplates: z.array(VolumeClaimTemplate).optional(),
  shutdownTime: dateTime.optional(),
  shutdownPolicy: z.enum(['Delete', 'Retain']).default('Retain'),
  service: z.boolean().optional(),
};
export const SandboxV1alpha1 = object('Sandbox', SANDBOX_GROUP, 'v1alpha1', z.object({
  ...sandboxCommon,
  replicas: z.number().int().min(0, 'must be 0 or 1').max(1, 'must be 0 or 1').default(1),
}).strict());
export const SandboxV1beta1 = object('Sandbox', SANDBOX_GROUP, 'v1beta1', z.object({
  ...sandboxCommon,
  operatingMode: z.enum(['Running', 'Suspended']).default('Running'),
}).strict());

// ---- SandboxTemplate ----
const templateSpec = z.object({
  podTemplate: PodTemplate,
  volumeClaimTemplates: z.array(VolumeClaimTemplate).optional(),
  service: z.boolean().optional(),
  networkPolicy: z.object({ ingress: z.array(z.record(z.string(), z.unknown())).optional(), egress: z.array(z.record(z.string(), z.unknown())).optional() }).strict().optional(),
  networkPolicyManagement: z.enum(['Managed', 'Unmanaged']).default('Managed'),
  envVarsInjectionPolicy: z.enum(['Disallowed', 'Allowed', 'Overrides']).default('Disallowed'),
  volumeClaimTemplatesPolicy: z.enum(['Disallowed', 'Allowed', 'Overrides']).optional(),
}).strict();
export const SandboxTemplateV1alpha1 = object('SandboxTemplate', EXTENSIONS_GROUP, 'v1alpha1', templateSpec);
export const SandboxTemplateV1beta1 = object('SandboxTemplate', EXTENSIONS_GROUP, 'v1beta1', templateSpec);

// ---- SandboxClaim ----
const claimCommon = {
  lifecycle: z.object({
    shutdownTime: dateTime.optional(),
    ttlSecondsAfterFinished: z.number().int().min(0).optional(),
    shutdownPolicy: z.enum(['Delete', 'DeleteForeground', 'Retain']).default('Retain'),
  }).strict().optional(),
  additionalPodMetadata: z.object({ labels: labels.optional(), annotations: annotations.optional() }).strict().optional(),
  env: z.array(z.object({ name: z.string().min(1), value: z.string().optional(), containerName: z.string().optional() }).strict()).optional(),
};
export const SandboxClaimV1alpha1 = object('SandboxClaim', EXTENSIONS_GROUP, 'v1alpha1', z.object({
  ...claimCommon,
  sandboxTemplateRef: ref,
  warmpool: z.string().default('default'),
}).strict());
export const SandboxClaimV1beta1 = object('SandboxClaim', EXTENSIONS_GROUP, 'v1beta1', z.object({
  ...claimCommon,
  warmPoolRef: ref,
  volumeClaimTemplates: z.array(VolumeClaimTemplate).optional(),
}).strict());

// ---- SandboxWarmPool ----
const poolCommon = {
  sandboxTemplateRef: ref,
  updateStrategy: z.object({ type: z.enum(['OnReplenish', 'Recreate']).default('OnReplenish') }).strict().optional(),
};
export const SandboxWarmPoolV1alpha1 = object('SandboxWarmPool', EXTENSIONS_GROUP, 'v1alpha1', z.object({
  ...poolCommon,
  replicas: z.number({ error: 'replicas is required (the number of ready sandboxes to keep)' }).int().min(0),
}).strict());
export const SandboxWarmPoolV1beta1 = object('SandboxWarmPool', EXTENSIONS_GROUP, 'v1beta1', z.object({
  ...poolCommon,
  replicas: z.number().int().min(0).default(1),
}).strict());

export type SandboxV1alpha1 = z.infer<typeof SandboxV1alpha1>;
export type SandboxV1beta1 = z.infer<typeof SandboxV1beta1>;
export type SandboxTemplate = z.infer<typeof SandboxTemplateV1alpha1> | z.infer<typeof SandboxTemplateV1beta1>;
export type SandboxClaimV1alpha1 = z.infer<typeof SandboxClaimV1alpha1>;
export type SandboxClaimV1beta1 = z.infer<typeof SandboxClaimV1beta1>;
export type SandboxWarmPool = z.infer<typeof SandboxWarmPoolV1alpha1> | z.infer<typeof SandboxWarmPoolV1beta1>;
export type AnyObject = SandboxV1alpha1 | SandboxV1beta1 | SandboxTemplate | SandboxClaimV1alpha1 | SandboxClaimV1beta1 | SandboxWarmPool;

/** apiVersion → kind → schema: the one table validation dispatches on. */
export const SCHEMAS: Record<string, Record<string, z.ZodType>> = {
  [`${SANDBOX_GROUP}/v1alpha1`]: { Sandbox: SandboxV1alpha1 },
  [`${SANDBOX_GROUP}/v1beta1`]: { Sandbox: SandboxV1beta1 },
  [`${EXTENSIONS_GROUP}/v1alpha1`]: { SandboxTemplate: SandboxTemplateV1alpha1, SandboxClaim: SandboxClaimV1alpha1, SandboxWarmPool: SandboxWarmPoolV1alpha1 },
  [`${EXTENSIONS_GROUP}/v1beta1`]: { SandboxTemplate: SandboxTemplateV1beta1, SandboxClaim: SandboxClaimV1beta1, SandboxWarmPool: SandboxWarmPoolV1beta1 },
};

export const KIND_GROUP: Record<string, string> = {
  Sandbox: SANDBOX_GROUP, SandboxTemplate: EXTENSIONS_GROUP, SandboxClaim: EXTENSIONS_GROUP, SandboxWarmPool: EXTENSIONS_GROUP,
};

