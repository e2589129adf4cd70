// The reconcilers' logic on fakes (pure logic; the real substrate is proven in test/e2e).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  LABEL_CLAIM_UID,
  LABEL_SANDBOX_TEMPLATE_REF_HASH,
  LABEL_WARM_POOL_SANDBOX,
  findCondition,
  nameHash,
  type Sandbox,
  type SandboxClaim,
  type SandboxWarmPool,
} from '@asb/api';
import { CLAIMS_QUIET_MS, LifecycleController, STATUS_SETTLE_MS, reconcileSandbox, claimExpiry } from '../src/index.ts';
import { fakeDeps, template } from './support/fakes.ts';

const claim = (name: string, spec: Partial<SandboxClaim['spec']> = {}): SandboxClaim => ({
  apiVersion: 'extensions.agents.x-k8s.io/v1beta1',
  kind: 'SandboxClaim',
  metadata: { name, namespace: 'default' },
  spec: { sandboxTemplateRef: { name: 'tpl' }, warmpool: 'default', ...spec },
});
const pool = (name: string, replicas: number, strategy?: 'Recreate' | 'OnReplenish'): SandboxWarmPool => ({
  apiVersion: 'extensions.agents.x-k8s.io/v1beta1',
  kind: 'SandboxWarmPool',
  metadata: { name, namespace: 'default' },
  spec: { replicas, sandboxTemplateRef: { name: 'tpl' }, ...(strategy ? { updateStrategy: { type: strategy } } : {}) },
});
const sandbox = (name: string, spec: Partial<Sandbox['spec']> = {}): Sandbox => ({
  apiVersion: 'agents.x-k8s.io/v1beta1',
  kind: 'Sandbox',
  metadata: { name, namespace: 'default' },
  spec: {
    podTemplate: { spec: { containers: [{ name: 'main', image: 'python:3.13-slim' }] } },
    operatingMode: 'Running',
    shutdownPolicy: 'Retain',
    ...spec,
  },
});
const ready = (
  o:
    | {
        status?: {
          conditions?: Array<{
            type: string;
            status: string;
            reason: string;
            message: string;
            lastTransitionTime: string;
          }>;
        };
      }
    | undefined,
) => findCondition(o?.status?.conditions as never, 'Ready');

