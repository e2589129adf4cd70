// @asb/lifecycle: the claim, warm-pool, sandbox and expiry logic, written once against the
// substrate interface (substrate.ts) and run by the local engine and the Kubernetes controller.
export * from './substrate.ts';
export { WorkQueue, type QueueOptions } from './queue.ts';
export { reconcileSandbox, isSandboxReady } from './sandbox-reconciler.ts';
export { reconcileClaim, claimExpiry } from './claim-reconciler.ts';
export { reconcilePool, UNREADY_REPLACE_MS } from './pool-reconciler.ts';
export { sandboxForPool, sandboxForClaim, adoptedByClaim, podTemplateHash, injectEnv } from './blueprint.ts';
export { keyOf, splitKey, controllerRef, controllerOf, isControlledBy, rfc3339, STATUS_SETTLE_MS } from './objects.ts';
export { LifecycleController, type ControllerOptions } from './controller.ts';
