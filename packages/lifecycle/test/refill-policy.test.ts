// RefillPolicy on its own: each case is a pool's passes in order (the time, what the pass sees,
// the claim queue and stream), and the grant each pass must get.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  CLAIMS_FIRST_POLL_MS,
  CLAIMS_QUIET_MS,
  RefillPolicy,
  type RefillGrant,
  type RefillPolicyOptions,
} from '../src/index.ts';

interface Pass {
  /** ms since the case began (the reconcilers' clock, and the claim stream's). */
  at: number;
  current: number;
  desired: number;
  want: number;
  /** Claims waiting in the queue during this pass. */
  queued?: boolean;
  /** A claim arrives just before this pass. */
  arrive?: boolean;
  /** The pool made this many members after the pass. */
  made?: number;
  expect: RefillGrant;
}

function run(opts: RefillPolicyOptions, passes: Pass[]): RefillGrant[] {
  let t = 0;
  let queued = false;
  const policy = new RefillPolicy(
    opts,
    {
      get length() {
        return queued ? 1 : 0;
      },
    },
    () => t,
  );
  return passes.map((p) => {
    t = p.at;
    queued = !!p.queued;
    if (p.arrive) policy.claimArrived();
    const g = policy.grant('default/p', p.current, p.desired, p.want, p.at);
    if (p.made) policy.created('default/p', p.made);
    return g;
  });
}

const cases: Array<{ name: string; opts: RefillPolicyOptions; passes: Pass[] }> = [
  {
    name: 'no shaping: everything wanted, at once',
    opts: {},
    passes: [
      { at: 0, current: 0, desired: 5, want: 5, made: 5, expect: { allow: 5 } },
      { at: 10, current: 2, desired: 5, want: 3, expect: { allow: 3 } },
    ],
  },
  {
    name: 'replenish delay: the first sight never holds; a drop holds, re-armed by the next drop',
    opts: { replenishDelayMs: 2000 },
    passes: [
      { at: 0, current: 0, desired: 3, want: 3, made: 3, expect: { allow: 3 } },
      { at: 100, current: 2, desired: 3, want: 1, expect: { allow: 0, retryMs: 2000 } },
      { at: 1600, current: 1, desired: 3, want: 2, expect: { allow: 0, retryMs: 2000 } },
      { at: 3000, current: 1, desired: 3, want: 2, expect: { allow: 0, retryMs: 600 } },
      { at: 3600, current: 1, desired: 3, want: 2, expect: { allow: 2 } },
    ],
  },
  {
    name: 'a full pool disarms the hold',
    opts: { replenishDelayMs: 2000 },
    passes: [
      { at: 0, current: 3, desired: 3, want: 0, expect: { allow: 0 } },
      { at: 100, current: 2, desired: 3, want: 1, expect: { allow: 0, retryMs: 2000 } },
      { at: 200, current: 3, desired: 3, want: 0, expect: { allow: 0 } },
      { at: 300, current: 3, desired: 4, want: 1, expect: { allow: 1 } },
    ],
  },
  {
    name: 'max refill rate: a bucket of one second, refilled with time',
    opts: { maxRefillRate: 2 },
    passes: [
      { at: 0, current: 0, desired: 5, want: 5, made: 2, expect: { allow: 2, retryMs: 500 } },
      { at: 500, current: 2, desired: 5, want: 3, made: 1, expect: { allow: 1, retryMs: 500 } },
      { at: 500, current: 3, desired: 5, want: 2, expect: { allow: 0, retryMs: 500 } },
      { at: 2000, current: 3, desired: 5, want: 2, expect: { allow: 2 } },
    ],
  },
  {
    name: 'our own creates are not a drop: a lagging count after them does not arm the hold',
    opts: { replenishDelayMs: 2000 },
    passes: [
      { at: 0, current: 1, desired: 3, want: 2, made: 2, expect: { allow: 2 } },
      { at: 100, current: 3, desired: 3, want: 0, expect: { allow: 0 } },
      { at: 200, current: 2, desired: 3, want: 1, expect: { allow: 0, retryMs: 2000 } },
    ],
  },
  {
    name: 'claims first off: a queue or a stream of claims changes nothing',
    opts: { claimsFirstRefillPerS: 1 },
    passes: [
      { at: 0, current: 4, desired: 4, want: 0, expect: { allow: 0 } },
      { at: 10, current: 2, desired: 4, want: 2, queued: true, arrive: true, expect: { allow: 2 } },
    ],
  },
  {
    name: 'claims first: a drop while claims are queued waits until the queue is empty',
    opts: { claimsFirstMaxDeferMs: 10_000 },
    passes: [
      { at: 0, current: 4, desired: 4, want: 0, expect: { allow: 0 } },
      { at: 10, current: 3, desired: 4, want: 1, queued: true, expect: { allow: 0, retryMs: CLAIMS_FIRST_POLL_MS } },
      { at: 110, current: 3, desired: 4, want: 1, queued: true, expect: { allow: 0, retryMs: CLAIMS_FIRST_POLL_MS } },
      { at: 210, current: 3, desired: 4, want: 1, expect: { allow: 1 } },
    ],
  },
  {
    name: 'claims first: the wait ends after claimsFirstMaxDeferMs, once per drain, however busy',
    opts: { claimsFirstMaxDeferMs: 1000 },
    passes: [
      { at: 0, current: 4, desired: 4, want: 0, expect: { allow: 0 } },
      { at: 10, current: 3, desired: 4, want: 1, queued: true, expect: { allow: 0, retryMs: CLAIMS_FIRST_POLL_MS } },
      { at: 1010, current: 3, desired: 4, want: 1, queued: true, made: 1, expect: { allow: 1 } },
      { at: 1020, current: 3, desired: 4, want: 1, queued: true, expect: { allow: 1 } },
    ],
  },
  {
    name: 'claims first: a fill (no drop) goes at once, claims queued or not',
    opts: { claimsFirstMaxDeferMs: 10_000 },
    passes: [{ at: 0, current: 0, desired: 4, want: 4, queued: true, arrive: true, expect: { allow: 4 } }],
  },
  {
    name: 'claims first: between claims one after another, waits while more than a quarter is left',
    opts: { claimsFirstMaxDeferMs: 10_000 },
    passes: [
      { at: 0, current: 4, desired: 4, want: 0, expect: { allow: 0 } },
      { at: 10, current: 2, desired: 4, want: 2, arrive: true, expect: { allow: 0, retryMs: CLAIMS_FIRST_POLL_MS } },
      { at: 20, current: 1, desired: 4, want: 3, arrive: true, expect: { allow: 3 } },
    ],
  },
  {
    name: 'claims first: a stream gone quiet lets the replacements go',
    opts: { claimsFirstMaxDeferMs: 10_000 },
    passes: [
      { at: 0, current: 4, desired: 4, want: 0, expect: { allow: 0 } },
      { at: 10, current: 3, desired: 4, want: 1, arrive: true, expect: { allow: 0, retryMs: CLAIMS_FIRST_POLL_MS } },
      { at: 10 + CLAIMS_QUIET_MS, current: 3, desired: 4, want: 1, expect: { allow: 1 } },
    ],
  },
  {
    name: 'claims first: a refill while claims still arrive is paced at claimsFirstRefillPerS, the smaller of two rates',
    opts: { claimsFirstMaxDeferMs: 10_000, claimsFirstRefillPerS: 2, maxRefillRate: 4 },
    passes: [
      { at: 0, current: 4, desired: 4, want: 0, expect: { allow: 0 } },
      { at: 1000, current: 1, desired: 4, want: 3, arrive: true, made: 2, expect: { allow: 2, retryMs: 500 } },
      { at: 1250, current: 3, desired: 4, want: 1, arrive: true, expect: { allow: 0, retryMs: 250 } },
      { at: 1250 + CLAIMS_QUIET_MS, current: 3, desired: 4, want: 1, expect: { allow: 1 } },
    ],
  },
];

