// The registry: each kind's group, names, served schemas, hub schema and field hints, in one table
// that validation, conversion (and later the CRD generator) read. Adding a version means adding a
// column here, not a branch in each caller.
import type { z } from 'zod';
import { EXTENSIONS_GROUP, SANDBOX_GROUP, VERSIONS, type FieldHints, type Version } from './meta.ts';
import { SANDBOX_HINTS, Sandbox, SandboxV1alpha1, SandboxV1beta1 } from './sandbox.ts';
import { SandboxTemplate, SandboxTemplateV1alpha1, SandboxTemplateV1beta1, TEMPLATE_HINTS } from './template.ts';
import { CLAIM_HINTS, SandboxClaim, SandboxClaimV1alpha1, SandboxClaimV1beta1 } from './claim.ts';
import { SandboxWarmPool, SandboxWarmPoolV1alpha1, SandboxWarmPoolV1beta1, WARMPOOL_HINTS } from './warmpool.ts';

export interface KindInfo {
  readonly kind: string;
  readonly group: string;
  readonly plural: string;
  readonly shortNames: readonly string[];
  /** Whether the kind has a scale subresource in some version (kubectl scale, HPA). */
  readonly scalable: boolean;
  readonly served: Readonly<Record<Version, z.ZodType>>;
  readonly hub: z.ZodType;
  readonly hints: Readonly<Record<Version, FieldHints>>;
}

export const KINDS = {
  Sandbox: {
    kind: 'Sandbox',
    group: SANDBOX_GROUP,
    plural: 'sandboxes',
    shortNames: ['sandbox'],
    scalable: true,
    served: { v1alpha1: SandboxV1alpha1, v1beta1: SandboxV1beta1 },
    hub: Sandbox,
    hints: SANDBOX_HINTS,
  },
  SandboxTemplate: {
    kind: 'SandboxTemplate',
    group: EXTENSIONS_GROUP,
    plural: 'sandboxtemplates',
    shortNames: ['sandboxtemplate'],
    scalable: false,
    served: { v1alpha1: SandboxTemplateV1alpha1, v1beta1: SandboxTemplateV1beta1 },
    hub: SandboxTemplate,
    hints: TEMPLATE_HINTS,
  },
  SandboxClaim: {
    kind: 'SandboxClaim',
    group: EXTENSIONS_GROUP,
    plural: 'sandboxclaims',
    shortNames: ['sandboxclaim'],
    scalable: false,
    served: { v1alpha1: SandboxClaimV1alpha1, v1beta1: SandboxClaimV1beta1 },
    hub: SandboxClaim,
    hints: CLAIM_HINTS,
  },
  SandboxWarmPool: {
    kind: 'SandboxWarmPool',
    group: EXTENSIONS_GROUP,
    plural: 'sandboxwarmpools',
    shortNames: ['swp'],
    scalable: true,
    served: { v1alpha1: SandboxWarmPoolV1alpha1, v1beta1: SandboxWarmPoolV1beta1 },
    hub: SandboxWarmPool,
    hints: WARMPOOL_HINTS,
  },
} as const satisfies Record<string, KindInfo>;

export type Kind = keyof typeof KINDS;
export const KIND_NAMES = Object.keys(KINDS) as Kind[];
export const isKind = (k: unknown): k is Kind => typeof k === 'string' && Object.hasOwn(KINDS, k);

/** kind → API group (kept for callers of the first version of this package). */
export const KIND_GROUP: Readonly<Record<Kind, string>> = Object.fromEntries(
  KIND_NAMES.map((k) => [k, KINDS[k].group]),
) as Record<Kind, string>;

/** apiVersion → kind → served schema. */
export const SCHEMAS: Readonly<Record<string, Readonly<Record<string, z.ZodType>>>> = (() => {
  const table: Record<string, Record<string, z.ZodType>> = {};
  for (const k of KIND_NAMES) {
    for (const v of VERSIONS) (table[`${KINDS[k].group}/${v}`] ??= {})[k] = KINDS[k].served[v];
  }
  return table;
})();

/** Any served object, as validateObject returns it (defaults applied). */
export type AnyObject =
  | SandboxV1alpha1
  | SandboxV1beta1
  | SandboxTemplateV1alpha1
  | SandboxTemplateV1beta1
  | SandboxClaimV1alpha1
  | SandboxClaimV1beta1
  | SandboxWarmPoolV1alpha1
  | SandboxWarmPoolV1beta1;

/** Any hub object: what the engines store and reconcile. */
export type HubObject = Sandbox | SandboxTemplate | SandboxClaim | SandboxWarmPool;

/** "Sandbox (agents.x-k8s.io/v1alpha1, v1beta1)", for messages that list what is served. */
export function describeServed(kind: Kind): string {
  return `${kind} (${KINDS[kind].group}/${VERSIONS.join(', ')})`;
}
