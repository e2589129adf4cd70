// Type and object metadata as Kubernetes validates it: API groups and versions, names, namespaces,
// label and annotation syntax, and the resource envelope every kind shares. Every kind's schema is
// built from these pieces, so a rule is written once and its message is the same everywhere.
import { z } from 'zod';

export const SANDBOX_GROUP = 'agents.x-k8s.io';
export const EXTENSIONS_GROUP = 'extensions.agents.x-k8s.io';
/** Served versions, oldest first. v1beta1 is upstream's storage version since v0.5 and our hub. */
export const VERSIONS = ['v1alpha1', 'v1beta1'] as const;
export type Version = (typeof VERSIONS)[number];
export const HUB_VERSION = 'v1beta1' satisfies Version;

// ---- names ----

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const QUALIFIED_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

export const isDns1123Label = (s: string): boolean => s.length <= 63 && DNS1123_LABEL.test(s);
export const isDns1123Subdomain = (s: string): boolean => s.length <= 253 && DNS1123_SUBDOMAIN.test(s);
export const isDns1035Label = (s: string): boolean => s.length <= 63 && DNS1035_LABEL.test(s);

export const dnsLabel = z
  .string()
  .max(63, 'must be at most 63 characters')
  .regex(
    DNS1123_LABEL,
    'must be a DNS label: lowercase letters, digits and "-", starting and ending with a letter or digit',
  );
export const dnsSubdomain = z
  .string()
  .max(253, 'must be at most 253 characters')
  .regex(
    DNS1123_SUBDOMAIN,
    'must be a DNS subdomain: lowercase letters, digits, "-" and ".", starting and ending with a letter or digit',
  );
/**
 * Names of Sandboxes, and of the objects whose names become Sandbox names (a cold claim's Sandbox is
 * named after the claim; a pool's are `<pool>-xxxxx`). Upstream's CRDs accept any DNS subdomain, but
 * the Sandbox's name is also its pod's hostname, its headless Service's name (a Service name must be
 * a DNS-1035 label) and the router's X-Sandbox-ID (checked as a DNS label since v0.5), so a dotted or
 * digit-first name is accepted by upstream and then fails at Service creation or routing. We refuse
 * it up front instead.
 */
export const dns1035Label = z
  .string()
  .max(63, 'must be at most 63 characters, because it becomes a hostname and a Service name')
  .regex(
    DNS1035_LABEL,
    'must be a DNS-1035 label: lowercase letters, digits and "-", starting with a letter and ending with a letter or digit, because it becomes a hostname and a Service name',
  );

/** How a kind's metadata.name is checked (see dns1035Label for why some kinds are stricter). */
export type NameRule = 'dns1035Label' | 'dnsSubdomain';
const NAME_SCHEMA: Record<NameRule, z.ZodString> = { dns1035Label, dnsSubdomain };
// generateName is a prefix: the server appends 5 random characters (truncating the prefix to 58).
const GENERATE_NAME: Record<NameRule, RegExp> = {
  dns1035Label: /^[a-z][-a-z0-9]*$/,
  dnsSubdomain: /^[a-z0-9][-a-z0-9.]*$/,
};

// ---- labels and annotations ----

/** A qualified key: an optional DNS-subdomain prefix and "/", then a name of at most 63 characters. */
export function isQualifiedName(key: string): boolean {
  const slash = key.indexOf('/');
  if (slash !== key.lastIndexOf('/')) return false;
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (prefix !== undefined && !isDns1123Subdomain(prefix)) return false;
  return name.length > 0 && name.length <= 63 && QUALIFIED_NAME.test(name);
}
export const isLabelValue = (v: string): boolean => v.length <= 63 && LABEL_VALUE.test(v);

const qualifiedKey = z.string().refine(isQualifiedName, {
  message:
    'must be a qualified name: an optional DNS-subdomain prefix and "/", then at most 63 letters, digits, "-", "_" and ".", starting and ending with a letter or digit',
});
export const Labels = z.record(
  qualifiedKey,
  z.string().refine(isLabelValue, {
    message:
      'must be a label value: at most 63 letters, digits, "-", "_" and ".", starting and ending with a letter or digit (or empty)',
  }),
);
/** Kubernetes caps the total size of an object's annotations (keys plus values) at 256 KiB. */
export const ANNOTATIONS_MAX_BYTES = 256 * 1024;
// TextEncoder rather than Buffer: this package is also bundled for non-Node clients.
const utf8 = new TextEncoder();
export const Annotations = z
  .record(qualifiedKey, z.string())
  .refine(
    (a) =>
      Object.entries(a).reduce((n, [k, v]) => n + utf8.encode(k).length + utf8.encode(v).length, 0) <=
      ANNOTATIONS_MAX_BYTES,
    { message: 'annotations may hold at most 256 KiB in total' },
  );

