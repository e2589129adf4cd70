// SandboxClaim (extensions.agents.x-k8s.io): a request for one Sandbox, with a lifetime.
// v1alpha1 names a template and a warm-pool policy ("default": any pool of the template; "none":
// always cold; else that pool). v1beta1 names a pool only (warmPoolRef), and the pool names the
// template. The two cannot express each other, so the hub keeps whichever the user wrote — see
// convert.ts for how each is shown in the other version.
import { z } from 'zod';
import { Condition } from './conditions.ts';
import {
  DateTime,
  EXTENSIONS_GROUP,
  PodMetadata,
  dnsSubdomain,
  isDns1123Subdomain,
  resource,
  type FieldHints,
  type Version,
} from './meta.ts';
import { ClaimVolumeClaimTemplates } from './podspec.ts';

const INT32_MAX = 2147483647;

export const ClaimShutdownPolicy = z.enum(['Delete', 'DeleteForeground', 'Retain']);
export type ClaimShutdownPolicy = z.infer<typeof ClaimShutdownPolicy>;

/** The claim's own lifetime; it is not copied to the Sandbox (the claim controller enforces it). */
export const ClaimLifecycle = z
  .object({
    shutdownTime: DateTime.optional(),
    /** Counted from the mirrored Finished condition's lastTransitionTime. */
    ttlSecondsAfterFinished: z.number().int().min(0).max(INT32_MAX).optional(),
    /** Delete and DeleteForeground delete the claim (and so its Sandbox); Retain deletes only the Sandbox. */
    shutdownPolicy: ClaimShutdownPolicy.default('Retain'),
  })
  .strict();
export type ClaimLifecycle = z.infer<typeof ClaimLifecycle>;

export const ClaimEnvVar = z
  .object({
    name: z
      .string()
      .min(1, 'Required')
      .regex(/^[\x20-\x3c\x3e-\x7e]+$/, 'must be printable ASCII without "="'),
    value: z.string(),
    /** Defaults to the template's first container; init containers may be named too. */
    containerName: z.string().optional(),
  })
  .strict();
export type ClaimEnvVar = z.infer<typeof ClaimEnvVar>;

export const WARM_POOL_NONE = 'none';
export const WARM_POOL_DEFAULT = 'default';
/** The pool a cold v1alpha1 claim points at once served as v1beta1 (upstream's conversion webhook). */
export const SHADOW_POOL_PREFIX = 'shadow-pool-';

/** v1alpha1 spec.warmpool: "default", "none", or a SandboxWarmPool name. */
export const WarmPoolPolicy = z
  .string()
  .refine((v) => v === WARM_POOL_NONE || v === WARM_POOL_DEFAULT || isDns1123Subdomain(v), {
    message: 'must be "default" (any pool of the template), "none" (always start cold) or a SandboxWarmPool name',
  });

const ref = (what: string) => z.object({ name: dnsSubdomain.describe(`name of the ${what}`) }).strict();
export const SandboxTemplateRef = ref('SandboxTemplate');
export const SandboxWarmPoolRef = ref('SandboxWarmPool');

const commonFields = {
  lifecycle: ClaimLifecycle.optional(),
  /** Merged into the pod; restricted domains (labels.ts) are refused by the reconciler. */
  additionalPodMetadata: PodMetadata.optional(),
  /** Forces a cold start; allowed by the template's envVarsInjectionPolicy. Atomic list. */
  env: z.array(ClaimEnvVar).optional(),
};

const specV1alpha1 = z
  .object({
    ...commonFields,
    sandboxTemplateRef: SandboxTemplateRef,
    warmpool: WarmPoolPolicy.default(WARM_POOL_DEFAULT),
  })
  .strict();

const specV1beta1 = z
  .object({
    ...commonFields,
    warmPoolRef: SandboxWarmPoolRef,
    /** Forces a cold start; allowed by the template's volumeClaimTemplatesPolicy. */
    volumeClaimTemplates: ClaimVolumeClaimTemplates.optional(),
  })
  .strict();

/** Hub spec: exactly one of warmPoolRef (v1beta1 intent) or sandboxTemplateRef + warmpool (v1alpha1 intent). */
const specHub = z
  .object({
    ...commonFields,
    warmPoolRef: SandboxWarmPoolRef.optional(),
    sandboxTemplateRef: SandboxTemplateRef.optional(),
    warmpool: WarmPoolPolicy.optional(),
    volumeClaimTemplates: ClaimVolumeClaimTemplates.optional(),
  })
  .strict()
  .superRefine((s, ctx) => {
    if ((s.warmPoolRef === undefined) === (s.sandboxTemplateRef === undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: ['warmPoolRef'],
        message: 'set exactly one of warmPoolRef (v1beta1) or sandboxTemplateRef (v1alpha1)',
      });
    }
    if (s.warmpool !== undefined && s.sandboxTemplateRef === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['warmpool'],
        message: 'warmpool goes with sandboxTemplateRef; with warmPoolRef the pool is already named',
      });
    }
  });

// ---- what each version cannot say, carried in an annotation (see convert.ts) ----

/** On a v1beta1 claim written as v1alpha1: the template and policy, and the pool shown for them. */
export const ANNOTATION_CLAIM_V1ALPHA1_INTENT = 'api.agents.x-k8s.io/v1alpha1-claim-intent';
export const ClaimV1alpha1Intent = z
  .object({ sandboxTemplateRef: z.string(), warmpool: z.string(), warmPoolRef: z.string() })
  .strict();
