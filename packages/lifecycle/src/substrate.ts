// The seam between the lifecycle logic and a substrate. The reconcilers in this package see only
// these interfaces: an object store with optimistic concurrency (the local engine's SQLite store,
// or the kube-apiserver), the workloads that back Sandboxes (a gVisor sandbox, or a Pod), an event
// recorder and a clock. Nothing here knows gVisor or Kubernetes.
import type { Sandbox, SandboxClaim, SandboxTemplate, SandboxWarmPool } from '@asb/api';

export interface HubKinds {
  Sandbox: Sandbox;
  SandboxTemplate: SandboxTemplate;
  SandboxClaim: SandboxClaim;
  SandboxWarmPool: SandboxWarmPool;
}
export type KindName = keyof HubKinds;
export type AnyHub = HubKinds[KindName];

export interface ListOptions {
  namespace?: string;
  /** Every label must match exactly. */
  labels?: Record<string, string>;
  /** May be answered from the store's watch cache, which can lag the last writes: only for
   *  reads whose staleness a later write catches (a resourceVersion conflict). The objects may be
   *  the cache's own (the local store's are frozen): read them, never change them. */
  cached?: boolean;
}

export interface GetOptions {
  /** Answer from the watch cache only, a miss included: for a lookup whose "absent" a later
   *  create corrects (AlreadyExists), where asking the API server on every miss costs a call.
   *  The object may be the cache's own: read it, never change it. */
  cached?: boolean;
}

export interface DeleteOptions {
  /** Delete only if the object still has this uid (a precondition, as in Kubernetes). */
  uid?: string;
  /** Background (default): owned objects are collected afterwards; Foreground: before. */
  propagation?: 'Background' | 'Foreground';
}

/**
 * Objects as the API server keeps them: create assigns uid, resourceVersion, generation and
 * creationTimestamp (and a name from generateName); update and updateStatus fail with
 * ConflictError when the given resourceVersion is not the stored one; delete removes the
 * objects the deleted one controls (ownerReferences), as the garbage collector does.
 */
export interface ObjectStore {
  get<K extends KindName>(
    kind: K,
    namespace: string,
    name: string,
    opts?: GetOptions,
  ): Promise<HubKinds[K] | undefined>;
  list<K extends KindName>(kind: K, opts?: ListOptions): Promise<Array<HubKinds[K]>>;
  create<T extends AnyHub>(obj: T): Promise<T>;
  /** metadata and spec; status is kept. generation goes up when spec changed. */
  update<T extends AnyHub>(obj: T): Promise<T>;
  /** status only. */
  updateStatus<T extends AnyHub>(obj: T): Promise<T>;
  /** false when there was nothing to delete. */
  delete(kind: KindName, namespace: string, name: string, opts?: DeleteOptions): Promise<boolean>;
}

/** `old` (MODIFIED only): the object before the change, so a change of owner reaches both owners. */
export type WatchEvent = { type: 'ADDED' | 'MODIFIED' | 'DELETED'; object: AnyHub; old?: AnyHub };

/** What a controller needs on top of the store: to hear about every change. */
export interface WatchableStore extends ObjectStore {
  /** Calls `fn` for each change from now on; returns the unsubscribe. */
  watch(fn: (ev: WatchEvent) => void): () => void;
}

/** The observed state of the workload behind one Sandbox (a pod's phase and readiness). */
export interface WorkloadState {
  phase: 'Pending' | 'Running' | 'Succeeded' | 'Failed';
  /** The runtime answers: commands can be sent. */
  ready: boolean;
  /** For conditions: why it is not ready, or how it ended. */
  message: string;
  /** Why it is not ready, when the substrate says more than "pending" (the kubelet's waiting
   *  reasons: ErrImagePull, ImagePullBackOff, ...): the Ready condition's reason then. */
  reason?:
    'ErrImagePull' | 'ErrImageNeverPull' | 'ImagePullBackOff' | 'InvalidImageName' | 'CreateContainerConfigError';
  podIPs: string[];
  /** Where it runs (a Kubernetes node), when the substrate has nodes. */
  nodeName?: string;
  /** The pod's PodScheduled condition, when the substrate schedules (mirrored on the Sandbox). */
  scheduled?: {
    status: 'True' | 'False' | 'Unknown';
    reason: string;
    message: string;
    /** RFC 3339, when it became so. */ since?: string;
  };
  /** The Service in front of it (spec.service true), once it exists. */
  service?: string;
}