// ---- timestamps ----

/** RFC 3339, as metav1.Time marshals (`2026-01-02T15:04:05Z`); an offset is accepted too. */
export const DateTime = z.iso.datetime({
  offset: true,
  error: 'must be an RFC 3339 date-time such as 2026-01-02T15:04:05Z',
});

// ---- ObjectMeta ----

export const OwnerReference = z.looseObject({
  apiVersion: z.string().min(1),
  kind: z.string().min(1),
  name: z.string().min(1),
  uid: z.string().min(1),
  controller: z.boolean().optional(),
  blockOwnerDeletion: z.boolean().optional(),
});
export type OwnerReference = z.infer<typeof OwnerReference>;

const metaFields = (rule: NameRule) => ({
  name: NAME_SCHEMA[rule].optional(),
  generateName: z
    .string()
    .max(253)
    .regex(
      GENERATE_NAME[rule],
      `must be a name prefix: ${rule === 'dns1035Label' ? 'a lowercase letter, then lowercase letters, digits and "-"' : 'lowercase letters, digits, "-" and "."'}`,
    )
    .optional(),
  namespace: dnsLabel.default('default'),
  labels: Labels.optional(),
  annotations: Annotations.optional(),
  uid: z.string().optional(),
  resourceVersion: z.string().optional(),
  generation: z.number().int().min(0).optional(),
  // `kubectl create --dry-run -o yaml` writes `creationTimestamp: null`.
  creationTimestamp: DateTime.nullable().optional(),
  deletionTimestamp: DateTime.optional(),
  deletionGracePeriodSeconds: z.number().int().min(0).optional(),
  ownerReferences: z.array(OwnerReference).optional(),
  finalizers: z.array(qualifiedKey).optional(),
  // Output of `kubectl get -o yaml` carries these; accepting them lets such YAML be re-applied.
  managedFields: z.array(z.unknown()).optional(),
  selfLink: z.string().optional(),
});

/**
 * The object without metadata.managedFields, as controller-runtime's caches keep objects: the
 * reconcilers never read them, yet they are often as large as the rest of the object, and every
 * parse, clone and write would carry them. An update that leaves them out keeps the stored ones
 * (the API server resets them only when told to with an explicit entry).
 */
export function withoutManagedFields(raw: unknown): unknown {
  const md = (raw as { metadata?: { managedFields?: unknown } } | undefined)?.metadata;
  if (!md || md.managedFields === undefined) return raw;
  const { managedFields: _, ...metadata } = md;
  return { ...(raw as object), metadata };
}

/** metadata of a top-level object; `rule` says how its name is checked. */
export function objectMeta(rule: NameRule) {
  return z
    .object(metaFields(rule))
    .strict()
    .refine((m) => m.name !== undefined || m.generateName !== undefined, {
      message: 'Required (or set metadata.generateName)',
      path: ['name'],
      // Report a missing name alongside other metadata errors, not only once they are fixed.
      when: (p) => typeof p.value === 'object' && p.value !== null,
    });
}
export const ObjectMeta = objectMeta('dnsSubdomain');
export type ObjectMeta = z.infer<typeof ObjectMeta>;

/** podTemplate.metadata: upstream's PodMetadata keeps only labels and annotations. */
export const PodMetadata = z.object({ labels: Labels.optional(), annotations: Annotations.optional() }).strict();
export type PodMetadata = z.infer<typeof PodMetadata>;

// ---- the resource envelope ----

/** One served (or hub) version of a kind: apiVersion and kind literals, metadata, spec, status. */
export function resource<K extends string, A extends string, S extends z.ZodType, T extends z.ZodType>(
  kind: K,
  apiVersion: A,
  rule: NameRule,
  spec: S,
  status: T,
) {
  return z
    .object({
      apiVersion: z.literal(apiVersion),
      kind: z.literal(kind),
      metadata: objectMeta(rule),
      spec,
      status: status.optional(),
    })
    .strict();
}

/**
 * "Did you mean" hints for unknown fields, keyed by the field's path without list indices
 * (`spec.templateRef`). Each kind declares its own next to its schema; a closest-name guess covers
 * plain typos.
 */
export type FieldHints = Readonly<Record<string, string>>;