export type ClaimV1alpha1Intent = z.infer<typeof ClaimV1alpha1Intent>;
/** On a v1alpha1 claim written as v1beta1: its pool and volumes, and the template/policy shown for them. */
export const ANNOTATION_CLAIM_V1BETA1_FIELDS = 'api.agents.x-k8s.io/v1beta1-claim-fields';
export const ClaimV1beta1Fields = z
  .object({
    sandboxTemplateRef: z.string(),
    warmpool: z.string(),
    warmPoolRef: z.string().optional(),
    volumeClaimTemplates: ClaimVolumeClaimTemplates.optional(),
  })
  .strict();
export type ClaimV1beta1Fields = z.infer<typeof ClaimV1beta1Fields>;

/** Checks a carried annotation when the object is validated, so conversion never meets a bad one. */
function carried(key: string, schema: z.ZodType) {
  return (obj: { metadata: { annotations?: Record<string, string> } }, ctx: z.core.$RefinementCtx) => {
    const text = obj.metadata.annotations?.[key];
    if (text === undefined) return;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      value = undefined;
    }
    if (!schema.safeParse(value).success) {
      ctx.addIssue({
        code: 'custom',
        path: ['metadata', 'annotations', key],
        message: 'is written by version conversion and is not valid; remove it',
      });
    }
  };
}

const status = z.looseObject({
  /** Ready (own reasons, else the Sandbox's copied) and Finished (mirrored). */
  conditions: z.array(Condition).optional(),
  sandbox: z.looseObject({ name: z.string().optional(), podIPs: z.array(z.string()).optional() }).optional(),
});

const API_V1ALPHA1 = `${EXTENSIONS_GROUP}/v1alpha1` as const;
const API_V1BETA1 = `${EXTENSIONS_GROUP}/v1beta1` as const;

// A cold claim's Sandbox takes the claim's name, so claim names follow the Sandbox name rule.
export const SandboxClaimV1alpha1 = resource(
  'SandboxClaim',
  API_V1ALPHA1,
  'dns1035Label',
  specV1alpha1,
  status,
).superRefine(carried(ANNOTATION_CLAIM_V1BETA1_FIELDS, ClaimV1beta1Fields));
export type SandboxClaimV1alpha1 = z.infer<typeof SandboxClaimV1alpha1>;
export const SandboxClaimV1beta1 = resource(
  'SandboxClaim',
  API_V1BETA1,
  'dns1035Label',
  specV1beta1,
  status,
).superRefine(carried(ANNOTATION_CLAIM_V1ALPHA1_INTENT, ClaimV1alpha1Intent));
export type SandboxClaimV1beta1 = z.infer<typeof SandboxClaimV1beta1>;

/** The hub SandboxClaim: v1beta1, except that a v1alpha1 claim keeps its template and policy. */
export const SandboxClaim = resource('SandboxClaim', API_V1BETA1, 'dns1035Label', specHub, status);
export type SandboxClaim = z.infer<typeof SandboxClaim>;
export type SandboxClaimInput = z.input<typeof SandboxClaim>;
export type SandboxClaimSpec = SandboxClaim['spec'];
export type SandboxClaimStatus = NonNullable<SandboxClaim['status']>;

/** Where a hub claim gets its Sandbox from: a named pool, or a template with a v1alpha1 policy. */
export type ClaimSource = { by: 'warmPool'; warmPool: string } | { by: 'template'; template: string; warmpool: string };
export function claimSource(claim: Pick<SandboxClaim, 'spec'>): ClaimSource {
  const { warmPoolRef, sandboxTemplateRef, warmpool } = claim.spec;
  if (sandboxTemplateRef)
    return { by: 'template', template: sandboxTemplateRef.name, warmpool: warmpool ?? WARM_POOL_DEFAULT };
  return { by: 'warmPool', warmPool: warmPoolRef!.name };
}

const shared: FieldHints = {
  'spec.ttl':
    'did you mean spec.lifecycle.shutdownTime (an RFC 3339 time) or spec.lifecycle.ttlSecondsAfterFinished (seconds after the sandbox finishes)?',
  'spec.shutdownTime': 'did you mean spec.lifecycle.shutdownTime?',
  'spec.shutdownPolicy': 'did you mean spec.lifecycle.shutdownPolicy?',
  'spec.ttlSecondsAfterFinished': 'did you mean spec.lifecycle.ttlSecondsAfterFinished?',
  'spec.podTemplate':
    'a claim takes its pod from the template; use spec.additionalPodMetadata or spec.env to adjust it',
};
export const CLAIM_HINTS: Record<Version, FieldHints> = {
  v1alpha1: {
    ...shared,
    'spec.templateRef': 'did you mean spec.sandboxTemplateRef?',
    'spec.template': 'did you mean spec.sandboxTemplateRef?',
    'spec.warmPoolRef':
      'did you mean spec.warmpool (a pool name, "default" or "none")? warmPoolRef is the v1beta1 spelling',
    'spec.volumeClaimTemplates':
      'volumeClaimTemplates on a claim is new in v1beta1: use apiVersion extensions.agents.x-k8s.io/v1beta1, or put them on the SandboxTemplate',
  },
  v1beta1: {
    ...shared,
    'spec.sandboxTemplateRef':
      'did you mean spec.warmPoolRef? A v1beta1 claim names a SandboxWarmPool, which names the template (sandboxTemplateRef is the v1alpha1 spelling)',
    'spec.templateRef':
      'did you mean spec.warmPoolRef? A v1beta1 claim names a SandboxWarmPool, which names the template',
    'spec.warmpool': 'did you mean spec.warmPoolRef.name? warmpool is the v1alpha1 spelling',
  },
};
