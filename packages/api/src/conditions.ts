// Status conditions, each declared with the reasons it may carry and the status each reason
// implies (upstream api/v1beta1/sandbox_types.go and the claim controller's computeReadyCondition).
// Desired state and observed state use different words: spec.operatingMode (spec.replicas in
// v1alpha1) says what the user wants; Ready says what is. There is deliberately no "Running"
// condition: a pod that is starting is Ready=False/DependenciesNotReady.
import { z } from 'zod';
import { DateTime, isQualifiedName } from './meta.ts';
import { rfc3339 } from './wire.ts';

export const ConditionStatus = z.enum(['True', 'False', 'Unknown']);
export type ConditionStatus = z.infer<typeof ConditionStatus>;

/** metav1.Condition, with the API server's limits. */
export const Condition = z
  .object({
    type: z.string().max(316).refine(isQualifiedName, { message: 'must be a qualified name such as Ready' }),
    status: ConditionStatus,
    observedGeneration: z.number().int().min(0).optional(),
    lastTransitionTime: DateTime,
    reason: z
      .string()
      .max(1024)
      .regex(/^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$/, 'must be a CamelCase word such as DependenciesReady'),
    message: z.string().max(32768),
  })
  .strict();
export type Condition = z.infer<typeof Condition>;

interface ReasonDecl {
  readonly status: ConditionStatus;
  readonly doc: string;
}
interface ConditionDecl {
  readonly type: string;
  readonly doc: string;
  readonly reasons: Readonly<Record<string, ReasonDecl>>;
}

export const SandboxConditions = {
  Ready: {
    type: 'Ready',
    doc: 'Observed readiness. True only when the pod is Running and Ready with at least one IP, and its Service exists when one is required (requested, or already present). Set on every reconcile with observedGeneration.',
    reasons: {
      DependenciesReady: {
        status: 'True',
        doc: 'Pod (and Service, if required) exist; the pod is Ready with an IP. Message: "Pod is Ready; Service Exists".',
      },
      DependenciesNotReady: {
        status: 'False',
        doc: 'Running was asked for but the pod or Service is not there or not Ready yet, e.g. "Pod exists with phase: Pending".',
      },
      ReconcilerError: { status: 'False', doc: 'The controller failed; message "Error seen: <error>".' },
      SandboxExpired: {
        status: 'False',
        doc: 'shutdownTime passed; pod and Service were deleted. Message "Sandbox has expired".',
      },
      SandboxSuspended: {
        status: 'False',
        doc: 'operatingMode is Suspended (replicas 0); the pod is deleted on purpose.',
      },
      PodSucceeded: { status: 'False', doc: 'The pod exited 0 and will not run again.' },
      PodFailed: { status: 'False', doc: 'The pod exited non-zero and will not run again.' },
      MultiplePods: { status: 'False', doc: 'More than one pod is controlled by this Sandbox; none is picked.' },
      // Ours: the kubelet's waiting reasons of the container, where upstream says only
      // DependenciesNotReady (the local engine has no Pod to read them from).
      ErrImagePull: { status: 'False', doc: "The image's pull failed; the message is the registry's." },
      ImagePullBackOff: { status: 'False', doc: 'Waiting to try a failed pull again (the wait doubles).' },
      ErrImageNeverPull: {
        status: 'False',
        doc: 'The image is not on the machine and its pull policy is Never (looked for again until it is).',
      },
      InvalidImageName: { status: 'False', doc: 'The image reference cannot be parsed.' },
      CreateContainerConfigError: {
        status: 'False',
        doc: "The image's config and the container's spec do not make a process (an unknown user, runAsNonRoot as root).",
      },
    },
  },
  Finished: {
    type: 'Finished',
    doc: 'The pod reached a terminal phase. Present (True) only while the pod is terminal; removed otherwise.',
    reasons: {
      PodSucceeded: { status: 'True', doc: 'The pod phase is Succeeded.' },
      PodFailed: { status: 'True', doc: 'The pod phase is Failed.' },
    },
  },
  Suspended: {
    type: 'Suspended',
    doc: 'Progress of a suspension. Set while Suspended; left as False/NotSuspended after a resume, so read Ready for the live state.',
    reasons: {
      PodTerminated: { status: 'True', doc: 'The pod is gone; the Sandbox and its volumes remain.' },
      PodTerminating: { status: 'False', doc: 'The pod is still shutting down.' },
      PodNotTerminated: { status: 'False', doc: 'v1alpha1 spelling of PodTerminating (deprecated upstream).' },
      PodNotOwned: { status: 'False', doc: "A pod with the Sandbox's name exists but belongs to someone else." },
      NotSuspended: { status: 'False', doc: 'operatingMode is Running again.' },
      PodStateUnknown: { status: 'Unknown', doc: 'Reconciling the pod failed, so its state is not known.' },
    },
  },
  PodScheduled: {
    type: 'PodScheduled',
    doc: "Mirrors the pod's PodScheduled condition (its own reasons, e.g. Unschedulable, are copied verbatim); absent without a pod.",
    reasons: {
      PodScheduled: { status: 'True', doc: 'Scheduled, and the pod gave no reason of its own.' },
      PodSchedulingUnknown: { status: 'Unknown', doc: 'The pod has not reported PodScheduled yet.' },
    },
  },
} as const satisfies Record<string, ConditionDecl>;

