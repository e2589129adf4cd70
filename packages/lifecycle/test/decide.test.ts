// The reconcilers' decisions on plain data: what a pass sees in, what it would write out. No store,
// no workloads: each row is one observed state and the decision it must give.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  LABEL_SANDBOX_POD_TEMPLATE_HASH,
  LABEL_SANDBOX_TEMPLATE_REF_HASH,
  LABEL_WARM_POOL_SANDBOX,
  findCondition,
  nameHash,
  rfc3339,
  type Condition,
  type Sandbox,
  type SandboxClaim,
  type SandboxTemplate,
  type SandboxWarmPool,
} from '@asb/api';
import {
  STATUS_SETTLE_MS,
  UNREADY_REPLACE_MS,
  UNSCHEDULABLE_RECHECK_MS,
  decideClaimExpiry,
  decideClaimStatus,
  decidePool,
  decideSandboxExpiry,
  decideSource,
  mergeVolumeClaimTemplates,
  sandboxForPool,
  podTemplateHash,
  runningStatus,
  suspendedStatus,
  type PoolTimings,
  type RefillGrant,
  type StopState,
  type WorkloadState,
} from '../src/index.ts';
import { template } from './support/fakes.ts';

const now = new Date('2026-11-24T12:00:00Z');
const T = now.getTime();
const at = (ms: number) => rfc3339(new Date(T + ms));
type Lifecycle = NonNullable<SandboxClaim['spec']['lifecycle']>;
const life = (o: Partial<Lifecycle>): Lifecycle => ({ shutdownPolicy: 'Retain', ...o });
const cond = (
  type: string,
  status: 'True' | 'False',
  reason: string,
  sinceMs = -60_000,
  message = reason,
): Condition => ({ type, status, reason, message, lastTransitionTime: at(sinceMs) });

// ---- pool ----

const tpl = template();
const currentHash = podTemplateHash(tpl);
const pool = (replicas: number, strategy?: 'Recreate' | 'OnReplenish'): SandboxWarmPool => ({
  apiVersion: 'extensions.agents.x-k8s.io/v1beta1',
  kind: 'SandboxWarmPool',
  metadata: { name: 'p', namespace: 'default', uid: 'pool-uid', generation: 2 },
  spec: { replicas, sandboxTemplateRef: { name: 'tpl' }, ...(strategy ? { updateStrategy: { type: strategy } } : {}) },
});
/** What the pool makes of the template now. */
const madeSpec = sandboxForPool(pool(1), tpl).spec.podTemplate;
/** A member `ageMs` old, ready or not, made from the current template unless `stale`. */
/** A pool member; `stale`: made from an older pod spec of the template (`otherTemplate`: from
 *  another template, same spec; `relabelled`: the template's pod labels changed since, only). */
const member = (
  name: string,
  o: {
    ready?: boolean;
    ageMs?: number;
    stale?: boolean;
    otherTemplate?: boolean;
    relabelled?: boolean;
    unschedulable?: boolean;
  } = {},
): Sandbox => ({
  apiVersion: 'agents.x-k8s.io/v1beta1',
  kind: 'Sandbox',
  metadata: {
    name,
    namespace: 'default',
    creationTimestamp: at(-(o.ageMs ?? 60_000)),
    labels: {
      [LABEL_SANDBOX_POD_TEMPLATE_HASH]: o.stale || o.relabelled ? 'old' : currentHash,
      [LABEL_SANDBOX_TEMPLATE_REF_HASH]: nameHash(o.otherTemplate ? 'other' : tpl.metadata.name!),
    },
  },
  spec: {
    podTemplate: o.stale
      ? { spec: { containers: [{ name: 'main', image: 'python:3.12-slim' }] } }
      : structuredClone(madeSpec),
    operatingMode: 'Running',
    shutdownPolicy: 'Retain',
  },
  status: {
    conditions: [
      o.ready === false ? cond('Ready', 'False', 'DependenciesNotReady') : cond('Ready', 'True', 'DependenciesReady'),
      ...(o.unschedulable ? [cond('PodScheduled', 'False', 'Unschedulable', -60_000, '0/3 nodes are available')] : []),
    ],
  },
});