/** What `stop` left behind. */
export interface StopState {
  /** gone: no workload; ending: its processes are ending (a pod terminating); notOwned: a workload
   *  by the Sandbox's name belongs to someone else, and was not touched. */
  stage: 'gone' | 'ending' | 'notOwned';
  /** While ending: the pod's PodScheduled, still mirrored on the Sandbox. */
  scheduled?: WorkloadState['scheduled'];
  /** The Service in front of the Sandbox, when it is kept (suspend, spec.service true). */
  service?: string;
}

/**
 * The workloads behind Sandboxes. Locally a gVisor sandbox per Sandbox; on Kubernetes a Pod.
 * `ensure` must be idempotent and may start the workload asynchronously: the substrate calls the
 * `onChange` listener when a workload's state changes, and the Sandbox is reconciled again.
 */
export interface Workloads {
  /** Starts the workload if there is none (or it was stopped); reports what is there now. */
  ensure(sandbox: Sandbox): Promise<WorkloadState>;
  /**
   * Ends the workload's processes; volumes and identity stay (suspend, expiry). A workload by the
   * Sandbox's name that is not its own is left alone. `suspend`: the Sandbox stays, and so does its
   * Service (spec.service), as upstream keeps it while suspended.
   */
  stop(sandbox: Sandbox, opts?: { suspend?: boolean }): Promise<StopState>;
  /** The Sandbox object is gone: free everything, volumes included. Idempotent. */
  release(namespace: string, name: string): Promise<void>;
  onChange(fn: (namespace: string, name: string, change?: WorkloadChange) => void): void;
}

/** What a workload's change notice may say beyond "it changed". */
export interface WorkloadChange {
  /**
   * It is Ready, has ended, or is gone: a state its Sandbox (and claim) report at once, not
   * batched with the changes that follow (none follow soon; a claim waits for Ready).
   */
  settled?: boolean;
}

export interface Recorder {
  event(obj: AnyHub, type: 'Normal' | 'Warning', reason: string, message: string): void;
}

export interface Clock {
  now(): Date;
}
export const systemClock: Clock = { now: () => new Date() };

/** The store's errors, by name, so every substrate maps its own onto them. */
export class ConflictError extends Error {
  override readonly name = 'ConflictError';
}
export class AlreadyExistsError extends Error {
  override readonly name = 'AlreadyExistsError';
}
export class NotFoundError extends Error {
  override readonly name = 'NotFoundError';
}

/** A workload's invariant broken: more than one pod is controlled by the Sandbox (upstream's
 *  multipleSandboxPodsError). Reported as Ready=False/MultiplePods, not retried in a loop: a pod's
 *  own change brings the next pass. */
export class MultiplePodsError extends Error {
  override readonly name = 'MultiplePodsError';
  constructor(readonly count: number) {
    super(`multiple Pods (${count}) are controlled by this Sandbox; refusing to choose or create a Pod`);
  }
}

export const isConflict = (err: unknown): boolean => (err as Error)?.name === 'ConflictError';
export const isAlreadyExists = (err: unknown): boolean => (err as Error)?.name === 'AlreadyExistsError';
export const isNotFound = (err: unknown): boolean => (err as Error)?.name === 'NotFoundError';

/** What a reconcile asks of its queue: come back after this long (expiry, a retry). */
export interface Result {
  requeueAfterMs?: number;
}

/**
 * The seam: what the reconcilers need of a substrate. The controller's own settings (the cluster
 * domain, warm-pool eviction, refill shaping, claims first) are not here: they are the
 * controller's options, and what they remember lives on the objects that own it (RefillPolicy,
 * PoolReconciler, ClaimReconciler).
 */
export interface Deps {
  store: ObjectStore;
  workloads: Workloads;
  recorder: Recorder;
  clock: Clock;
}
