// Labels and annotations upstream defines (reference §2 and api/v1beta1/sandbox_types.go), with the
// object each goes on, and upstream's name hash. L = label, A = annotation.

// ---- Sandbox and its children ----
/** L on Pod, Service, PVC = nameHash(sandbox): the selector; watches filter on it. */
export const LABEL_SANDBOX_NAME_HASH = 'agents.x-k8s.io/sandbox-name-hash';
/** A on Sandbox: the backing pod's name when it differs (a warm pod kept its pool name). */
export const ANNOTATION_POD_NAME = 'agents.x-k8s.io/pod-name';
/** A on Pod: sorted, comma-separated keys copied from podTemplate.metadata, so removals propagate. */
export const ANNOTATION_PROPAGATED_LABELS = 'agents.x-k8s.io/propagated-labels';
export const ANNOTATION_PROPAGATED_ANNOTATIONS = 'agents.x-k8s.io/propagated-annotations';

// ---- warm pools and templates ----
/** L on a pool's Sandboxes and their pods = nameHash(pool): pool membership. */
export const LABEL_WARM_POOL_SANDBOX = 'agents.x-k8s.io/warm-pool-sandbox';
/** L on Sandbox and pod = nameHash(template): the template's NetworkPolicy selects on it; warm-queue key. */
export const LABEL_SANDBOX_TEMPLATE_REF_HASH = 'agents.x-k8s.io/sandbox-template-ref-hash';
/** L on a pool's Sandboxes = nameHash(JSON of the podTemplate): the staleness fast path (deprecated in v0.5). */
export const LABEL_SANDBOX_POD_TEMPLATE_HASH = 'agents.x-k8s.io/sandbox-pod-template-hash';
/** L [v0.5] on a pool's Sandboxes: hash of the whole blueprint, replacing the pod-template hash. */
export const LABEL_SANDBOX_TEMPLATE_HASH = 'agents.x-k8s.io/sandbox-template-hash';
/** A on Sandbox = template name (metrics). */
export const ANNOTATION_SANDBOX_TEMPLATE_REF = 'agents.x-k8s.io/sandbox-template-ref';
/** L [v0.5]: authorizes a Sandbox to adopt an existing unowned resource. */
export const LABEL_ADOPTABLE = 'agents.x-k8s.io/adoptable';
/** L (≤ v0.2): the old design's pool label on bare pods; kept so such objects are recognised. */
export const LABEL_POOL_LEGACY = 'agents.x-k8s.io/pool';

// ---- ours (sandbox.asb.dev), on a SandboxTemplate: README, "Networking" ----
/** A: names its sandboxes may reach (ports 80 and 443, through the local engine's egress proxy). */
export const ANNOTATION_ALLOWED_DOMAINS = 'sandbox.asb.dev/allowed-domains';
/** A: JSON list of secrets the egress proxy adds to a destination's requests. */
export const ANNOTATION_CREDENTIALS = 'sandbox.asb.dev/credentials';

// ---- claims ----
/** L on Sandbox and pod = the owning claim's UID. */
export const LABEL_CLAIM_UID = 'agents.x-k8s.io/claim-uid';
/** On Claim = the assigned Sandbox (adoption lock): a label up to v0.4, an annotation since v0.5. */
export const LABEL_SANDBOX_NAME = 'agents.x-k8s.io/sandbox-name';
export const ANNOTATION_SANDBOX_NAME = LABEL_SANDBOX_NAME;
/** L [v0.5] on Sandbox: `cold` or `warm`. */
export const LABEL_LAUNCH_TYPE = 'agents.x-k8s.io/launch-type';
export const LaunchType = { Cold: 'cold', Warm: 'warm' } as const;
export type LaunchType = (typeof LaunchType)[keyof typeof LaunchType];
/** L [v0.5]: which component created the object, e.g. `python-client`. */
export const LABEL_CREATED_BY = 'agents.x-k8s.io/created-by';

// ---- latency and tracing (on Claim; trace context also on Sandbox) ----
export const ANNOTATION_CONTROLLER_FIRST_OBSERVED_AT = 'agents.x-k8s.io/controller-first-observed-at';
export const ANNOTATION_WEBHOOK_FIRST_OBSERVED_AT = 'agents.x-k8s.io/webhook-first-observed-at';
export const ANNOTATION_CLIENT_FIRST_REQUESTED_AT = 'agents.x-k8s.io/client-first-requested-at';
/** A: JSON of W3C trace headers. */
export const ANNOTATION_TRACE_CONTEXT = 'opentelemetry.io/trace-context';

// ---- claim metadata policy ----
/** additionalPodMetadata keys in these domains (or their subdomains) are refused by the claim controller. */
export const RESTRICTED_METADATA_DOMAINS = ['kubernetes.io', 'k8s.io', 'agents.x-k8s.io'] as const;
/** …except this one [v0.5], so a claim can keep its pod from being evicted. */
export const ANNOTATION_SAFE_TO_EVICT = 'cluster-autoscaler.kubernetes.io/safe-to-evict';

/** created-by as upstream's metrics and Pods carry it: a known creator, else "unknown". */
export function normalizeCreatedBy(value: string): string {
  return value === 'go-client' || value === 'python-client' || value === 'controller' ? value : 'unknown';
}

/** Keys only the controllers set: a user's pod template cannot put them on a Pod (else a tenant
 *  could take another Sandbox's name-hash label, and with it its Service's traffic). */
export function isSystemReservedKey(key: string): boolean {
  return key.startsWith('agents.x-k8s.io/') || key.startsWith('extensions.agents.x-k8s.io/');
}

/** Whether a label/annotation key lies in a restricted domain (the reconciler reports InvalidMetadata). */
export function isRestrictedMetadataKey(key: string): boolean {
  if (key === ANNOTATION_SAFE_TO_EVICT) return false;
  const slash = key.indexOf('/');
  if (slash < 0) return false;
  const domain = key.slice(0, slash).toLowerCase();
  return RESTRICTED_METADATA_DOMAINS.some((d) => domain === d || domain.endsWith(`.${d}`));
}

/**
 * upstream's NameHash: FNV-1a 32-bit over the UTF-8 bytes, as 8 lowercase hex digits. Label values
 * must be ≤ 63 characters, names can be 253, hence a hash.
 */
export function nameHash(s: string): string {
  let h = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(s)) {
    h ^= byte;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, '0');
}