describe('decidePool', () => {
  const rows: Array<{
    name: string;
    pool: SandboxWarmPool;
    members: Sandbox[];
    pending?: number;
    noTemplate?: boolean;
    grant?: RefillGrant;
    /** What the policy must be asked: current, desired, want. */
    asked: [number, number, number];
    replace?: string[];
    scaleDown?: string[];
    create?: number;
    replicas: number;
    readyReplicas: number;
    requeueAfterMs?: number;
    timings?: PoolTimings;
    unschedulable?: number;
  }> = [
    {
      name: 'a full pool of ready members: nothing to do, no timer',
      pool: pool(2),
      members: [member('a'), member('b')],
      asked: [2, 2, 0],
      replicas: 2,
      readyReplicas: 2,
    },
    {
      name: 'short of replicas: creates what the policy allows; the new members count, and are waited for',
      pool: pool(3),
      members: [member('a')],
      asked: [1, 3, 2],
      create: 2,
      replicas: 3,
      readyReplicas: 1,
      requeueAfterMs: UNREADY_REPLACE_MS,
    },
    {
      name: 'the policy allows fewer: those, and back when it says',
      pool: pool(3),
      members: [member('a')],
      grant: { allow: 1, retryMs: 500 },
      asked: [1, 3, 2],
      create: 1,
      replicas: 2,
      readyReplicas: 1,
      requeueAfterMs: 500,
    },
    {
      name: 'members on their way (not yet in the cache) count: not made twice',
      pool: pool(3),
      members: [member('a')],
      pending: 2,
      asked: [3, 3, 0],
      replicas: 1,
      readyReplicas: 1,
    },
    {
      name: 'no template: nothing is wanted',
      pool: pool(3),
      members: [member('a')],
      noTemplate: true,
      asked: [1, 3, 0],
      replicas: 1,
      readyReplicas: 1,
    },
    {
      name: 'scale-down: unready first, then the newest',
      pool: pool(2),
      members: [
        member('old', { ageMs: 90_000 }),
        member('unready', { ready: false, ageMs: 80_000 }),
        member('mid'),
        member('new', { ageMs: 1000 }),
      ],
      asked: [4, 2, -2],
      scaleDown: ['unready', 'new'],
      replicas: 2,
      readyReplicas: 2,
    },
    {
      name: 'Recreate: a member of an older template is replaced',
      pool: pool(2, 'Recreate'),
      members: [member('a'), member('stale', { stale: true })],
      asked: [1, 2, 1],
      replace: ['stale'],
      create: 1,
      replicas: 2,
      readyReplicas: 1,
      requeueAfterMs: UNREADY_REPLACE_MS,
    },
    {
      name: 'Recreate: the pool names another template now: replaced, though the spec is the same',
      pool: pool(2, 'Recreate'),
      members: [member('a'), member('old-template', { otherTemplate: true })],
      asked: [1, 2, 1],
      replace: ['old-template'],
      create: 1,
      replicas: 2,
      readyReplicas: 1,
      requeueAfterMs: UNREADY_REPLACE_MS,
    },
    {
      name: "Recreate: only the template's pod labels changed: kept (not a rollout)",
      pool: pool(2, 'Recreate'),
      members: [member('a'), member('relabelled', { relabelled: true })],
      asked: [2, 2, 0],
      replicas: 2,
      readyReplicas: 2,
    },
    {
      name: 'OnReplenish: a member of an older template stays until claimed',
      pool: pool(2, 'OnReplenish'),
      members: [member('a'), member('stale', { stale: true })],
      asked: [2, 2, 0],
      replicas: 2,
      readyReplicas: 2,
    },
    {
      name: 'a member unready for longer than UNREADY_REPLACE_MS is replaced',
      pool: pool(1),
      members: [member('stuck', { ready: false, ageMs: UNREADY_REPLACE_MS + 1 })],
      grant: { allow: 0 },
      asked: [0, 1, 1],
      replace: ['stuck'],
      replicas: 0,
      readyReplicas: 0,
    },
    {
      name: 'a member past the grace period whose pod cannot be scheduled is held, not replaced, and looked at again in a minute',
      pool: pool(2),
      members: [member('ok'), member('waiting', { ready: false, ageMs: UNREADY_REPLACE_MS + 1, unschedulable: true })],
      asked: [2, 2, 0],
      replicas: 2,
      readyReplicas: 1,
      unschedulable: 1,
      requeueAfterMs: UNSCHEDULABLE_RECHECK_MS,
    },
    {
      name: 'unschedulable within the grace period: an ordinary waiting member',
      pool: pool(1),
      members: [member('young', { ready: false, ageMs: 60_000, unschedulable: true })],
      asked: [1, 1, 0],
      replicas: 1,
      readyReplicas: 0,
      requeueAfterMs: UNREADY_REPLACE_MS - 60_000,
    },
    {
      name: 'a shorter grace period (the controller flag) replaces sooner',
      pool: pool(1),
      members: [member('stuck', { ready: false, ageMs: 20_000 })],
      timings: { readinessGracePeriodMs: 10_000, unschedulableRecheckMs: 5_000 },
      grant: { allow: 0 },
      asked: [0, 1, 1],
      replace: ['stuck'],
      replicas: 0,
      readyReplicas: 0,
    },
    {
      name: 'an unready member is looked at again when it would be replaced',
      pool: pool(1),
      members: [member('slow', { ready: false, ageMs: 60_000 })],
      asked: [1, 1, 0],
      replicas: 1,
      readyReplicas: 0,
      requeueAfterMs: UNREADY_REPLACE_MS - 60_000,
    },
    {
      name: 'that look is never sooner than a second',
      pool: pool(1),
      members: [member('slow', { ready: false, ageMs: UNREADY_REPLACE_MS - 10 })],
      asked: [1, 1, 0],
      replicas: 1,
      readyReplicas: 0,
      requeueAfterMs: 1000,
    },
  ];
  for (const r of rows) {
    it(r.name, () => {
      const asked: number[][] = [];
      const plan = decidePool(
        {
          pool: r.pool,
          ...(r.noTemplate ? {} : { template: tpl }),
          members: r.members,
          pendingCreates: r.pending ?? 0,
        },
        T,
        (current, desired, want) => {
          asked.push([current, desired, want]);
          return r.grant ?? { allow: Math.max(0, want) };
        },
        r.timings,
      );
      assert.deepEqual(asked, [r.asked], 'the policy is asked once');
      assert.deepEqual(
        plan.replace.map((m) => m.metadata.name),
        r.replace ?? [],
      );
      assert.deepEqual(plan.scaleDown.map((m) => m.metadata.name).sort(), (r.scaleDown ?? []).sort());
      assert.equal(plan.create, r.create ?? 0);
      assert.deepEqual(plan.status, {
        replicas: r.replicas,
        readyReplicas: r.readyReplicas,
        selector: `${LABEL_WARM_POOL_SANDBOX}=${nameHash('p')}`,
        observedGeneration: 2,
      });
      assert.equal(plan.requeueAfterMs, r.requeueAfterMs);
      assert.equal(plan.unschedulable, r.unschedulable ?? 0);
    });
  }
});