async function waitUntil(ok: () => Promise<boolean>, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** How many Sandboxes pool `name` has now (its members carry its hash label). */
async function poolMembers(d: ReturnType<typeof fakeDeps>, name = 'p'): Promise<number> {
  return (await d.store.list('Sandbox', { labels: { [LABEL_WARM_POOL_SANDBOX]: nameHash(name) } })).length;
}

/** Runs every reconciler over every object until nothing changes (a tiny controller). */
async function settle(d: ReturnType<typeof fakeDeps>): Promise<void> {
  for (let i = 0; i < 20; i++) {
    const before = d.store.writes;
    for (const p of await d.store.list('SandboxWarmPool')) await d.reconcilePool('default', p.metadata.name!);
    for (const c of await d.store.list('SandboxClaim')) await d.reconcileClaim('default', c.metadata.name!);
    for (const s of await d.store.list('Sandbox')) await reconcileSandbox(d, 'default', s.metadata.name!);
    if (d.store.writes === before) return;
  }
  throw new Error('did not settle');
}

describe('sandbox reconciler', () => {
  it('starts the workload and reports Ready with upstream reasons', async () => {
    const d = fakeDeps();
    d.workloads.ready = false;
    await d.store.create(sandbox('s1'));
    await reconcileSandbox(d, 'default', 's1');
    let sb = await d.store.get('Sandbox', 'default', 's1');
    assert.equal(ready(sb)?.status, 'False');
    assert.equal(ready(sb)?.reason, 'DependenciesNotReady');
    assert.equal(sb?.status?.replicas, 1);
    assert.equal(sb?.status?.selector, `agents.x-k8s.io/sandbox-name-hash=${nameHash('s1')}`);
    d.workloads.set('default', 's1', { phase: 'Running', ready: true, message: 'Pod is Ready', podIPs: [] });
    await reconcileSandbox(d, 'default', 's1');
    sb = await d.store.get('Sandbox', 'default', 's1');
    assert.deepEqual([ready(sb)?.status, ready(sb)?.reason], ['True', 'DependenciesReady']);
  });

  it('a Pod bound but not Ready is reported with its readiness (one write), or at the latest after the settle time; unschedulable at once', async () => {
    const d = fakeDeps();
    d.workloads.ready = false;
    await d.store.create(sandbox('s1'));
    await reconcileSandbox(d, 'default', 's1');
    const pending = { phase: 'Pending' as const, ready: false, message: 'Pod exists with phase: Pending', podIPs: [] };
    const since = d.clock.now().toISOString();
    d.workloads.set('default', 's1', {
      ...pending,
      nodeName: 'n1',
      scheduled: { status: 'True', reason: 'PodScheduled', message: '', since },
    });
    const writes = d.store.writes;
    const held = await reconcileSandbox(d, 'default', 's1');
    assert.equal(d.store.writes, writes, 'the binding alone is not written');
    assert.ok(
      held.requeueAfterMs! > 0 && held.requeueAfterMs! <= STATUS_SETTLE_MS,
      'and is looked at again by the settle time',
    );
    d.workloads.set('default', 's1', {
      phase: 'Running',
      ready: true,
      message: 'Pod is Ready',
      podIPs: ['10.0.0.1'],
      nodeName: 'n1',
      scheduled: { status: 'True', reason: 'PodScheduled', message: '', since },
    });
    await reconcileSandbox(d, 'default', 's1');
    assert.equal(d.store.writes, writes + 1, 'binding and readiness: one write');
    let sb = (await d.store.get('Sandbox', 'default', 's1'))!;
    assert.deepEqual(
      [ready(sb)?.status, findCondition(sb.status?.conditions, 'PodScheduled')?.status, sb.status?.nodeName],
      ['True', 'True', 'n1'],
    );

    // Bound and never Ready: reported once the settle time has passed.
    await d.store.create(sandbox('s2'));
    d.workloads.ready = false;
    await reconcileSandbox(d, 'default', 's2');
    d.workloads.set('default', 's2', {
      ...pending,
      nodeName: 'n1',
      scheduled: { status: 'True', reason: 'PodScheduled', message: '', since: d.clock.now().toISOString() },
    });
    await reconcileSandbox(d, 'default', 's2');
    assert.notEqual(
      findCondition((await d.store.get('Sandbox', 'default', 's2'))!.status?.conditions, 'PodScheduled')?.status,
      'True',
      'held',
    );
    d.clock.advance(STATUS_SETTLE_MS);
    await reconcileSandbox(d, 'default', 's2');
    sb = (await d.store.get('Sandbox', 'default', 's2'))!;
    assert.deepEqual(
      [findCondition(sb.status?.conditions, 'PodScheduled')?.status, sb.status?.nodeName],
      ['True', 'n1'],
    );

    // Unschedulable: at once.
    await d.store.create(sandbox('s3'));
    await reconcileSandbox(d, 'default', 's3');
    d.workloads.set('default', 's3', {
      ...pending,
      scheduled: {
        status: 'False',
        reason: 'Unschedulable',
        message: '0/1 nodes are available',
        since: d.clock.now().toISOString(),
      },
    });
    await reconcileSandbox(d, 'default', 's3');
    assert.equal(
      findCondition((await d.store.get('Sandbox', 'default', 's3'))!.status?.conditions, 'PodScheduled')?.reason,
      'Unschedulable',
    );
  });

  it('suspends (operatingMode Suspended) by stopping the workload and keeps the object', async () => {
    const d = fakeDeps();
    await d.store.create(sandbox('s1', { operatingMode: 'Suspended' }));
    await reconcileSandbox(d, 'default', 's1');
    const sb = await d.store.get('Sandbox', 'default', 's1');
    assert.deepEqual(d.workloads.stopped, ['default/s1']);
    assert.equal(sb?.status?.replicas, 0);
    assert.equal(ready(sb)?.reason, 'SandboxSuspended');
    assert.equal(findCondition(sb?.status?.conditions, 'Suspended')?.reason, 'PodTerminated');
  });

  it('reports a failed workload as PodFailed and Finished', async () => {
    const d = fakeDeps();
    await d.store.create(sandbox('s1'));
    d.workloads.set('default', 's1', {
      phase: 'Failed',
      ready: false,
      message: 'killed at its memory limit',
      podIPs: [],
    });
    await reconcileSandbox(d, 'default', 's1');
    const sb = await d.store.get('Sandbox', 'default', 's1');
    assert.equal(ready(sb)?.reason, 'PodFailed');
    assert.equal(findCondition(sb?.status?.conditions, 'Finished')?.status, 'True');
  });

  it('expires in two passes: SandboxExpired first, then Delete removes it', async () => {
    const d = fakeDeps();
    const at = new Date(d.clock.t + 60_000).toISOString();
    await d.store.create(sandbox('s1', { shutdownTime: at, shutdownPolicy: 'Delete' }));
    const r = await reconcileSandbox(d, 'default', 's1');
    assert.equal(r.requeueAfterMs, 60_000);
    d.clock.advance(60_000);
    assert.equal((await reconcileSandbox(d, 'default', 's1')).requeueAfterMs, 0);
    assert.equal(ready(await d.store.get('Sandbox', 'default', 's1'))?.reason, 'SandboxExpired');
    await reconcileSandbox(d, 'default', 's1');
    assert.equal(await d.store.get('Sandbox', 'default', 's1'), undefined);
    await reconcileSandbox(d, 'default', 's1');
    assert.deepEqual(d.workloads.released, ['default/s1']);
  });

  it('expired with Retain: workload stopped, object kept with only its conditions', async () => {
    const d = fakeDeps();
    await d.store.create(
      sandbox('s1', { shutdownTime: new Date(d.clock.t - 1).toISOString(), shutdownPolicy: 'Retain' }),
    );
    await reconcileSandbox(d, 'default', 's1');
    await reconcileSandbox(d, 'default', 's1');
    const sb = await d.store.get('Sandbox', 'default', 's1');
    assert.ok(sb);
    assert.deepEqual(Object.keys(sb.status ?? {}), ['conditions']);
    assert.deepEqual(d.workloads.stopped, ['default/s1']);
  });
});

describe('claim reconciler', () => {
  it('cold start: a Sandbox named after the claim, owned by it, with the claim-uid label', async () => {
    const d = fakeDeps();
    await d.store.create(template());
    const c = await d.store.create(claim('c1'));
    await settle(d);
    const sb = await d.store.get('Sandbox', 'default', 'c1');
    assert.ok(sb);
    assert.equal(sb.metadata.ownerReferences?.[0]?.uid, c.metadata.uid);
    assert.equal(sb.metadata.labels?.[LABEL_CLAIM_UID], c.metadata.uid);
    assert.equal(sb.spec.podTemplate.metadata?.labels?.[LABEL_SANDBOX_TEMPLATE_REF_HASH], nameHash('tpl'));
    const got = await d.store.get('SandboxClaim', 'default', 'c1');
    assert.equal(got?.status?.sandbox?.name, 'c1');
    assert.deepEqual([ready(got)?.status, ready(got)?.reason], ['True', 'DependenciesReady']);
    assert.ok(d.events.includes('c1 SandboxProvisioned: Created Sandbox "c1"'));
  });

  it("a claim takes up its Sandbox's routine not-ready words with its readiness (one write), and anything else at once", async () => {
    const d = fakeDeps();
    d.workloads.ready = false;
    await d.store.create(template());
    await d.store.create(claim('c', { warmpool: 'none' }));
    await d.reconcileClaim('default', 'c');
    await reconcileSandbox(d, 'default', 'c');
    assert.equal(ready(await d.store.get('Sandbox', 'default', 'c'))?.reason, 'DependenciesNotReady');
    const held = await d.reconcileClaim('default', 'c');
    assert.equal(
      ready(await d.store.get('SandboxClaim', 'default', 'c'))?.reason,
      'SandboxNotReady',
      'the routine words wait',
    );
    assert.ok(held.requeueAfterMs! > 0 && held.requeueAfterMs! <= STATUS_SETTLE_MS);
    d.workloads.set('default', 'c', { phase: 'Running', ready: true, message: 'Pod is Ready', podIPs: ['10.0.0.1'] });
    await reconcileSandbox(d, 'default', 'c');
    await d.reconcileClaim('default', 'c');
    const got = (await d.store.get('SandboxClaim', 'default', 'c'))!;
    assert.deepEqual([ready(got)?.status, got.status?.sandbox?.podIPs], ['True', ['10.0.0.1']]);

    // An error in the Sandbox's status: the claim says so at once.
    const sb = (await d.store.get('Sandbox', 'default', 'c'))!;
    const error = {
      type: 'Ready',
      status: 'False',
      reason: 'ReconcilerError',
      message: 'Error seen: boom',
      lastTransitionTime: d.clock.now().toISOString(),
      observedGeneration: 1,
    };
    await d.store.updateStatus({ ...sb, status: { ...sb.status, conditions: [error] } } as typeof sb);
    await d.reconcileClaim('default', 'c');
    assert.equal(ready(await d.store.get('SandboxClaim', 'default', 'c'))?.reason, 'ReconcilerError');
  });

  it('TemplateNotFound and WarmPoolNotFound are reported and retried', async () => {
    const d = fakeDeps();
    await d.store.create(claim('c1'));
    await d.store.create(
      claim('c2', { sandboxTemplateRef: undefined, warmpool: undefined, warmPoolRef: { name: 'nope' } }),
    );
    assert.equal((await d.reconcileClaim('default', 'c1')).requeueAfterMs, 60_000);
    await d.reconcileClaim('default', 'c2');
    assert.equal(ready(await d.store.get('SandboxClaim', 'default', 'c1'))?.reason, 'TemplateNotFound');
    assert.equal(ready(await d.store.get('SandboxClaim', 'default', 'c2'))?.reason, 'WarmPoolNotFound');
  });

  it('adopts a ready warm-pool member as upstream does, and the pool replaces it', async () => {
    const d = fakeDeps();
    await d.store.create(template());
    await d.store.create(pool('p', 2));
    await settle(d);
    const members = await d.store.list('Sandbox', { labels: { [LABEL_WARM_POOL_SANDBOX]: nameHash('p') } });
    assert.equal(members.length, 2);
    const c = await d.store.create(claim('c1'));
    await settle(d);
    const got = await d.store.get('SandboxClaim', 'default', 'c1');
    const name = got?.status?.sandbox?.name;
    assert.ok(name && name.startsWith('p-'), `adopted a pool member, got ${name}`);
    const sb = (await d.store.get('Sandbox', 'default', name))!;
    assert.equal(sb.metadata.labels?.[LABEL_WARM_POOL_SANDBOX], undefined);
    assert.equal(sb.metadata.labels?.[LABEL_CLAIM_UID], c.metadata.uid);
    assert.equal(sb.metadata.ownerReferences?.[0]?.kind, 'SandboxClaim');
    assert.equal(sb.metadata.annotations?.['agents.x-k8s.io/pod-name'], name);
    assert.equal(ready(got)?.status, 'True');
    assert.equal(
      (await d.store.list('Sandbox', { labels: { [LABEL_WARM_POOL_SANDBOX]: nameHash('p') } })).length,
      2,
      'pool refilled',
    );
    assert.equal((await d.store.get('SandboxWarmPool', 'default', 'p'))?.status?.readyReplicas, 2);
    assert.ok(d.events.some((e) => e.startsWith('c1 SandboxAdopted')));
  });

  it("a warm claim's status is written once, with the Sandbox's newest Ready condition", async () => {
    const d = fakeDeps();
    await d.store.create(template());
    await d.store.create(pool('p', 1));
    await settle(d);
    // As in the engine: the Sandbox's reconciler reports the adoption (a new generation) before
    // the claim's reconcile writes the claim's status.
    const update = d.store.update.bind(d.store);
    d.store.update = async (obj) => {
      const out = await update(obj);
      if (obj.kind === 'Sandbox') await reconcileSandbox(d, 'default', obj.metadata.name!);
      return out;
    };
    await d.store.create(claim('c1'));
    await d.reconcileClaim('default', 'c1');
    const got = (await d.store.get('SandboxClaim', 'default', 'c1'))!;
    const sb = (await d.store.get('Sandbox', 'default', got.status!.sandbox!.name!))!;
    assert.equal(sb.metadata.generation, 2, 'the adoption changed the Sandbox');
    assert.deepEqual(ready(got), ready(sb), "the Sandbox's Ready condition, copied as it is now");
    const writes = d.store.writes;
    await d.reconcileClaim('default', 'c1');
    assert.equal(d.store.writes, writes, 'nothing left for the next reconcile to write');
  });

  it('warmpool "none" and env force a cold start even with a pool', async () => {
    const d = fakeDeps();
    const t = template();
    t.spec.envVarsInjectionPolicy = 'Allowed';
    await d.store.create(t);
    await d.store.create(pool('p', 1));
    await settle(d);
    await d.store.create(claim('cold', { warmpool: 'none' }));
    await d.store.create(claim('env', { env: [{ name: 'X', value: '1' }] }));
    await settle(d);
    assert.equal((await d.store.get('SandboxClaim', 'default', 'cold'))?.status?.sandbox?.name, 'cold');
    const envSb = await d.store.get('Sandbox', 'default', 'env');
    assert.deepEqual(envSb?.spec.podTemplate.spec.containers[0]?.env, [{ name: 'X', value: '1' }]);
  });

  it('env is refused when the template disallows it', async () => {
    const d = fakeDeps();
    await d.store.create(template());
    await d.store.create(claim('c', { env: [{ name: 'X', value: '1' }] }));
    await settle(d);
    assert.equal(ready(await d.store.get('SandboxClaim', 'default', 'c'))?.reason, 'EnvVarsInjectionRejected');
    assert.equal(await d.store.get('Sandbox', 'default', 'c'), undefined);
  });

  it('two claims racing for one warm sandbox: one adopts it, the other starts cold', async () => {
    const d = fakeDeps();
    await d.store.create(template());
    await d.store.create(pool('p', 1));
    await settle(d);
    await d.store.create(claim('a'));
    await d.store.create(claim('b'));
    await Promise.all([d.reconcileClaim('default', 'a'), d.reconcileClaim('default', 'b')]);
    const names = [
      (await d.store.get('SandboxClaim', 'default', 'a'))?.status?.sandbox?.name,
      (await d.store.get('SandboxClaim', 'default', 'b'))?.status?.sandbox?.name,
    ];
    assert.equal(names.filter((n) => n?.startsWith('p-')).length, 1, `exactly one adoption: ${names}`);
    assert.ok(names.includes('a') || names.includes('b'));
  });

  it('expiry with Delete removes the claim and its sandbox; with Retain only the sandbox', async () => {
    const d = fakeDeps();
    await d.store.create(template());
    const at = new Date(d.clock.t + 30_000).toISOString();
    await d.store.create(claim('del', { lifecycle: { shutdownTime: at, shutdownPolicy: 'Delete' } }));
    await d.store.create(claim('ret', { lifecycle: { shutdownTime: at, shutdownPolicy: 'Retain' } }));
    await settle(d);
    assert.equal((await d.reconcileClaim('default', 'del')).requeueAfterMs, 30_000);
    d.clock.advance(30_000);
    await settle(d);
    assert.equal(await d.store.get('SandboxClaim', 'default', 'del'), undefined);
    assert.equal(await d.store.get('Sandbox', 'default', 'del'), undefined);
    const ret = await d.store.get('SandboxClaim', 'default', 'ret');
    assert.equal(ready(ret)?.reason, 'ClaimExpired');
    assert.equal(await d.store.get('Sandbox', 'default', 'ret'), undefined);
    assert.ok(d.events.includes('ret ClaimExpired: Claim expired. Sandbox cleanup initiated.'));
  });

  it('ttlSecondsAfterFinished counts from the mirrored Finished condition', async () => {
    const d = fakeDeps();
    await d.store.create(template());
    await d.store.create(claim('c', { lifecycle: { ttlSecondsAfterFinished: 10, shutdownPolicy: 'Delete' } }));
    await settle(d);
    assert.equal(claimExpiry((await d.store.get('SandboxClaim', 'default', 'c'))!), undefined);
    d.workloads.set('default', 'c', { phase: 'Succeeded', ready: false, message: 'exited 0', podIPs: [] });
    await settle(d);
    const c = (await d.store.get('SandboxClaim', 'default', 'c'))!;
    assert.equal(claimExpiry(c), d.clock.t + 10_000);
    d.clock.advance(10_000);
    await settle(d);
    assert.equal(await d.store.get('SandboxClaim', 'default', 'c'), undefined);
  });
});

describe('warm pool reconciler', () => {
  it('scales down unready members first, then the newest', async () => {
    const d = fakeDeps();
    await d.store.create(template());
    await d.store.create(pool('p', 3));
    await settle(d);
    const members = await d.store.list('Sandbox');
    const unready = members[2]!;
    d.workloads.set('default', unready.metadata.name!, {
      phase: 'Pending',
      ready: false,
      message: 'starting',
      podIPs: [],
    });
    await settle(d);
    const p = (await d.store.get('SandboxWarmPool', 'default', 'p'))!;
    await d.store.update({ ...p, spec: { ...p.spec, replicas: 1 } });
    await d.reconcilePool('default', 'p');
    const left = (await d.store.list('Sandbox')).map((s) => s.metadata.name);
    assert.deepEqual(left, [members[0]!.metadata.name], 'kept the oldest ready one');
  });

  it('Recreate replaces members made from an older template; OnReplenish keeps them', async () => {
    for (const strategy of ['Recreate', 'OnReplenish'] as const) {
      const d = fakeDeps();
      await d.store.create(template());
      await d.store.create(pool('p', 1, strategy));
      await settle(d);
      const before = (await d.store.list('Sandbox'))[0]!.metadata.name;
      const t = (await d.store.get('SandboxTemplate', 'default', 'tpl'))!;
      await d.store.update({
        ...t,
        spec: { ...t.spec, podTemplate: { spec: { containers: [{ name: 'main', image: 'python:3.12' }] } } },
      });
      await settle(d);
      const after = (await d.store.list('Sandbox'))[0]!.metadata.name;
      assert.equal(after !== before, strategy === 'Recreate', strategy);
    }
  });

  it('refill shaping (upstream v0.5): a hold re-armed by each member a claim takes, then a paced stream', async () => {
    const d = fakeDeps({ replenishDelayMs: 2000, maxRefillRate: 2 });
    const members = () => poolMembers(d);
    await d.store.create(template());
    await d.store.create(pool('p', 3));
    // The first fill is never held, but it is paced: a bucket of one second (2 creates).
    assert.deepEqual(await d.reconcilePool('default', 'p'), { requeueAfterMs: 500 });
    assert.equal(await members(), 2);
    d.clock.advance(500);
    await settle(d);
    assert.equal(await members(), 3);

    await d.store.create(claim('c1'));
    await settle(d);
    assert.equal(await members(), 2, 'the member c1 took is not replaced during the hold');
    d.clock.advance(1500);
    await d.store.create(claim('c2'));
    await settle(d);
    d.clock.advance(1500);
    await settle(d);
    assert.equal(await members(), 1, "c2's adoption re-armed the hold: 1.5 s after it, still nothing");
    d.clock.advance(500);
    await d.reconcilePool('default', 'p');
    assert.equal(await members(), 3, 'the hold over, both replacements at once (the bucket refilled meanwhile)');
  });

  it('claims first: members taken while claims are queued are replaced once the queue is empty, or after the longest wait', async () => {
    let queued = false;
    const d = fakeDeps({ claimsFirstMaxDeferMs: 10_000 }, () => queued);
    const members = () => poolMembers(d);
    await d.store.create(template());
    await d.store.create(pool('p', 2));
    await settle(d);
    assert.equal(await members(), 2, 'a fill does not wait');
    await d.store.create(claim('c1'));
    queued = true;
    await settle(d);
    assert.equal(await members(), 1, 'not replaced while claims are queued');
    queued = false;
    await d.reconcilePool('default', 'p');
    assert.equal(await members(), 2, 'replaced once the claim queue is empty');

    await d.store.create(claim('c2'));
    queued = true;
    await settle(d);
    d.clock.advance(9_000);
    await d.reconcilePool('default', 'p');
    assert.equal(await members(), 1);
    d.clock.advance(1_000);
    await d.reconcilePool('default', 'p');
    assert.equal(await members(), 2, 'replaced after the longest wait, claims queued or not');
  });

  it('claims first: between claims one after another, a pool down to a quarter of its size refills at once', async () => {
    const d = fakeDeps({ claimsFirstMaxDeferMs: 10_000 });
    d.refill.claimArrived(); // and the stream's clock stands still: claims keep arriving
    const members = () => poolMembers(d);
    await d.store.create(template());
    await d.store.create(pool('p', 4));
    await settle(d);
    await d.store.create(claim('c1'));
    await d.store.create(claim('c2'));
    await settle(d);
    assert.equal(await members(), 2, 'half the pool left: its replacements wait');
    await d.store.create(claim('c3'));
    await settle(d);
    assert.equal(await members(), 4, 'a quarter left: refilled at once');

    // Claims queued (a burst): a refill would serve none of them (one that finds no member starts
    // cold at once), so it waits, a quarter left or not.
    const q = fakeDeps({ claimsFirstMaxDeferMs: 10_000 }, () => true);
    q.refill.claimArrived();
    const qMembers = () => poolMembers(q);
    await q.store.create(template());
    await q.store.create(pool('p', 4));
    await settle(q);
    for (const c of ['c1', 'c2', 'c3']) await q.store.create(claim(c));
    await settle(q);
    assert.equal(await qMembers(), 1, 'no refill during the burst');
  });

  it('claims first: a refill while claims are still arriving is paced (refillPerS), and goes at full rate once they are quiet', async () => {
    const d = fakeDeps({ claimsFirstMaxDeferMs: 10_000, claimsFirstRefillPerS: 2 });
    d.refill.claimArrived();
    const members = () => poolMembers(d);
    await d.store.create(template());
    await d.store.create(pool('p', 4));
    await settle(d);
    for (const c of ['c1', 'c2', 'c3']) await d.store.create(claim(c));
    await settle(d);
    assert.equal(await members(), 2, 'a quarter left, claims still arriving: one replacement (the bucket holds one)');
    d.clock.advance(500);
    await d.reconcilePool('default', 'p');
    assert.equal(await members(), 3, 'half a second at 2/s: one more');
    await d.reconcilePool('default', 'p');
    assert.equal(await members(), 3, 'no time passed: none');
    d.stream.t += CLAIMS_QUIET_MS; // claims quiet
    await d.reconcilePool('default', 'p');
    assert.equal(await members(), 4, 'claims quiet: the rest at once');
  });

  it('deleting a pool removes its members but not the sandboxes claims took', async () => {
    const d = fakeDeps();
    await d.store.create(template());
    await d.store.create(pool('p', 2));
    await settle(d);
    await d.store.create(claim('c'));
    await settle(d);
    await d.store.delete('SandboxWarmPool', 'default', 'p');
    const left = await d.store.list('Sandbox');
    assert.equal(left.length, 1);
    assert.equal(left[0]!.metadata.ownerReferences?.[0]?.kind, 'SandboxClaim');
  });
});

describe('controller', () => {
  it('an API error in work an event starts outside the queues is retried, not an unhandled rejection that ends the process', async () => {
    const d = fakeDeps();
    const ctl = new LifecycleController(d);
    await ctl.start();
    await d.store.create(pool('p', 1)); // its template does not exist yet
    await ctl.idle();
    assert.equal((await d.store.list('Sandbox')).length, 0);
    // The API server re-initializing its storage (a CRD just changed) answers 429 once.
    const list = d.store.list.bind(d.store);
    let failed = 0;
    d.store.list = (async (kind: any, opts: any) => {
      if (kind === 'SandboxWarmPool' && failed === 0) {
        failed++;
        throw new Error('list SandboxWarmPool: HTTP 429: storage is (re)initializing');
      }
      return list(kind, opts);
    }) as typeof d.store.list;
    const unhandled: unknown[] = [];
    const onUnhandled = (err: unknown) => {
      unhandled.push(err);
    };
    process.on('unhandledRejection', onUnhandled);
    try {
      await d.store.create(template());
      await waitUntil(async () => (await d.store.list('Sandbox')).length === 1, 5_000);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
    assert.equal(failed, 1);
    assert.deepEqual(unhandled, []);
    await ctl.stop();
  });

  it("reports a workload's readiness at once, while its other changes wait to be batched", async () => {
    const d = fakeDeps();
    d.workloads.ready = false;
    // A delay no test waits out: a change it holds back is not reported within the test.
    const ctl = new LifecycleController(d, { workloadChangeDelayMs: 600_000 });
    await ctl.start();
    await d.store.create(template());
    await d.store.create(claim('c', { warmpool: 'none' }));
    await ctl.idle();
    assert.equal(ready(await d.store.get('SandboxClaim', 'default', 'c'))?.status, 'False');
    const sandboxMessage = async () => ready(await d.store.get('Sandbox', 'default', 'c'))?.message;
    assert.equal(await sandboxMessage(), 'Pod exists with phase: Pending');

    // Started, not Ready: batched with what follows (held back by the delay).
    d.workloads.set('default', 'c', {
      phase: 'Running',
      ready: false,
      message: 'Pod is Running but not Ready',
      podIPs: [],
    });
    await ctl.idle();
    assert.equal(await sandboxMessage(), 'Pod exists with phase: Pending');

    // Ready: the Sandbox, and so the claim, say so now, not after the delay.
    const running = { phase: 'Running' as const, ready: true, message: 'Pod is Ready', podIPs: ['10.0.0.7'] };
    d.workloads.set('default', 'c', running, { settled: true });
    await ctl.idle();
    assert.equal(ready(await d.store.get('Sandbox', 'default', 'c'))?.status, 'True');
    const c = await d.store.get('SandboxClaim', 'default', 'c');
    assert.equal(ready(c)?.status, 'True');
    assert.deepEqual(c?.status?.sandbox, { name: 'c', podIPs: ['10.0.0.7'] });
    await ctl.stop();
  });

  it('serves 30 claims against a pool of 5 with no sandbox leaked', async () => {
    const d = fakeDeps();
    const ctl = new LifecycleController(d);
    await ctl.start();
    await d.store.create(template());
    await d.store.create(pool('p', 5));
    await ctl.idle();
    for (let i = 0; i < 30; i++) await d.store.create(claim(`c${i}`));
    await ctl.idle();
    const claims = await d.store.list('SandboxClaim');
    assert.ok(
      claims.every((c) => ready(c)?.status === 'True'),
      'every claim is Ready',
    );
    const owned = new Set(claims.map((c) => c.status?.sandbox?.name));
    assert.equal(owned.size, 30, 'each claim has its own sandbox');
    const sandboxes = await d.store.list('Sandbox');
    assert.equal(sandboxes.length, 35, '30 claimed + 5 in the pool');
    assert.equal(sandboxes.filter((s) => s.metadata.labels?.[LABEL_WARM_POOL_SANDBOX]).length, 5);
    for (const c of claims) await d.store.delete('SandboxClaim', 'default', c.metadata.name!);
    await ctl.idle();
    assert.equal((await d.store.list('Sandbox')).length, 5, 'only the pool is left');
    assert.equal(d.workloads.released.length, 30, 'every claimed workload released');
    await ctl.stop();
  });

  it('claims first: work that can wait holds back while claims arrive one after another, and goes once they are quiet', async () => {
    const d = fakeDeps();
    const quietMs = 2_000;
    const ctl = new LifecycleController(d, { refill: { claimsFirstMaxDeferMs: 30_000, claimsQuietMs: quietMs } });
    await ctl.start();
    await d.store.create(template());
    await d.store.create(pool('p', 4));
    await ctl.idle();
    const members = () => poolMembers(d);
    const served = async (name: string) => {
      for (;;) {
        if (ready(await d.store.get('SandboxClaim', 'default', name))?.status === 'True') return;
        await new Promise((r) => setTimeout(r, 5));
      }
    };
    // Two claims, each made a moment after the one before is served: no claim is ever queued
    // behind another, yet they are one stream (less than quietMs apart).
    const moment = () => new Promise((r) => setTimeout(r, 300));
    await d.store.create(claim('c1'));
    await served('c1');
    await moment();
    await d.store.create(claim('c2'));
    await served('c2');
    await moment();
    assert.equal(await members(), 2, 'members taken by a stream of claims are not replaced during it');
    const taken = (await d.store.get('SandboxClaim', 'default', 'c2'))!.status!.sandbox!.name!;
    const before = (await d.store.get('Sandbox', 'default', taken))!;
    assert.notEqual(
      findCondition(before.status?.conditions, 'Ready')?.observedGeneration,
      before.metadata.generation,
      "the adopted Sandbox's follow-up waits too",
    );
    await new Promise((r) => setTimeout(r, quietMs));
    await ctl.idle();
    assert.equal(await members(), 4, 'replaced once claims are quiet');
    const after = (await d.store.get('Sandbox', 'default', taken))!;
    assert.equal(findCondition(after.status?.conditions, 'Ready')?.observedGeneration, after.metadata.generation);
    await ctl.stop();
  });
});
