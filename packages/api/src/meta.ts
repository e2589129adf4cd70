// ObjectMeta as Kubernetes validates it: names, namespaces, label and annotation syntax.
import { z } from 'zod';

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_NAME = /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

export const dnsLabel = z.string().max(63, 'must be at most 63 characters').regex(DNS1123_LABEL, 'must be a DNS label: lowercase letters, digits and "-", starting and ending with a letter or digit');
export const dnsSubdomain = z.string().max(253, 'must be at most 253 characters').regex(DNS1123_SUBDOMAIN, 'must be a DNS subdomain: lowercase letters, digits, "-" and ".", starting and ending with a letter or digit');

/** A qualified key: optional DNS-subdomain prefix and "/", then a name of at most 63 characters. */
function validKey(k: string): boolean {
  const slash = k.lastIndexOf('/');
  const prefix = slash >= 0 ? k.slice(0, slash) : undefined;
  const name = slash >= 0 ? k.slice(slash + 1) : k;
  if (prefix !== undefined && (prefix.length > 253 || !DNS1123_SUBDOMAIN.test(prefix))) return false;
  return name.length > 0 && name.length <= 63 && LABEL_NAME.test(name);
}

const keyed = z.string().refine(validKey, { message: 'must be a qualified name: [prefix/]name, name ≤ 63 of letters, digits, "-", "_" and "."' });
export const labels = z.record(keyed, z.string().max(63, 'a label value is at most 63 characters').regex(LABEL_VALUE, 'a label value is letters, digits, "-", "_" and ".", starting and ending with a letter or digit'));
export const annotations = z.record(keyed, z.string()).refine((a) => JSON.stringify(a).length <= 256 * 1024, 'annotations are at most 256 KiB in total');

export const OwnerReference = z.looseObject({
  apiVersion: z.string(), kind: z.string(), name: z.string(), uid: z.string(),
  controller: z.boolean().optional(), blockOwnerDeletion: z.boolean().optional(),
});

export const ObjectMeta = z.object({
  name: dnsSubdomain.optional(),
  generateName: z.string().max(253).optional(),
  namespace: dnsLabel.default('default'),
  labels: labels.optional(),
  annotations: annotations.optional(),
  uid: z.string().optional(),
  resourceVersion: z.string().optional(),
  generation: z.number().int().optional(),
  creationTimestamp: z.string().optional(),
  deletionTimestamp: z.string().optional(),
  ownerReferences: z.array(OwnerReference).optional(),
  finalizers: z.array(z.string()).optional(),
  managedFields: z.array(z.unknown()).optional(),
}).strict().refine((m) => m.name !== undefined || m.generateName !== undefined, { message: 'metadata.name or metadata.generateName is required', path: ['name'] });
export type ObjectMeta = z.infer<typeof ObjectMeta>;

/** Template metadata (podTemplate.metadata, VCT metadata): labels and annotations only matter. */
export const TemplateMeta = z.looseObject({ name: z.string().optional(), labels: labels.optional(), annotations: annotations.optional() });

export const ConditionSchema = z.object({
  type: z.string(), status: z.enum(['True', 'False', 'Unknown']), reason: z.string(), message: z.string(),
  lastTransitionTime: z.string(), observedGeneration: z.number().int().optional(),
});