// ---- claim ----

const claim = (spec: Partial<SandboxClaim['spec']> = {}, status?: SandboxClaim['status']): SandboxClaim => ({
  apiVersion: 'extensions.agents.x-k8s.io/v1beta1',
  kind: 'SandboxClaim',
  metadata: { name: 'c', namespace: 'default', uid: 'claim-uid', generation: 3 },
  spec: { sandboxTemplateRef: { name: 'tpl' }, warmpool: 'default', ...spec },
  ...(status ? { status } : {}),
});

describe('decideSource', () => {
  const allowing = { ...tpl, spec: { ...tpl.spec, envVarsInjectionPolicy: 'Allowed' } } as typeof tpl;
  type Seen = Parameters<typeof decideSource>[1];
  type Row = { name: string; claim: SandboxClaim; seen: Seen; expect: Record<string, unknown> };
  const rows: Row[] = [
    {
      name: 'a named pool that does not exist: WarmPoolNotFound, looked at again in a minute',
      claim: claim({ sandboxTemplateRef: undefined, warmPoolRef: { name: 'gone' } }),
      seen: {},
      expect: {
        ok: false,
        reason: 'WarmPoolNotFound',
        retryMs: 60_000,
        message: 'SandboxWarmPool "gone" not found in namespace "default"',
      },
    },
    {
      name: 'a template that does not exist: TemplateNotFound',
      claim: claim(),
      seen: {},
      expect: {
        ok: false,
        reason: 'TemplateNotFound',
        retryMs: 60_000,
        message: 'SandboxTemplate "tpl" not found in namespace "default"',
      },
    },
    {
      name: "a named pool's template that does not exist: TemplateNotFound, by the pool's template name",
      claim: claim({ sandboxTemplateRef: undefined, warmPoolRef: { name: 'p' } }),
      seen: { pool: { ...pool(1), spec: { ...pool(1).spec, sandboxTemplateRef: { name: 'other' } } } },
      expect: {
        ok: false,
        reason: 'TemplateNotFound',
        retryMs: 60_000,
        message: 'SandboxTemplate "other" not found in namespace "default"',
      },
    },
    {
      name: 'restricted pod metadata: InvalidMetadata, not retried by timer',
      claim: claim({ additionalPodMetadata: { labels: { 'agents.x-k8s.io/x': '1' } } }),
      seen: { template: tpl },
      expect: {
        ok: false,
        reason: 'InvalidMetadata',
        message: 'additionalPodMetadata uses restricted keys: agents.x-k8s.io/x',
      },
    },
    {
      name: 'env the template does not allow: EnvVarsInjectionRejected',
      claim: claim({ env: [{ name: 'A', value: '1' }] }),
      seen: { template: tpl },
      expect: {
        ok: false,
        reason: 'EnvVarsInjectionRejected',
        message: 'SandboxTemplate "tpl" does not allow env injection (envVarsInjectionPolicy: Disallowed)',
      },
    },
    {
      name: 'warmpool "default": any pool of the template',
      claim: claim(),
      seen: { template: tpl },
      expect: { ok: true, poolName: undefined },
    },
    {
      name: 'warmpool "none": cold',
      claim: claim({ warmpool: 'none' }),
      seen: { template: tpl },
      expect: { ok: true, poolName: '' },
    },
    {
      name: 'warmpool named: that pool',
      claim: claim({ warmpool: 'p' }),
      seen: { template: tpl },
      expect: { ok: true, poolName: 'p' },
    },
    {
      name: 'warmPoolRef: that pool, and its template',
      claim: claim({ sandboxTemplateRef: undefined, warmPoolRef: { name: 'p' } }),
      seen: { pool: pool(1), template: tpl },
      expect: { ok: true, poolName: 'p' },
    },
    {
      name: "env, allowed: always cold (its pod differs from the pool's)",
      claim: claim({ env: [{ name: 'A', value: '1' }] }),
      seen: { template: allowing },
      expect: { ok: true, poolName: '' },
    },
  ];
  for (const r of rows) {
    it(r.name, () => {
      const got = decideSource(r.claim, r.seen) as unknown as Record<string, unknown>;
      const picked = Object.fromEntries(Object.keys(r.expect).map((k) => [k, got[k]]));
      assert.deepEqual(picked, r.expect);
      if (r.expect.ok) assert.equal((got.template as typeof tpl).metadata.name, 'tpl');
    });
  }
  it("env injected into the claim's pod", () => {
    const got = decideSource(claim({ env: [{ name: 'A', value: '1' }] }), { template: allowing });
    assert.ok(got.ok);
    assert.deepEqual(got.pod.spec.containers[0]!.env, [{ name: 'A', value: '1' }]);
  });
});

