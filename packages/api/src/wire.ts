// The wire contract that the engine, the SDK's connectors, the CLI and MCP share: what a sandbox
// looks like to a client (SandboxInfo, and the one mapping from a Sandbox object to it), the
// body of "create a sandbox", the error reasons with their HTTP statuses (reasons.ts), which
// claim and sandbox condition reasons will not fix themselves, the claim a client makes, RFC 3339
// times, and the template a sandbox comes from when nobody names one.
import { z } from 'zod';
import { EXTENSIONS_GROUP } from './meta.ts';
import { ANNOTATION_SANDBOX_TEMPLATE_REF, LABEL_CREATED_BY } from './labels.ts';

export { STATUS_OF, REASONS, isReason, type Reason } from './reasons.ts';

/** The template a sandbox is made from when none is named (SDK, CLI, MCP and engine alike). */
export const DEFAULT_TEMPLATE = 'python-runtime-template';

/** RFC 3339 in UTC to the second, as Kubernetes writes metav1.Time ("2026-01-02T03:04:05Z"). */
export function rfc3339(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** RFC 3339 with milliseconds ("2026-01-02T03:04:05.678Z"): start and ready times of a sandbox,
 *  and the client's request time, where a second is too coarse. */
export function rfc3339Millis(d: Date): string {
  return d.toISOString();
}

/** RFC 3339 with microseconds, from the high-resolution clock (upstream stamps RFC3339Nano, and
 *  readers expect a fraction finer than a millisecond): "2026-01-02T03:04:05.678901Z". */
export function rfc3339Micros(epochMs = performance.timeOrigin + performance.now()): string {
  const micros = Math.round(epochMs * 1000);
  const ms = Math.floor(micros / 1000);
  return new Date(ms).toISOString().replace(/Z$/, `${String(micros - ms * 1000).padStart(3, '0')}Z`);
}

// ---- a sandbox as a client sees it ----

export type SandboxPhase = 'Pending' | 'Running' | 'Failed' | 'Suspended';

export interface SandboxInfo {
  id: string;
  name: string;
  namespace: string;
  uid: string;
  /** The SandboxClaim that owns it (Sandbox.create makes one), if any. */
  claim?: string;
  /** The SandboxWarmPool that owns it while it waits to be claimed (local engine). */
  pool?: string;
  template?: string;
  phase: SandboxPhase;
  ready: boolean;
  message: string;
  /** The Ready condition's reason (DependenciesReady, SandboxSuspended, ...). */
  reason?: string;
  image: string;
  /** The local engine's container id of its workload. */
  containerId?: string;
  createdAt: string;
  readyAt?: string;
  startupMs?: number;
  /** The snapshot its running processes were restored from (resume, fork, golden start). */
  restoredFrom?: string;
  /** While suspended with a snapshot: the snapshot the next resume restores. */
  resumeSnapshot?: string;
  /** The local engine's limits of its workload (cpu, memory, pids, disk). */
  limits?: Record<string, number | undefined>;
  /** The local engine's address of a networked sandbox (none: offline, loopback only). */
  address?: string;
}

/** What sandboxInfo reads of a Sandbox (a hub object, or one served by an API server). */
export interface SandboxLike {
  metadata: {
    name?: string;
    namespace?: string;
    uid?: string;
    creationTimestamp?: string | null;
    annotations?: Record<string, string>;
    ownerReferences?: Array<{ kind: string; name: string; controller?: boolean }>;
  };
  spec?: { operatingMode?: string; podTemplate?: { spec?: { containers?: Array<{ image?: string }> } } } | null;
  status?: { conditions?: Array<ConditionLike> } | null;
}

interface ConditionLike {
  type: string;
  status: string;
  reason?: string;
  message?: string;
  lastTransitionTime?: string;
}

/** The local engine's workload of a sandbox, as far as a client sees it. */
export interface WorkloadView {
  phase: 'Pending' | 'Running' | 'Failed';
  containerId?: string;
  startedAt: Date;
  readyAt?: Date;
  restoredFrom?: string;
  limits?: Record<string, number | undefined>;
  network?: { address: string };
}

/** What is known beside the Sandbox: on the engine its workload; on a cluster its claim. */
export type SandboxContext =
  | { substrate: 'engine'; workload?: WorkloadView; resumeSnapshot?: string }
  | { substrate: 'kubernetes'; claim?: { metadata: { name: string }; spec?: ClaimRefs | null } };

type ClaimRefs = { sandboxTemplateRef?: { name: string }; warmPoolRef?: { name: string } };

/**
 * A Sandbox as SandboxInfo. The engine knows the workload (its phase, start and ready times);
 * on a cluster the phase comes from the Ready condition, and the template from the claim.
 */
export function sandboxInfo(sb: SandboxLike, ctx: SandboxContext): SandboxInfo {
  const name = sb.metadata.name ?? '';
  const ready = sb.status?.conditions?.find((c) => c.type === 'Ready');
  const owner = sb.metadata.ownerReferences?.find((o) => o.controller);
  const suspendedSpec = sb.spec?.operatingMode === 'Suspended';
  let phase: SandboxPhase;
  let template: string | undefined;
  let claim = owner?.kind === 'SandboxClaim' ? owner.name : undefined;
  let local: Partial<SandboxInfo>;
  if (ctx.substrate === 'engine') {
    const w = ctx.workload;
    phase = suspendedSpec ? 'Suspended' : (w?.phase ?? 'Pending');
    template = sb.metadata.annotations?.[ANNOTATION_SANDBOX_TEMPLATE_REF];
    local = {
      pool: owner?.kind === 'SandboxWarmPool' ? owner.name : undefined,
      containerId: w?.containerId,
      readyAt: w?.readyAt ? rfc3339Millis(w.readyAt) : undefined,
      startupMs: w?.readyAt ? w.readyAt.getTime() - w.startedAt.getTime() : undefined,
      restoredFrom: w?.restoredFrom,
      limits: w?.limits,
      address: w?.network?.address,
    };
  } else {
    const suspended = suspendedSpec || ready?.reason === 'SandboxSuspended';
    phase = suspended
      ? 'Suspended'
      : ready?.status === 'True'
        ? 'Running'
        : ready?.reason === 'ReconcilerError'
          ? 'Failed'
          : 'Pending';
    template = ctx.claim?.spec?.sandboxTemplateRef?.name ?? ctx.claim?.spec?.warmPoolRef?.name;
    claim = ctx.claim?.metadata.name ?? claim;
    local = { readyAt: ready?.status === 'True' ? ready.lastTransitionTime : undefined };
  }
  return {
    id: name,
    name,
    namespace: sb.metadata.namespace ?? 'default',
    uid: sb.metadata.uid ?? '',
    claim,
    pool: local.pool,
    template,
    phase,
    ready: ready?.status === 'True',
    message: ready?.message ?? '',
    reason: ready?.reason,
    image: sb.spec?.podTemplate?.spec?.containers?.[0]?.image ?? '',
    containerId: local.containerId,
    createdAt: sb.metadata.creationTimestamp ?? '',
    readyAt: local.readyAt,
    startupMs: local.startupMs,
    restoredFrom: local.restoredFrom,
    resumeSnapshot: ctx.substrate === 'engine' ? ctx.resumeSnapshot : undefined,
    limits: local.limits,
    ...(local.address ? { address: local.address } : {}),
  };
}

// ---- create ----

/** A DNS-1123 label, as Kubernetes namespaces are. */
export const NamespaceName = z
  .string()
  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'must be a DNS-1123 label: lowercase letters, digits and "-"')
  .max(63);