export const SandboxClaimConditions = {
  Ready: {
    type: 'Ready',
    doc: "The claim's readiness. One of the reasons below, or else the Sandbox's Ready condition copied verbatim (reason and all).",
    reasons: {
      TemplateNotFound: { status: 'False', doc: 'The SandboxTemplate does not exist; retried every minute.' },
      WarmPoolNotFound: { status: 'False', doc: 'warmPoolRef names a SandboxWarmPool that does not exist.' },
      InvalidMetadata: {
        status: 'False',
        doc: 'additionalPodMetadata uses a restricted key or conflicts with the template.',
      },
      EnvVarsInjectionRejected: {
        status: 'False',
        doc: "spec.env is not allowed by the template's envVarsInjectionPolicy.",
      },
      VolumeClaimTemplatesError: {
        status: 'False',
        doc: "spec.volumeClaimTemplates is not allowed by the template's volumeClaimTemplatesPolicy, or is invalid.",
      },
      AdoptionConflict: {
        status: 'False',
        doc: 'Another claim adopted the same warm Sandbox first; the next pass retries.',
      },
      SandboxCreatePending: { status: 'False', doc: 'The Sandbox was created and is not observed yet.' },
      ReconcilerError: { status: 'False', doc: 'The controller failed; message "Error seen: <error>".' },
      ClaimExpired: {
        status: 'False',
        doc: 'The claim\'s lifecycle ended; message "Claim expired. Sandbox cleanup initiated."',
      },
      SandboxMissing: { status: 'False', doc: "The claim's Sandbox does not exist." },
      SandboxExpired: { status: 'False', doc: 'The Sandbox expired on its own shutdownTime.' },
      SandboxNotReady: { status: 'False', doc: 'The Sandbox has no Ready condition yet.' },
    },
  },
  Finished: {
    type: 'Finished',
    doc: 'Mirrored from the Sandbox; its lastTransitionTime starts lifecycle.ttlSecondsAfterFinished.',
    reasons: SandboxConditions.Finished.reasons,
  },
} as const satisfies Record<string, ConditionDecl>;

type ReasonsOf<D extends ConditionDecl> = { readonly [R in keyof D['reasons'] & string]: R };
function reasonsOf<D extends ConditionDecl>(decl: D): ReasonsOf<D> {
  return Object.fromEntries(Object.keys(decl.reasons).map((r) => [r, r])) as ReasonsOf<D>;
}

export const ConditionType = {
  Ready: 'Ready',
  Finished: 'Finished',
  Suspended: 'Suspended',
  PodScheduled: 'PodScheduled',
} as const;
export const SandboxReadyReason = reasonsOf(SandboxConditions.Ready);
export type SandboxReadyReason = keyof typeof SandboxReadyReason;
export const SandboxSuspendedReason = reasonsOf(SandboxConditions.Suspended);
export type SandboxSuspendedReason = keyof typeof SandboxSuspendedReason;
export const SandboxFinishedReason = reasonsOf(SandboxConditions.Finished);
export type SandboxFinishedReason = keyof typeof SandboxFinishedReason;
export const ClaimReadyReason = reasonsOf(SandboxClaimConditions.Ready);
export type ClaimReadyReason = keyof typeof ClaimReadyReason;

/**
 * A condition with one of its declared reasons; the status comes from the declaration, so a
 * reason cannot be paired with the wrong status. Pass `now` in (no hidden clock).
 */
export function newCondition<D extends ConditionDecl>(
  decl: D,
  reason: keyof D['reasons'] & string,
  message: string,
  opts: { now: Date; observedGeneration?: number },
): Condition {
  const declared = decl.reasons[reason];
  if (!declared) throw new Error(`${decl.type} has no reason ${reason}`);
  return {
    type: decl.type,
    status: declared.status,
    reason,
    message,
    lastTransitionTime: rfc3339(opts.now),
    ...(opts.observedGeneration !== undefined ? { observedGeneration: opts.observedGeneration } : {}),
  };
}

/** Generic so that conditions of other kinds (a Gateway's, a PodSnapshot trigger's) are found alike. */
export function findCondition<C extends { type: string } = Condition>(
  conditions: readonly C[] | undefined,
  type: string,
): C | undefined {
  return conditions?.find((c) => c.type === type);
}

export function isConditionTrue(conditions: readonly Condition[] | undefined, type: string): boolean {
  return findCondition(conditions, type)?.status === 'True';
}

/**
 * meta.SetStatusCondition, pure: replaces the condition of the same type, keeping its
 * lastTransitionTime when the status did not change, so "since when" stays truthful and a
 * status write is skipped when nothing changed.
 */
export function setCondition(conditions: readonly Condition[] | undefined, next: Condition): Condition[] {
  const list = [...(conditions ?? [])];
  const i = list.findIndex((c) => c.type === next.type);
  if (i < 0) return [...list, next];
  const prev = list[i]!;
  list[i] = prev.status === next.status ? { ...next, lastTransitionTime: prev.lastTransitionTime } : next;
  return list;
}

export function removeCondition(conditions: readonly Condition[] | undefined, type: string): Condition[] {
  return (conditions ?? []).filter((c) => c.type !== type);
}