describe('decideClaimExpiry', () => {
  const expiredSaid = cond('Ready', 'False', 'ClaimExpired');
  const said = { conditions: [expiredSaid] };
  const finishedAgo = (ms: number) => cond('Finished', 'True', 'PodSucceeded', -ms);
  const past = at(-1000),
    future = at(60_000);
  const rows: Array<{ name: string; claim: SandboxClaim; expect: ReturnType<typeof decideClaimExpiry> | 'marked' }> = [
    { name: 'no lifecycle: never', claim: claim(), expect: undefined },
    {
      name: 'shutdownTime ahead: not yet',
      claim: claim({ lifecycle: life({ shutdownTime: future }) }),
      expect: undefined,
    },
    {
      name: 'Retain, first pass: Ready says ClaimExpired, the event goes, the Sandbox (named in status) is removed',
      claim: claim({ lifecycle: life({ shutdownTime: past }) }, { sandbox: { name: 's' } }),
      expect: 'marked',
    },
    {
      name: 'Retain, said already: no write, no event',
      claim: claim({ lifecycle: life({ shutdownTime: past }) }, { sandbox: { name: 's' }, conditions: [expiredSaid] }),
      expect: { remove: { sandbox: 's' } },
    },
    {
      name: 'Delete: the claim goes, in the background',
      claim: claim({ lifecycle: life({ shutdownTime: past, shutdownPolicy: 'Delete' }) }, said),
      expect: { remove: { claim: 'Background' } },
    },
    {
      name: 'DeleteForeground: the claim goes, its Sandbox first',
      claim: claim({ lifecycle: life({ shutdownTime: past, shutdownPolicy: 'DeleteForeground' }) }, said),
      expect: { remove: { claim: 'Foreground' } },
    },
    {
      name: 'ttlSecondsAfterFinished: Finished + ttl passed',
      claim: claim(
        { lifecycle: life({ ttlSecondsAfterFinished: 30 }) },
        {
          conditions: [expiredSaid, finishedAgo(31_000)],
        },
      ),
      expect: { remove: { sandbox: undefined } },
    },
    {
      name: 'ttlSecondsAfterFinished: Finished + ttl ahead',
      claim: claim({ lifecycle: life({ ttlSecondsAfterFinished: 30 }) }, { conditions: [finishedAgo(29_000)] }),
      expect: undefined,
    },
  ];
  for (const r of rows) {
    it(r.name, () => {
      const got = decideClaimExpiry(r.claim, now);
      if (r.expect !== 'marked') {
        assert.deepEqual(got, r.expect);
        return;
      }
      assert.deepEqual(got?.remove, { sandbox: 's' });
      assert.deepEqual(got?.event, { reason: 'ClaimExpired', message: 'Claim expired. Sandbox cleanup initiated.' });
      assert.deepEqual(findCondition(got?.status?.conditions, 'Ready'), {
        type: 'Ready',
        status: 'False',
        reason: 'ClaimExpired',
        message: 'Claim expired. Sandbox cleanup initiated.',
        lastTransitionTime: at(0),
        observedGeneration: 3,
      });
      assert.deepEqual(got?.status?.sandbox, { name: 's' }, 'the rest of the status is kept');
    });
  }
});

