// Condition types, each with the reasons it can carry (reference §1.1, §1.3). `Ready` is observed
// state; desired state has other words (`replicas`, `operatingMode`).

export const ConditionType = { Ready: 'Ready', Finished: 'Finished', Suspended: 'Suspended' } as const;

/** Reasons of a Sandbox's Ready condition. True: DependenciesReady. False: the rest. */
export const SandboxReadyReason = {
  DependenciesReady: 'DependenciesReady',
  DependenciesNotReady: 'DependenciesNotReady',
  ReconcilerError: 'ReconcilerError',
  SandboxExpired: 'SandboxExpired',
  SandboxSuspended: 'SandboxSuspended',
} as const;

/** Reasons of a SandboxClaim's Ready condition (otherwise the Sandbox's Ready is copied). */
export const ClaimReadyReason = {
  TemplateNotFound: 'TemplateNotFound',
  InvalidMetadata: 'InvalidMetadata',
  ReconcilerError: 'ReconcilerError',
  ClaimExpired: 'ClaimExpired',
  SandboxMissing: 'SandboxMissing',
  SandboxExpired: 'SandboxExpired',
  SandboxNotReady: 'SandboxNotReady',
  WarmPoolNotFound: 'WarmPoolNotFound',
} as const;

export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number;
}