/** POST /v1/sandboxes: a sandbox from a template (through a claim), or a fork of a snapshot. */
export const CreateSandboxBody = z
  .object({
    template: z.string().min(1).max(253).optional(),
    /** A sandbox that runs this OCI image (pulled as Kubernetes would: `:latest` Always, else
     *  IfNotPresent), with the engine's default limits and no network, instead of a template. */
    image: z.string().min(1).max(1024).optional(),
    /** A fork: a new sandbox from this snapshot instead of from a template. */
    fromSnapshot: z.string().min(1).max(100).optional(),
    namespace: NamespaceName.default('default'),
    name: z.string().max(63).optional(),
    ttlSeconds: z.number().int().positive().optional(),
    /** "default" (any pool of the template), "none" (always cold) or a pool name. */
    warmpool: z.string().max(253).optional(),
    timeoutMs: z.number().int().positive().max(600_000).optional(),
  })
  .strict();
export type CreateSandboxBody = z.infer<typeof CreateSandboxBody>;

// ---- condition reasons that will not fix themselves ----

/**
 * Ready reasons of a claim or a sandbox that waiting will not change: a client stops waiting
 * and says why. The claim's (TemplateNotFound, WarmPoolNotFound, InvalidMetadata,
 * EnvVarsInjectionRejected, VolumeClaimTemplatesError, ClaimExpired, ReconcilerError; upstream
 * v0.5 claim reasons) and the sandbox's that a claim copies (ReconcilerError; PodFailed and
 * PodSucceeded: its pod has ended, and upstream does not restart it).
 */