describe('decideClaimStatus', () => {
  const sb = (conditions: Condition[], podIPs?: string[]): Sandbox => ({
    ...member('s'),
    status: { conditions, ...(podIPs ? { podIPs } : {}) },
  });
  const ready = cond('Ready', 'True', 'DependenciesReady', -1000, 'Pod is Ready');
  const pending = cond('Ready', 'False', 'DependenciesNotReady', -1000, 'Pod exists with phase: Pending');
  const rows: Array<{
    name: string;
    claim: SandboxClaim;
    sandbox: Sandbox;
    /** undefined: nothing written now. */
    ready?: Partial<Condition>;
    finished?: boolean;
    podIPs?: string[];
    result: { requeueAfterMs?: number };
  }> = [
    {
      name: "the Sandbox's Ready, mirrored, with its name and pod IPs",
      claim: claim(),
      sandbox: sb([ready], ['10.0.0.1']),
      ready: ready,
      podIPs: ['10.0.0.1'],
      result: {},
    },
    {
      name: 'a Sandbox with no Ready yet: SandboxNotReady',
      claim: claim(),
      sandbox: sb([]),
      ready: { status: 'False', reason: 'SandboxNotReady', message: 'Sandbox is not ready yet', observedGeneration: 3 },
      result: {},
    },
    {
      name: 'routine progress after SandboxNotReady is held until STATUS_SETTLE_MS after the Sandbox said it',
      claim: claim({}, { sandbox: { name: 's' }, conditions: [cond('Ready', 'False', 'SandboxNotReady')] }),
      sandbox: sb([pending]),
      result: { requeueAfterMs: STATUS_SETTLE_MS - 1000 },
    },
    {
      name: 'held no longer than that',
      claim: claim({}, { sandbox: { name: 's' }, conditions: [cond('Ready', 'False', 'SandboxNotReady')] }),
      sandbox: sb([{ ...pending, lastTransitionTime: at(-STATUS_SETTLE_MS) }]),
      ready: { reason: 'DependenciesNotReady' },
      result: {},
    },
    {
      name: 'not routine after another reason (an error): reported at once',
      claim: claim({}, { sandbox: { name: 's' }, conditions: [cond('Ready', 'False', 'ReconcilerError')] }),
      sandbox: sb([pending]),
      ready: { reason: 'DependenciesNotReady' },
      result: {},
    },
    {
      name: 'the expiry ahead is the requeue',
      claim: claim({ lifecycle: life({ shutdownTime: at(90_000) }) }),
      sandbox: sb([ready]),
      ready: ready,
      result: { requeueAfterMs: 90_000 },
    },
    {
      name: 'Finished mirrored starts the ttl: back when it ends',
      claim: claim({ lifecycle: life({ ttlSecondsAfterFinished: 30 }) }),
      sandbox: sb([cond('Ready', 'False', 'PodSucceeded', -5000), cond('Finished', 'True', 'PodSucceeded', -5000)]),
      ready: { reason: 'PodSucceeded' },
      finished: true,
      result: { requeueAfterMs: 25_000 },
    },
  ];
  for (const r of rows) {
    it(r.name, () => {
      const got = decideClaimStatus(r.claim, r.claim.status, r.sandbox, now);
      assert.deepEqual(got.result, r.result);
      if (!r.ready) {
        assert.equal(got.status, undefined, 'nothing written');
        return;
      }
      assert.equal(got.status?.sandbox?.name, 's');
      assert.deepEqual(got.status?.sandbox?.podIPs, r.podIPs);
      const c = findCondition(got.status?.conditions, 'Ready');
      for (const [k, v] of Object.entries(r.ready)) assert.deepEqual(c?.[k as keyof Condition], v, k);
      assert.equal(findCondition(got.status?.conditions, 'Finished') !== undefined, !!r.finished);
    });
  }
});

// ---- sandbox ----

const sandbox = (spec: Partial<Sandbox['spec']> = {}, status?: Sandbox['status']): Sandbox => ({
  ...member('s1'),
  metadata: { name: 's1', namespace: 'default', uid: 'sb-uid', generation: 4 },
  spec: { ...member('s1').spec, ...spec },
  ...(status ? { status } : { status: undefined }),
});

