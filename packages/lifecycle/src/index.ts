// @asb/lifecycle: the claim, warm-pool, sandbox and expiry logic, written once against the
// substrate interface (substrate.ts) and run by the local engine and the Kubernetes controller.
export * from './substrate.ts';
export { WorkQueue, type QueueOptions } from './queue.ts';
export {
  reconcileSandbox,
  isSandboxReady,
  decideSandboxExpiry,
  suspendedStatus,
  errorStatus,
  runningStatus,
  DEFAULT_CLUSTER_DOMAIN,
  type SandboxReconcileOptions,
} from './sandbox-reconciler.ts';
export {
  ClaimReconciler,
  claimExpiry,
  decideClaimExpiry,
  decideSource,
  decideClaimStatus,
  failedStatus,
  type ClaimExpiryPlan,
  type SourceObservation,
  type ClaimFailure,
} from './claim-reconciler.ts';
export {
  PoolReconciler,
  CreateExpectations,
  decidePool,
  UNREADY_REPLACE_MS,
  UNSCHEDULABLE_RECHECK_MS,
  formatGoDuration,
  isUnschedulable,
  type PoolTimings,
  type PoolObservation,
  type PoolPlan,
  type PoolReconcilerOptions,
} from './pool-reconciler.ts';
export {
  RefillPolicy,
  CLAIMS_QUIET_MS,
  CLAIMS_FIRST_POLL_MS,
  type RefillPolicyOptions,
  type RefillGrant,
  type ClaimQueue,
} from './refill-policy.ts';
export {
  sandboxForPool,
  sandboxForClaim,
  adoptedByClaim,
  podTemplateHash,
  injectEnv,
  mergeVolumeClaimTemplates,
} from './blueprint.ts';
export { keyOf, splitKey, controllerRef, controllerOf, isControlledBy, STATUS_SETTLE_MS } from './objects.ts';
export { LifecycleController, type ControllerOptions } from './controller.ts';
