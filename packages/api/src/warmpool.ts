// SandboxWarmPool (extensions.agents.x-k8s.io): keeps N Sandboxes of a template started, hands
// them to claims, and replaces what it hands out. The versions differ only in that v1beta1 makes
// replicas optional (default 1) and reports status.observedGeneration.
import { z } from 'zod';
import { EXTENSIONS_GROUP, resource, type FieldHints, type Version } from './meta.ts';
import { SandboxTemplateRef } from './claim.ts';

const INT32_MAX = 2147483647;

/** OnReplenish keeps stale unclaimed sandboxes until claimed or deleted; Recreate deletes them. */
export const WarmPoolUpdateStrategyType = z.enum(['OnReplenish', 'Recreate']);
export type WarmPoolUpdateStrategyType = z.infer<typeof WarmPoolUpdateStrategyType>;
export const WarmPoolUpdateStrategy = z.object({ type: WarmPoolUpdateStrategyType.default('OnReplenish') }).strict();

const replicas = z
  .number({
    error: (iss) =>
      iss.input === undefined ? 'Required: the number of ready sandboxes to keep (0 or more)' : undefined,
  })
  .int()
  .min(0, 'must be 0 or more')
  .max(INT32_MAX);
const commonFields = {
  sandboxTemplateRef: SandboxTemplateRef,
  /** Stale = the template's pod spec (v1beta1: blueprint) or templateRef changed; metadata edits never. */
  updateStrategy: WarmPoolUpdateStrategy.optional(),
};
const specV1alpha1 = z
  .object({
    ...commonFields,
    /** Required in v1alpha1; the scale subresource (and so an HPA) drives it. */
    replicas,
  })
  .strict();
const specV1beta1 = z.object({ ...commonFields, replicas: replicas.default(1) }).strict();

const statusFields = {
  replicas: z.number().int().min(0).optional(),
  readyReplicas: z.number().int().min(0).optional(),
  /** `agents.x-k8s.io/warm-pool-sandbox=<nameHash(pool)>` (the scale subresource's selector). */
  selector: z.string().optional(),
};
const statusV1alpha1 = z.looseObject(statusFields);
const statusV1beta1 = z.looseObject({ ...statusFields, observedGeneration: z.number().int().min(0).optional() });

const API_V1ALPHA1 = `${EXTENSIONS_GROUP}/v1alpha1` as const;
const API_V1BETA1 = `${EXTENSIONS_GROUP}/v1beta1` as const;

// A pool's Sandboxes are named `<pool>-xxxxx`, so pool names follow the Sandbox name rule; the
// prefix is cut to 58 characters as Kubernetes' generateName does.
export const SandboxWarmPoolV1alpha1 = resource(
  'SandboxWarmPool',
  API_V1ALPHA1,
  'dns1035Label',
  specV1alpha1,
  statusV1alpha1,
);
export type SandboxWarmPoolV1alpha1 = z.infer<typeof SandboxWarmPoolV1alpha1>;
export const SandboxWarmPoolV1beta1 = resource(
  'SandboxWarmPool',
  API_V1BETA1,
  'dns1035Label',
  specV1beta1,
  statusV1beta1,
);
export type SandboxWarmPoolV1beta1 = z.infer<typeof SandboxWarmPoolV1beta1>;

/** The hub SandboxWarmPool is v1beta1 exactly. */
export const SandboxWarmPool = SandboxWarmPoolV1beta1;
export type SandboxWarmPool = SandboxWarmPoolV1beta1;
export type SandboxWarmPoolInput = z.input<typeof SandboxWarmPool>;
export type SandboxWarmPoolSpec = SandboxWarmPool['spec'];

const shared: FieldHints = {
  'spec.templateRef': 'did you mean spec.sandboxTemplateRef?',
  'spec.template': 'did you mean spec.sandboxTemplateRef?',
  'spec.size': 'did you mean spec.replicas?',
  'spec.strategy': 'did you mean spec.updateStrategy?',
  'spec.podTemplate': 'a pool takes its pod from the template named by spec.sandboxTemplateRef',
};
export const WARMPOOL_HINTS: Record<Version, FieldHints> = { v1alpha1: shared, v1beta1: shared };