describe('refill policy', () => {
  for (const c of cases) {
    it(c.name, () => {
      assert.deepEqual(
        run(c.opts, c.passes),
        c.passes.map((p) => p.expect),
      );
    });
  }

  it('a pool forgotten (deleted) is a first sight again: its hold does not outlive it', () => {
    const policy = new RefillPolicy({ replenishDelayMs: 2000 });
    policy.grant('default/p', 3, 3, 0, 0);
    assert.deepEqual(policy.grant('default/p', 2, 3, 1, 10), { allow: 0, retryMs: 2000 });
    policy.forget('default/p');
    assert.deepEqual(policy.grant('default/p', 0, 3, 3, 20), { allow: 3 });
  });

  it('pools are shaped apart: one pool draining does not hold another', () => {
    const policy = new RefillPolicy({ replenishDelayMs: 2000 });
    policy.grant('default/a', 3, 3, 0, 0);
    policy.grant('default/b', 3, 3, 0, 0);
    assert.deepEqual(policy.grant('default/a', 2, 3, 1, 10), { allow: 0, retryMs: 2000 });
    assert.deepEqual(policy.grant('default/b', 3, 4, 1, 10), { allow: 1 });
  });
});

describe("refill policy: adopted Sandboxes' follow-ups", () => {
  const setup = (opts: RefillPolicyOptions) => {
    const s = { t: 0, queued: false };
    const policy = new RefillPolicy(
      opts,
      {
        get length() {
          return s.queued ? 1 : 0;
        },
      },
      () => s.t,
    );
    return { s, policy };
  };

  it('never held with claims first off, nor while claims are quiet', () => {
    const off = setup({});
    off.s.queued = true;
    off.policy.claimArrived();
    assert.equal(off.policy.holdFollowUp('default/s'), false);
    const quiet = setup({ claimsFirstMaxDeferMs: 1000 });
    assert.equal(quiet.policy.holdFollowUp('default/s'), false);
    assert.equal(quiet.policy.heldFollowUps, 0);
  });

  it('held while claims are busy; due once they are quiet', () => {
    const { s, policy } = setup({ claimsFirstMaxDeferMs: 10_000 });
    s.queued = true;
    assert.equal(policy.holdFollowUp('default/s1'), true);
    s.queued = false;
    policy.claimArrived();
    assert.equal(policy.holdFollowUp('default/s2'), true);
    assert.deepEqual(policy.dueFollowUps(), [], 'a claim arrived a moment ago');
    s.t += CLAIMS_QUIET_MS;
    assert.deepEqual(policy.dueFollowUps(), ['default/s1', 'default/s2']);
    assert.equal(policy.heldFollowUps, 0);
  });

  it('due at the latest claimsFirstMaxDeferMs after it was first held, however busy', () => {
    const { s, policy } = setup({ claimsFirstMaxDeferMs: 1000 });
    s.queued = true;
    policy.holdFollowUp('default/s1');
    s.t = 600;
    policy.holdFollowUp('default/s2');
    policy.holdFollowUp('default/s1'); // held again: keeps its first deadline
    s.t = 999;
    assert.deepEqual(policy.dueFollowUps(), []);
    s.t = 1000;
    assert.deepEqual(policy.dueFollowUps(), ['default/s1']);
    s.t = 1600;
    assert.deepEqual(policy.dueFollowUps(), ['default/s2']);
  });
});