describe('decideSandboxExpiry', () => {
  const expired = cond('Ready', 'False', 'SandboxExpired');
  const rows: Array<{ name: string; sb: Sandbox; stage?: string; conditions?: string[] }> = [
    { name: 'no shutdownTime: never', sb: sandbox() },
    { name: 'shutdownTime ahead: not yet', sb: sandbox({ shutdownTime: at(1000) }) },
    {
      name: 'first pass: mark, Ready says SandboxExpired',
      sb: sandbox({ shutdownTime: at(0) }, { replicas: 1 }),
      stage: 'mark',
      conditions: ['Ready:SandboxExpired'],
    },
    {
      name: 'first pass: the pod is no longer mirrored, a finished one stays Finished',
      sb: sandbox(
        { shutdownTime: at(0) },
        {
          conditions: [
            cond('Suspended', 'False', 'NotSuspended'),
            cond('PodScheduled', 'True', 'PodScheduled'),
            cond('Finished', 'True', 'PodSucceeded'),
          ],
        },
      ),
      stage: 'mark',
      conditions: ['Suspended:NotSuspended', 'Finished:PodSucceeded', 'Ready:SandboxExpired'],
    },
    {
      name: 'marked, Delete: delete',
      sb: sandbox({ shutdownTime: at(-1), shutdownPolicy: 'Delete' }, { conditions: [expired] }),
      stage: 'delete',
    },
    {
      name: 'marked, Retain: its conditions alone stay',
      sb: sandbox({ shutdownTime: at(-1) }, { replicas: 1, podIPs: ['10.0.0.1'], conditions: [expired] }),
      stage: 'retain',
      conditions: ['Ready:SandboxExpired'],
    },
  ];
  for (const r of rows) {
    it(r.name, () => {
      const got = decideSandboxExpiry(r.sb, now);
      assert.equal(got?.stage, r.stage);
      if (got && 'status' in got) {
        assert.deepEqual(
          got.status.conditions?.map((c) => `${c.type}:${c.reason}`),
          r.conditions,
        );
        if (got.stage === 'retain') assert.deepEqual(Object.keys(got.status), ['conditions']);
        if (got.stage === 'mark' && r.sb.status?.replicas)
          assert.equal(got.status.replicas, 1, 'the rest kept until teardown');
      }
    });
  }
});

describe('suspendedStatus', () => {
  const scheduled = { status: 'True' as const, reason: 'PodScheduled', message: '' };
  const rows: Array<{ name: string; left: StopState; ready: string; suspended: string; podScheduled: boolean }> = [
    {
      name: 'pod gone: suspended',
      left: { stage: 'gone' },
      ready: 'Sandbox is suspended',
      suspended: 'PodTerminated:Pod has been terminated. Sandbox is suspended',
      podScheduled: false,
    },
    {
      name: 'own pod still ending: suspending, its scheduling still mirrored',
      left: { stage: 'ending', scheduled },
      ready: 'Sandbox is suspending',
      suspended: 'PodTerminating:Pod is terminating. Sandbox is suspending',
      podScheduled: true,
    },
    {
      name: "someone else's pod by the name: refused, not mirrored",
      left: { stage: 'notOwned' },
      ready: 'Sandbox is suspending',
      suspended: 'PodNotOwned:Refused to delete pod because it is not owned by this sandbox',
      podScheduled: false,
    },
  ];
  for (const r of rows)
    it(r.name, () => {
      const st = suspendedStatus(
        sandbox(
          {},
          {
            replicas: 1,
            podIPs: ['10.0.0.1'],
            nodeName: 'n1',
            conditions: [cond('Finished', 'True', 'PodSucceeded'), cond('PodScheduled', 'True', 'Scheduled')],
          },
        ),
        r.left,
        now,
        'cluster.local',
      );
      assert.equal(st.replicas, 0);
      assert.equal(st.podIPs, undefined);
      assert.equal(st.nodeName, undefined);
      assert.equal(st.selector === undefined, r.left.stage === 'gone', 'a selector while a pod by the name is there');
      const seen = st.conditions?.map((c) => `${c.type}:${c.reason}:${c.message}`);
      assert.deepEqual(
        seen?.filter((c) => !c.startsWith('PodScheduled')),
        [`Ready:SandboxSuspended:${r.ready}`, `Suspended:${r.suspended}`],
        'Finished goes',
      );
      assert.equal(
        seen?.some((c) => c.startsWith('PodScheduled')),
        r.podScheduled,
      );
    });

  it('keeps the Service it is told of (spec.service), with its FQDN', () => {
    const sb = sandbox({}, {});
    const st = suspendedStatus(sb, { stage: 'gone', service: 'svc' }, now, 'example.org');
    assert.equal(st.service, 'svc');
    assert.equal(st.serviceFQDN, `svc.${sb.metadata.namespace}.svc.example.org`);
  });
});

