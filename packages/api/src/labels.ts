// Labels and annotations upstream defines (reference §2), and its name hash.

export const LABEL_SANDBOX_NAME_HASH = 'agents.x-k8s.io/sandbox-name-hash';
export const LABEL_WARM_POOL_SANDBOX = 'agents.x-k8s.io/warm-pool-sandbox';
export const LABEL_TEMPLATE_REF_HASH = 'agents.x-k8s.io/sandbox-template-ref-hash';
export const LABEL_POD_TEMPLATE_HASH = 'agents.x-k8s.io/sandbox-pod-template-hash';
export const LABEL_CLAIM_UID = 'agents.x-k8s.io/claim-uid';
export const LABEL_SANDBOX_NAME = 'agents.x-k8s.io/sandbox-name';
export const LABEL_LAUNCH_TYPE = 'agents.x-k8s.io/launch-type';
export const LABEL_CREATED_BY = 'agents.x-k8s.io/created-by';
export const ANNOTATION_POD_NAME = 'agents.x-k8s.io/pod-name';
export const ANNOTATION_TEMPLATE_REF = 'agents.x-k8s.io/sandbox-template-ref';
export const ANNOTATION_PROPAGATED_LABELS = 'agents.x-k8s.io/propagated-labels';
export const ANNOTATION_PROPAGATED_ANNOTATIONS = 'agents.x-k8s.io/propagated-annotations';
export const ANNOTATION_CONTROLLER_FIRST_OBSERVED = 'agents.x-k8s.io/controller-first-observed-at';
export const ANNOTATION_TRACE_CONTEXT = 'opentelemetry.io/trace-context';

/** upstream's NameHash: FNV-1a 32-bit of the name, as 8 hex digits. */
export function nameHash(s: string): string {
  let h = 0x811c9dc5;
  for (const byte of Buffer.from(s, 'utf8')) {
    h ^= byte;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, '0');
}
