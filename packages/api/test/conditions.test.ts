import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  Condition,
  SandboxConditions,
  SandboxClaimConditions,
  SandboxReadyReason,
  ClaimReadyReason,
  newCondition,
  setCondition,
  findCondition,
  isConditionTrue,
  removeCondition,
} from '../src/index.ts';

const now = new Date('2026-01-02T15:04:05.678Z');
const later = new Date('2026-01-02T16:00:00Z');

describe('condition declarations', () => {
  it("declare every reason upstream v0.5.6 sets on a Sandbox's Ready condition, and the kubelet's waiting reasons", () => {
    assert.deepEqual(Object.keys(SandboxReadyReason).sort(), [
      'CreateContainerConfigError',
      'DependenciesNotReady',
      'DependenciesReady',
      'ErrImageNeverPull',
      'ErrImagePull',
      'ImagePullBackOff',
      'InvalidImageName',
      'MultiplePods',
      'PodFailed',
      'PodSucceeded',
      'ReconcilerError',
      'SandboxExpired',
      'SandboxSuspended',
    ]);
  });

  it("declare every reason the claim controller sets on a claim's Ready condition", () => {
    for (const r of [
      'TemplateNotFound',
      'WarmPoolNotFound',
      'InvalidMetadata',
      'EnvVarsInjectionRejected',
      'VolumeClaimTemplatesError',
      'AdoptionConflict',
      'SandboxCreatePending',
      'ReconcilerError',
      'ClaimExpired',
      'SandboxMissing',
      'SandboxExpired',
      'SandboxNotReady',
    ]) {
      assert.ok(r in ClaimReadyReason, r);
    }
  });

  it('give Ready=True to DependenciesReady only', () => {
    const trueReasons = Object.entries(SandboxConditions.Ready.reasons)
      .filter(([, d]) => d.status === 'True')
      .map(([r]) => r);
    assert.deepEqual(trueReasons, ['DependenciesReady']);
    assert.ok(Object.values(SandboxClaimConditions.Ready.reasons).every((d) => d.status === 'False'));
  });

  it('use reasons the Condition schema accepts', () => {
    for (const group of [SandboxConditions, SandboxClaimConditions]) {
      for (const decl of Object.values(group)) {
        for (const reason of Object.keys(decl.reasons)) {
          const c = newCondition(decl, reason as never, 'A sentence.', { now });
          assert.ok(Condition.safeParse(c).success, `${decl.type}/${reason}`);
        }
      }
    }
  });
});

describe('newCondition', () => {
  it('takes the status from the declaration and writes RFC 3339 time without milliseconds', () => {
    const c = newCondition(SandboxConditions.Suspended, 'PodStateUnknown', 'Reconciling the pod failed.', {
      now,
      observedGeneration: 3,
    });
    assert.deepEqual(c, {
      type: 'Suspended',
      status: 'Unknown',
      reason: 'PodStateUnknown',
      message: 'Reconciling the pod failed.',
      lastTransitionTime: '2026-01-02T15:04:05Z',
      observedGeneration: 3,
    });
  });

  it('refuses a reason the condition does not declare', () => {
    assert.throws(
      () => newCondition(SandboxConditions.Finished, 'DependenciesReady' as never, 'x', { now }),
      /Finished has no reason DependenciesReady/,
    );
  });
});

describe('setCondition', () => {
  const ready = newCondition(SandboxConditions.Ready, 'DependenciesNotReady', 'Pod exists with phase: Pending', {
    now,
  });

  it('adds a condition of a new type', () => {
    assert.deepEqual(setCondition(undefined, ready), [ready]);
  });

  it('keeps lastTransitionTime when the status did not change, so "since" stays true', () => {
    const next = newCondition(SandboxConditions.Ready, 'DependenciesNotReady', 'Pod is Running but not Ready', {
      now: later,
    });
    const [c] = setCondition([ready], next);
    assert.equal(c?.lastTransitionTime, '2026-01-02T15:04:05Z');
    assert.equal(c?.message, 'Pod is Running but not Ready');
  });

  it('moves lastTransitionTime when the status changes', () => {
    const next = newCondition(SandboxConditions.Ready, 'DependenciesReady', 'Pod is Ready', { now: later });
    const list = setCondition([ready], next);
    assert.equal(list[0]?.lastTransitionTime, '2026-01-02T16:00:00Z');
    assert.ok(isConditionTrue(list, 'Ready'));
  });

  it('leaves the input list alone and other types in place', () => {
    const finished = newCondition(SandboxConditions.Finished, 'PodSucceeded', 'The pod exited 0.', { now });
    const before = [finished, ready];
    const after = setCondition(
      before,
      newCondition(SandboxConditions.Ready, 'SandboxExpired', 'Sandbox has expired', { now: later }),
    );
    assert.equal(before[1], ready);
    assert.equal(findCondition(after, 'Finished'), finished);
    assert.deepEqual(
      removeCondition(after, 'Finished').map((c) => c.type),
      ['Ready'],
    );
  });
});