describe('runningStatus', () => {
  const w = (o: Partial<WorkloadState> = {}): WorkloadState => ({
    phase: 'Running',
    ready: true,
    message: 'Pod is Ready',
    podIPs: ['10.0.0.1'],
    ...o,
  });
  const readyOf = (st: Sandbox['status']) => findCondition(st?.conditions, 'Ready');
  const bound = (since: string) => ({ status: 'True' as const, reason: 'Scheduled', message: '', since });
  const pendingPod = w({ ready: false, phase: 'Pending', message: 'Pod exists with phase: Pending' });
  const rows: Array<{
    name: string;
    sb?: Sandbox;
    w: WorkloadState;
    ready?: [string, string];
    finished?: string;
    held?: number;
    check?: (st: NonNullable<Sandbox['status']>) => void;
  }> = [
    { name: 'ready', w: w(), ready: ['DependenciesReady', 'Pod is Ready'] },
    {
      name: 'not ready',
      w: w({ ready: false, phase: 'Pending', message: 'Pod exists with phase: Pending' }),
      ready: ['DependenciesNotReady', 'Pod exists with phase: Pending'],
    },
    {
      name: 'a required Service missing: not ready',
      sb: sandbox({ service: true }),
      w: w(),
      ready: ['DependenciesNotReady', 'Pod is Ready; Service does not exist'],
    },
    {
      name: 'a required Service there: ready, its FQDN in the cluster domain',
      sb: sandbox({ service: true }),
      w: w({ service: 'svc' }),
      ready: ['DependenciesReady', 'Pod is Ready; Service Exists'],
      check: (st) => {
        assert.equal(st.serviceFQDN, 'svc.default.svc.example.org');
        assert.equal(st.service, 'svc');
      },
    },
    {
      name: 'failed: PodFailed, and Finished',
      w: w({ phase: 'Failed', ready: false, message: 'OOMKilled' }),
      ready: ['PodFailed', 'OOMKilled'],
      finished: 'PodFailed',
    },
    {
      name: 'succeeded: PodSucceeded, and Finished',
      w: w({ phase: 'Succeeded', ready: false, message: 'exit 0' }),
      ready: ['PodSucceeded', 'exit 0'],
      finished: 'PodSucceeded',
    },
    {
      name: "the scheduler's condition, copied verbatim",
      w: w({
        ready: false,
        phase: 'Pending',
        message: 'm',
        scheduled: { status: 'False', reason: 'Unschedulable', message: '0/3 nodes' },
      }),
      ready: ['DependenciesNotReady', 'm'],
      check: (st) =>
        assert.deepEqual(findCondition(st.conditions, 'PodScheduled'), {
          type: 'PodScheduled',
          status: 'False',
          reason: 'Unschedulable',
          message: '0/3 nodes',
          lastTransitionTime: at(0),
          observedGeneration: 4,
        }),
    },
    {
      name: 'bound, not ready, nothing else new: the binding waits for the readiness (held)',
      sb: sandbox({}, runningStatus(sandbox(), pendingPod, now, 'example.org').status),
      w: { ...pendingPod, nodeName: 'n1', scheduled: bound(at(-2000)) },
      held: STATUS_SETTLE_MS - 2000,
    },
    {
      name: 'bound longer than STATUS_SETTLE_MS ago: written',
      sb: sandbox({}, runningStatus(sandbox(), pendingPod, now, 'example.org').status),
      w: { ...pendingPod, nodeName: 'n1', scheduled: bound(at(-STATUS_SETTLE_MS)) },
      ready: ['DependenciesNotReady', 'Pod exists with phase: Pending'],
      check: (st) => assert.equal(st.nodeName, 'n1'),
    },
  ];
  for (const r of rows) {
    it(r.name, () => {
      const got = runningStatus(r.sb ?? sandbox(), r.w, now, 'example.org');
      if (r.held !== undefined) {
        assert.deepEqual(got, { result: { requeueAfterMs: r.held } });
        return;
      }
      const st = got.status!;
      assert.deepEqual(got.result, {});
      assert.equal(st.replicas, 1);
      assert.deepEqual(st.podIPs, ['10.0.0.1']);
      assert.deepEqual([readyOf(st)?.reason, readyOf(st)?.message], r.ready);
      assert.equal(findCondition(st.conditions, 'Finished')?.reason, r.finished);
      assert.equal(findCondition(st.conditions, 'Suspended')?.reason, 'NotSuspended');
      r.check?.(st);
    });
  }
});

