// What an update may not change: upstream's CEL rules (x-kubernetes-validations in its CRDs). On
// Kubernetes the API server enforces them from our CRDs (the generator copies the rule); the local
// engine's store checks the same rule with `check`. One table, so the two cannot drift.
import { isDeepStrictEqual } from 'node:util';
import type { Kind } from './kinds.ts';

export interface UpdateRule {
  /** The object field the rule sits on (the CRD gets it there). */
  on: 'spec';
  /** Upstream's CEL, word for word. */
  rule: string;
  message: string;
  /** The same rule in TypeScript: true when the update from `old` to `next` is allowed. */
  check(old: Record<string, unknown> | undefined, next: Record<string, unknown> | undefined): boolean;
}

export const UPDATE_RULES: Partial<Record<Kind, UpdateRule[]>> = {
  Sandbox: [
    {
      on: 'spec',
      rule:
        'has(self.volumeClaimTemplates) == has(oldSelf.volumeClaimTemplates) && ' +
        '(!has(self.volumeClaimTemplates) || self.volumeClaimTemplates == oldSelf.volumeClaimTemplates)',
      message: 'volumeClaimTemplates is immutable',
      check: (old, next) => isDeepStrictEqual(old?.volumeClaimTemplates, next?.volumeClaimTemplates),
    },
  ],
};

/** The rules an update breaks: `spec: message` for each (empty: allowed). */
export function updateViolations(
  kind: Kind,
  old: { spec?: unknown },
  next: { spec?: unknown },
): Array<{ field: string; message: string }> {
  return (UPDATE_RULES[kind] ?? [])
    .filter((r) => !r.check(old[r.on] as Record<string, unknown>, next[r.on] as Record<string, unknown>))
    .map((r) => ({ field: r.on, message: r.message }));
}