export const TERMINAL_REASONS = [
  'TemplateNotFound',
  'WarmPoolNotFound',
  'InvalidMetadata',
  'EnvVarsInjectionRejected',
  'VolumeClaimTemplatesError',
  'ClaimExpired',
  'ReconcilerError',
  'PodFailed',
  'PodSucceeded',
  // The container cannot start until its image or its config is fixed (the local engine keeps
  // trying a failed pull in the background, as the kubelet does): a waiter is told at once.
  'ErrImagePull',
  'ErrImageNeverPull',
  'ImagePullBackOff',
  'InvalidImageName',
  'CreateContainerConfigError',
] as const;
export type TerminalReason = (typeof TERMINAL_REASONS)[number];

export function isTerminalReason(reason: string | undefined): reason is TerminalReason {
  return (TERMINAL_REASONS as readonly string[]).includes(reason ?? '');
}

// ---- the claim a client makes ----

export interface ClaimRequest {
  name: string;
  namespace?: string;
  /** From a template (with a warm-pool policy), or from a pool by name (v1beta1 warmPoolRef). */
  from: { template: string; warmpool?: string } | { warmPool: string };
  /** The claim expires (and deletes its sandbox) this many seconds after `now`. */
  ttlSeconds?: number;
  now: Date;
  /** The created-by label: who made it (asb-sdk, asb-engine-api). */
  createdBy: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  /**
   * The version written. A claim by pool is v1beta1 (v1alpha1 has no warmPoolRef). A claim by
   * template is written to an API server as v1alpha1 (a served v1beta1 claim names a pool), and
   * to the local engine's store as its hub (v1beta1, which keeps the template and policy).
   */
  version: 'v1alpha1' | 'v1beta1';
}

export interface ClaimBody {
  apiVersion: string;
  kind: 'SandboxClaim';
  metadata: { name: string; namespace?: string; labels: Record<string, string>; annotations?: Record<string, string> };
  spec: {
    sandboxTemplateRef?: { name: string };
    warmpool?: string;
    warmPoolRef?: { name: string };
    lifecycle?: { shutdownTime: string; shutdownPolicy: 'Delete' };
  };
}

/** The SandboxClaim that "create a sandbox" makes, on either substrate. */
export function buildClaim(r: ClaimRequest): ClaimBody {
  const byPool = 'warmPool' in r.from;
  const spec: ClaimBody['spec'] =
    'warmPool' in r.from
      ? { warmPoolRef: { name: r.from.warmPool } }
      : {
          sandboxTemplateRef: { name: r.from.template },
          ...(r.from.warmpool !== undefined ? { warmpool: r.from.warmpool } : {}),
        };
  if (r.ttlSeconds) {
    const shutdownTime = rfc3339(new Date(r.now.getTime() + r.ttlSeconds * 1000));
    spec.lifecycle = { shutdownTime, shutdownPolicy: 'Delete' };
  }
  return {
    apiVersion: `${EXTENSIONS_GROUP}/${byPool ? 'v1beta1' : r.version}`,
    kind: 'SandboxClaim',
    metadata: {
      name: r.name,
      ...(r.namespace !== undefined ? { namespace: r.namespace } : {}),
      labels: { [LABEL_CREATED_BY]: r.createdBy, ...r.labels },
      ...(r.annotations ? { annotations: r.annotations } : {}),
    },
    spec,
  };
}