describe('mergeVolumeClaimTemplates (upstream e2e TestCreateSandboxClaimVolumeClaimTemplates, as a table)', () => {
  const vct = (name: string, size: string) => ({
    metadata: { name },
    spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: size } } },
  });
  type Policy = 'Disallowed' | 'Allowed' | 'Overrides' | undefined;
  const tplWith = (policy: Policy, vcts?: Array<ReturnType<typeof vct>>): SandboxTemplate => {
    const t = template();
    if (policy) t.spec.volumeClaimTemplatesPolicy = policy;
    else (t.spec as { volumeClaimTemplatesPolicy?: string }).volumeClaimTemplatesPolicy = undefined;
    if (vcts) t.spec.volumeClaimTemplates = vcts as SandboxTemplate['spec']['volumeClaimTemplates'];
    return t;
  };
  const rows: Array<{
    name: string;
    policy: Policy;
    own?: Array<ReturnType<typeof vct>>;
    claims?: Array<ReturnType<typeof vct>>;
    want: string[] | RegExp;
  }> = [
    { name: 'Disallowed: claim VCTs rejected', policy: 'Disallowed', claims: [vct('data', '2Gi')], want: /disallowed/ },
    {
      name: 'Disallowed, none on the claim: the template’s',
      policy: 'Disallowed',
      own: [vct('ws', '1Gi')],
      want: ['ws=1Gi'],
    },
    {
      name: 'Allowed: new ones appended',
      policy: 'Allowed',
      own: [vct('ws', '1Gi')],
      claims: [vct('data', '2Gi')],
      want: ['ws=1Gi', 'data=2Gi'],
    },
    {
      name: "Allowed: overriding the template's is forbidden",
      policy: 'Allowed',
      own: [vct('ws', '1Gi')],
      claims: [vct('ws', '2Gi')],
      want: /cannot override template volume "ws"/,
    },
    {
      name: 'Overrides: new ones appended',
      policy: 'Overrides',
      own: [vct('ws', '1Gi')],
      claims: [vct('data', '2Gi')],
      want: ['ws=1Gi', 'data=2Gi'],
    },
    {
      name: 'Overrides: replaced by name, in place',
      policy: 'Overrides',
      own: [vct('ws', '1Gi'), vct('b', '1Gi')],
      claims: [vct('ws', '3Gi')],
      want: ['ws=3Gi', 'b=1Gi'],
    },
    { name: 'no policy: Disallowed', policy: undefined, claims: [vct('data', '2Gi')], want: /disallowed/ },
    { name: 'an empty name', policy: 'Allowed', claims: [vct('', '2Gi')], want: /claim: .*name at index 0 is empty/ },
    {
      name: 'a repeated name',
      policy: 'Allowed',
      claims: [vct('d', '2Gi'), vct('d', '2Gi')],
      want: /claim: .*duplicate name "d"/,
    },
    {
      name: 'no name at all (a Go client omits an empty one)',
      policy: 'Allowed',
      claims: [{ metadata: {}, spec: vct('x', '1Gi').spec } as unknown as ReturnType<typeof vct>],
      want: /name at index 0 is empty/,
    },
    {
      name: 'not a DNS label',
      policy: 'Allowed',
      claims: [vct('Bad_Name', '2Gi')],
      want: /"Bad_Name" is not a DNS label/,
    },
    {
      name: "the template's own, invalid, without claim VCTs",
      policy: 'Disallowed',
      own: [vct('x', '1Gi'), vct('x', '1Gi')],
      want: /in template: .*duplicate name "x"/,
    },
  ];
  for (const r of rows)
    it(r.name, () => {
      const c = claim(
        r.claims ? { volumeClaimTemplates: r.claims as SandboxClaim['spec']['volumeClaimTemplates'] } : {},
      );
      const got = mergeVolumeClaimTemplates(c, tplWith(r.policy, r.own));
      if (r.want instanceof RegExp) {
        assert.equal(got.ok, false);
        assert.match((got as { message: string }).message, r.want);
      } else {
        assert.ok(got.ok);
        assert.deepEqual(
          got.list?.map((v) => `${v.metadata.name}=${(v.spec as any).resources.requests.storage}`),
          r.want,
        );
      }
    });

  it('a claim with VCTs of its own starts cold; a rejected one says VolumeClaimTemplatesError', () => {
    const ok = decideSource(claim({ volumeClaimTemplates: [vct('d', '1Gi')] as any }), {
      template: tplWith('Allowed'),
    });
    assert.ok(ok.ok && ok.poolName === '' && ok.volumeClaimTemplates?.length === 1);
    const no = decideSource(claim({ volumeClaimTemplates: [vct('d', '1Gi')] as any }), {
      template: tplWith('Disallowed'),
    });
    assert.equal(!no.ok && no.reason, 'VolumeClaimTemplatesError');
  });
});
