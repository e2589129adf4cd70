// @asb/api: the upstream objects (Sandbox, SandboxTemplate, SandboxClaim, SandboxWarmPool) as zod
// schemas — types, defaults and validation from one definition per kind and version — plus YAML
// parsing, version conversion, quantities, labels and conditions. Every export is listed by name.

// ---- groups, versions, metadata ----
export {
  SANDBOX_GROUP, EXTENSIONS_GROUP, VERSIONS, HUB_VERSION, type Version,
  ObjectMeta, PodMetadata, OwnerReference, Labels, Annotations, DateTime, ANNOTATIONS_MAX_BYTES,
  dnsLabel, dnsSubdomain, dns1035Label, isDns1123Label, isDns1123Subdomain, isDns1035Label, isQualifiedName, isLabelValue,
  objectMeta, resource, withoutManagedFields, type NameRule, type FieldHints,
} from './meta.ts';

// ---- embedded Kubernetes types ----
export {
  PodSpec, PodTemplate, Container, ContainerPort, EnvVar, Probe, ResourceRequirements, SecurityContext, VolumeMount, Volume,
  Toleration, PodSecurityContext, PodDNSConfig, LabelSelector, PersistentVolumeClaimSpec, VolumeClaimTemplate, VolumeClaimTemplates,
} from './podspec.ts';
export { parseQuantity, bytes, cpuMillis, isQuantity, Quantity, ResourceList, QuantityError } from './quantity.ts';

// ---- the four kinds (hub schema/type under the kind's name; served versions suffixed) ----
export {
  Sandbox, SandboxV1alpha1, SandboxV1beta1, SandboxShutdownPolicy, SandboxOperatingMode, SANDBOX_HINTS,
  type SandboxInput, type SandboxSpec, type SandboxStatus,
} from './sandbox.ts';
export {
  SandboxTemplate, SandboxTemplateV1alpha1, SandboxTemplateV1beta1, NetworkPolicySpec, NetworkPolicyManagement,
  EnvVarsInjectionPolicy, VolumeClaimTemplatesPolicy, ANNOTATION_V1BETA1_VCT_POLICY, TEMPLATE_HINTS,
  type SandboxTemplateInput, type SandboxTemplateSpec,
} from './template.ts';
export {
  SandboxClaim, SandboxClaimV1alpha1, SandboxClaimV1beta1, ClaimLifecycle, ClaimShutdownPolicy, ClaimEnvVar, WarmPoolPolicy,
  SandboxTemplateRef, SandboxWarmPoolRef, WARM_POOL_DEFAULT, WARM_POOL_NONE, SHADOW_POOL_PREFIX,
  ANNOTATION_CLAIM_V1ALPHA1_INTENT, ANNOTATION_CLAIM_V1BETA1_FIELDS, ClaimV1alpha1Intent, ClaimV1beta1Fields, claimSource, CLAIM_HINTS,
  type ClaimSource, type SandboxClaimInput, type SandboxClaimSpec, type SandboxClaimStatus,
} from './claim.ts';
export {
  SandboxWarmPool, SandboxWarmPoolV1alpha1, SandboxWarmPoolV1beta1, WarmPoolUpdateStrategy, WarmPoolUpdateStrategyType, WARMPOOL_HINTS,
  type SandboxWarmPoolInput, type SandboxWarmPoolSpec,
} from './warmpool.ts';
export { KINDS, KIND_NAMES, KIND_GROUP, SCHEMAS, isKind, describeServed, type Kind, type KindInfo, type AnyObject, type HubObject } from './kinds.ts';

// ---- validation, YAML, conversion ----
export { validateObject, validateHub, type Validated } from './validate.ts';
export { parseManifests, parsePath, type ManifestResult, type ParseManifestsOptions } from './manifests.ts';
export { formatIssues, issuesToErrors, renderPath, closestField, errorMap, type FieldError } from './issues.ts';
export { toHub, fromHub, convert, versionOf, v1beta1PoolFor, type FromHubOptions, type HubOf, type ServedOf } from './convert.ts';

// ---- labels, annotations, conditions ----
export {
  LABEL_SANDBOX_NAME_HASH, isSystemReservedKey, normalizeCreatedBy, ANNOTATION_POD_NAME, ANNOTATION_PROPAGATED_LABELS, ANNOTATION_PROPAGATED_ANNOTATIONS,
  LABEL_WARM_POOL_SANDBOX, LABEL_SANDBOX_TEMPLATE_REF_HASH, LABEL_SANDBOX_POD_TEMPLATE_HASH, LABEL_SANDBOX_TEMPLATE_HASH,
  ANNOTATION_SANDBOX_TEMPLATE_REF, LABEL_ADOPTABLE, LABEL_POOL_LEGACY, LABEL_CLAIM_UID, LABEL_SANDBOX_NAME, ANNOTATION_SANDBOX_NAME,
  LABEL_LAUNCH_TYPE, LaunchType, LABEL_CREATED_BY, ANNOTATION_CONTROLLER_FIRST_OBSERVED_AT, ANNOTATION_WEBHOOK_FIRST_OBSERVED_AT,
  ANNOTATION_CLIENT_FIRST_REQUESTED_AT, ANNOTATION_TRACE_CONTEXT, RESTRICTED_METADATA_DOMAINS, ANNOTATION_SAFE_TO_EVICT,
  isRestrictedMetadataKey, nameHash,
} from './labels.ts';
export {
  Condition, ConditionStatus, SandboxConditions, SandboxClaimConditions, ConditionType,
  SandboxReadyReason, SandboxSuspendedReason, SandboxFinishedReason, ClaimReadyReason,
  newCondition, setCondition, findCondition, isConditionTrue, removeCondition,
} from './conditions.ts';

// ---- the wire contract shared by engine, SDK, CLI and MCP ----
export {
  STATUS_OF, REASONS, isReason, DEFAULT_TEMPLATE, rfc3339, rfc3339Millis, sandboxInfo, NamespaceName, CreateSandboxBody,
  TERMINAL_REASONS, isTerminalReason, buildClaim,
  type Reason, type SandboxInfo, type SandboxPhase, type SandboxLike, type WorkloadView, type SandboxContext,
  type TerminalReason, type ClaimRequest, type ClaimBody,
} from './wire.ts';
