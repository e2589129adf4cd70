// One lifecycle behaviour suite, run against both substrates: the local engine on gVisor
// (test/e2e/lifecycle.test.ts) and our controller on a real kube-apiserver with KWOK
// (test/k8s/lifecycle.test.ts). The scenarios speak to a small adapter (apply, get, list, patch,
// delete, events, and a proof that a sandbox's workload runs); what only the local engine can show
// (commands in the sandbox, its files on the host, the SDK's claims) is skipped on the control
// plane with the reason, and what only a control plane has (restarts, leader hand-over, the
// garbage collector) stays in its entry file.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Sandbox, apply, InvalidError, UnavailableError, type ApiObject, type ConnectionOpts } from '@asb/sdk';
import type { Kind, Version } from '@asb/api';
import { waitFor } from '../support/wait.ts';
import { sandboxYaml } from '../support/manifests.ts';

export interface Substrate {
  /** Applies a YAML manifest, as `asb apply` or `kubectl apply`; answers "Kind/name" for each object. */
  apply(yaml: string): Promise<string[]>;
  /** The object in `version` (v1beta1, the storage version, by default); undefined if it does not exist. */
  get(kind: Kind, name: string, version?: Version): Promise<ApiObject | undefined>;
  list(kind: Kind): Promise<ApiObject[]>;
  /** A JSON merge patch, written in `version`. */
  patch(kind: Kind, name: string, version: Version, patch: Record<string, unknown>): Promise<void>;
  delete(kind: Kind, ...names: string[]): Promise<void>;
  events(kind: Kind, name: string): Promise<Array<{ reason: string; message: string }>>;
  /** Asserts that the sandbox's workload runs (a command answers in gVisor; its Pod runs, owned by it). */
  assertRunning(name: string): Promise<void>;
  /** Whether the sandbox's workload is gone (its container or its Pod), as suspending or deleting it does. */
  workloadGone(name: string): Promise<boolean>;
  /** The local engine, for what only it can show; on a control plane, why that is skipped. */
  local: LocalEngine | { skip: string };
}

export interface LocalEngine {
  conn: ConnectionOpts;
  home: string;
  /** The gVisor containers of this engine (`runsc list`). */
  containers(): string[];
}

const fixture = (f: string) => readFileSync(new URL(`../../packages/api/test/fixtures/${f}`, import.meta.url), 'utf8');
const readyOf = (o: ApiObject | undefined) => o?.status?.conditions?.find((c) => c.type === 'Ready');
/** RFC 3339 in whole seconds, as upstream writes shutdownTime. */
const inSeconds = (s: number) => new Date(Date.now() + s * 1000).toISOString().replace(/\.\d+Z$/, 'Z');
const POOL = 'python-sandbox-warmpool';
const TEMPLATE = 'python-runtime-template';

/** Declares the scenarios (node:test `it`s) against the substrate `get` answers once `before` ran. */
export function lifecycleCases(get: () => Substrate): void {
  const s = get;
  const claimReady = async (name: string) => readyOf(await s().get('SandboxClaim', name))?.status === 'True';
  const readyReplicas = async (pool: string) => (await s().get('SandboxWarmPool', pool))?.status?.readyReplicas;
  const claimedBy = async (claim: string) =>
    ((await s().get('SandboxClaim', claim))?.status?.sandbox as { name?: string } | undefined)?.name;
  /** The local engine, or a skip of the running test: what it needs, and why the substrate has none. */
  const localOrSkip = (t: { skip(reason: string): void }, needs: string): LocalEngine | undefined => {
    const l = s().local;
    if ('skip' in l) {
      t.skip(`the local engine only (${needs}): ${l.skip}`);
      return undefined;
    }
    return l;
  };

  it("applies seed 001's template and warm pool unchanged; a claim adopts a warm member and the pool refills", async () => {
    const applied = await s().apply(fixture('seed001-template-and-pool.yaml'));
    assert.deepEqual(applied, [`SandboxTemplate/${TEMPLATE}`, `SandboxWarmPool/${POOL}`]);
    await waitFor('2 ready pool members', async () => (await readyReplicas(POOL)) === 2, 120_000);
    const members = (await s().list('Sandbox')).map((sb) => sb.metadata.name);
    assert.equal(members.length, 2);
    for (const m of members) assert.match(m, /^python-sandbox-warmpool-[a-z0-9]{5}$/);
    await s().apply(`apiVersion: extensions.agents.x-k8s.io/v1alpha1
kind: SandboxClaim
metadata: { name: my-claim }
spec: { sandboxTemplateRef: { name: ${TEMPLATE} } }
`);
    await waitFor('the claim to be Ready', () => claimReady('my-claim'), 60_000);
    const adopted = (await claimedBy('my-claim'))!;
    assert.ok(members.includes(adopted), `adopted a warm member (${adopted} of ${members.join(', ')})`);
    const sb = (await s().get('Sandbox', adopted))!;
    assert.equal(sb.metadata.labels?.['agents.x-k8s.io/warm-pool-sandbox'], undefined, 'pool label removed');
    assert.deepEqual(
      sb.metadata.ownerReferences?.map((r) => [r.kind, r.name]),
      [['SandboxClaim', 'my-claim']],
    );
    assert.equal(sb.metadata.annotations?.['agents.x-k8s.io/pod-name'], adopted);
    const events = await s().events('SandboxClaim', 'my-claim');
    assert.ok(
      events.some((e) => e.reason === 'SandboxAdopted' && e.message.includes(adopted)),
      events.map((e) => e.reason).join(','),
    );
    await s().assertRunning(adopted);
    await waitFor('the pool to refill', async () => (await readyReplicas(POOL)) === 2, 60_000);
    await s().delete('SandboxClaim', 'my-claim');
    await waitFor(
      'the claim and its sandbox to go',
      async () => !(await s().get('SandboxClaim', 'my-claim')) && !(await s().get('Sandbox', adopted)),
      60_000,
    );
    await waitFor('its workload to go', () => s().workloadGone(adopted), 60_000);
  });

  it('serves a claim made through the SDK from the pool, warm: it answers within 5 s', async (t) => {
    const l = localOrSkip(t, 'a command in the sandbox, through the SDK');
    if (!l) return;
    const t0 = performance.now();
    const sb = await Sandbox.create({ ...l.conn, template: TEMPLATE });
    const r = await sb.run('echo warm');
    const warmMs = performance.now() - t0;
    assert.equal(r.stdout, 'warm\n');
    assert.match(sb.id, /^python-sandbox-warmpool-[a-z0-9]{5}$/, 'served by the pool');
    assert.ok(warmMs < 5000, `a warm claim answers quickly (${warmMs.toFixed(0)} ms)`);
    const sbObj = (await s().get('Sandbox', sb.id))!;
    assert.equal(sbObj.metadata.labels?.['agents.x-k8s.io/warm-pool-sandbox'], undefined, 'pool label removed');
    assert.equal(sbObj.metadata.ownerReferences?.[0]?.kind, 'SandboxClaim');
    assert.equal(sbObj.metadata.annotations?.['agents.x-k8s.io/pod-name'], sb.id);
    assert.equal(readyOf(await s().get('SandboxClaim', sb.info.claim!))?.status, 'True');
    assert.equal(await claimedBy(sb.info.claim!), sb.id);
    const events = await s().events('SandboxClaim', sb.info.claim!);
    assert.ok(events.some((e) => e.reason === 'SandboxAdopted' && e.message.includes(sb.id)));
    await waitFor('the pool to refill', async () => (await readyReplicas(POOL)) === 2, 60_000);
    await sb.kill();
    await waitFor(
      'the claim and its sandbox to go',
      async () =>
        !(await s().list('Sandbox')).some((x) => x.metadata.name === sb.id) &&
        !(await s().get('SandboxClaim', sb.info.claim!)),
    );
  });

  it(
    'serves claims that race for a small pool: each ends with a sandbox of its own, none shared; deleted, ' +
      'they take their sandboxes with them and the pool refills',
    async () => {
      const names = Array.from({ length: 6 }, (_, i) => `race-${i}`);
      await s().apply(
        names
          .map(
            (n) => `apiVersion: extensions.agents.x-k8s.io/v1beta1
kind: SandboxClaim
metadata: { name: ${n} }
spec: { warmPoolRef: { name: ${POOL} } }
`,
          )
          .join('---\n'),
      );
      await waitFor(
        'every racing claim Ready',
        async () => (await Promise.all(names.map(claimReady))).every(Boolean),
        90_000,
      );
      const owners = new Map<string, string>();
      for (const n of names) {
        const sb = (await claimedBy(n))!;
        assert.ok(sb, `${n} names its sandbox`);
        assert.ok(!owners.has(sb), `${sb} is held by ${owners.get(sb)} and ${n}`);
        owners.set(sb, n);
        const refs = (await s().get('Sandbox', sb))!.metadata.ownerReferences!.filter((r) => r.controller);
        assert.deepEqual(
          refs.map((r) => [r.kind, r.name]),
          [['SandboxClaim', n]],
        );
        await s().assertRunning(sb);
      }
      await s().delete('SandboxClaim', ...names);
      await waitFor(
        'the claims and their sandboxes to go',
        async () => {
          const left = new Set((await s().list('Sandbox')).map((x) => x.metadata.name));
          return (await s().list('SandboxClaim')).length === 0 && [...owners.keys()].every((sb) => !left.has(sb));
        },
        90_000,
      );
      await waitFor('the pool to refill', async () => (await readyReplicas(POOL)) === 2, 90_000);
    },
  );

  it(
    'serves 50 claims through the SDK against a pool of 5: every one answered, the pool refilled, nothing leaked; ' +
      'deleting the pool removes its members and their containers',
    async (t) => {
      const l = localOrSkip(t, 'commands in 50 sandboxes through the SDK, and the gVisor containers behind them');
      if (!l) return;
      await s().patch('SandboxWarmPool', POOL, 'v1beta1', { spec: { replicas: 5 } });
      await waitFor('5 ready pool members', async () => (await readyReplicas(POOL)) === 5, 120_000);
      let warm = 0;
      for (let wave = 0; wave < 5; wave++) {
        const results = await Promise.all(
          Array.from({ length: 10 }, async (_, i) => {
            const sb = await Sandbox.create({ ...l.conn, template: TEMPLATE });
            const out = await sb.run(`echo claim-${wave}-${i}`);
            if (sb.id.startsWith(`${POOL}-`)) warm++;
            await sb.kill();
            return out.stdout;
          }),
        );
        assert.deepEqual(
          results,
          Array.from({ length: 10 }, (_, i) => `claim-${wave}-${i}\n`),
        );
      }
      assert.ok(warm >= 5, `at least the pool's 5 were served warm (${warm} of 50)`);
      await waitFor('the pool to refill to 5', async () => (await readyReplicas(POOL)) === 5, 120_000);
      await waitFor(
        "only the pool's sandboxes to be left",
        async () => {
          const sbs = await s().list('Sandbox');
          return sbs.length === 5 && sbs.every((x) => x.metadata.name.startsWith(`${POOL}-`));
        },
        60_000,
      );
      assert.equal((await s().list('SandboxClaim')).length, 0);
      const workspaces = () => readdirSync(join(l.home, 'sandboxes', 'default'));
      await waitFor(
        '5 containers and 5 workspaces',
        () => l.containers().length === 5 && workspaces().length === 5,
        30_000,
      );
      await s().delete('SandboxWarmPool', POOL);
      await waitFor(
        'no container left',
        async () => l.containers().length === 0 && (await s().list('Sandbox')).length === 0,
        60_000,
      );
    },
  );

  it(
    'expires claims at shutdownTime: Delete removes the claim and what it owns; Retain keeps the claim ' +
      '(ClaimExpired) and deletes its sandbox',
    async () => {
      // Both must be Ready before then: 6 s leaves room for a cold start on a loaded machine.
      const at = inSeconds(6);
      for (const [name, policy] of [
        ['expire-delete', 'Delete'],
        ['expire-retain', 'Retain'],
      ]) {
        await s().apply(`apiVersion: extensions.agents.x-k8s.io/v1alpha1
kind: SandboxClaim
metadata: { name: ${name} }
spec:
  sandboxTemplateRef: { name: ${TEMPLATE} }
  warmpool: none
  lifecycle: { shutdownTime: "${at}", shutdownPolicy: ${policy} }
`);
      }
      await waitFor(
        'both claims Ready before they expire',
        async () => (await claimReady('expire-delete')) && (await claimReady('expire-retain')),
        30_000,
      );
      const deleted = (await claimedBy('expire-delete'))!;
      const retained = (await claimedBy('expire-retain'))!;
      await waitFor(
        'the Delete claim and its sandbox to go',
        async () => !(await s().get('SandboxClaim', 'expire-delete')) && !(await s().get('Sandbox', deleted)),
        60_000,
      );
      await waitFor("the Retain claim's sandbox to go", async () => !(await s().get('Sandbox', retained)), 60_000);
      await waitFor(
        'both workloads to go',
        async () => (await s().workloadGone(deleted)) && s().workloadGone(retained),
        60_000,
      );
      const cond = readyOf(await s().get('SandboxClaim', 'expire-retain'));
      assert.deepEqual(
        [cond?.status, cond?.reason, cond?.message],
        ['False', 'ClaimExpired', 'Claim expired. Sandbox cleanup initiated.'],
      );
      const events = (await s().events('SandboxClaim', 'expire-retain')).map((e) => e.reason);
      assert.ok(events.includes('ClaimExpired'), events.join(','));
      await s().delete('SandboxClaim', 'expire-retain');
      await waitFor('the kept claim to go once deleted', async () => !(await s().get('SandboxClaim', 'expire-retain')));
    },
  );

  it('expires a claim made through the SDK at its ttl: the claim and its sandbox are gone', async (t) => {
    const l = localOrSkip(t, 'a command in the sandbox, through the SDK');
    if (!l) return;
    // (5 s: a cold start on a loaded machine took over 2 s, and a claim that expires before it is
    // Ready fails the create.)
    const sb = await Sandbox.create({ ...l.conn, template: TEMPLATE, ttlSeconds: 5 });
    assert.equal((await sb.run('echo alive')).stdout, 'alive\n');
    await waitFor(
      'the claim to expire',
      async () => (await s().list('SandboxClaim')).length === 0 && (await s().list('Sandbox')).length === 0,
      20_000,
    );
    await assert.rejects(sb.run('true'));
  });

  it(
    'suspends a Sandbox with replicas 0 and resumes it with 1, converting between v1alpha1 and v1beta1 both ways: ' +
      'its workload goes and comes back',
    async () => {
      await s().apply(sandboxYaml('plain'));
      await waitFor('it to run', async () => readyOf(await s().get('Sandbox', 'plain'))?.status === 'True', 60_000);
      await s().assertRunning('plain');
      const mode = async () => (await s().get('Sandbox', 'plain', 'v1beta1'))?.spec.operatingMode;
      const replicas = async () => (await s().get('Sandbox', 'plain', 'v1alpha1'))?.spec.replicas;
      assert.equal(await mode(), 'Running');
      const suspended = async () => {
        await waitFor(
          'suspended',
          async () => readyOf(await s().get('Sandbox', 'plain'))?.reason === 'SandboxSuspended',
          60_000,
        );
        await waitFor('its workload to go', () => s().workloadGone('plain'), 60_000);
      };
      const resumed = async () => {
        await waitFor('resumed', async () => readyOf(await s().get('Sandbox', 'plain'))?.status === 'True', 60_000);
        await s().assertRunning('plain');
      };
      // v1alpha1's scale subresource reads status.replicas: 1 running, 0 suspended, on both
      // substrates (a cluster stores v1beta1, which has none: the webhook derives it).
      const statusReplicas = async () => (await s().get('Sandbox', 'plain', 'v1alpha1'))?.status?.replicas;
      assert.equal(await statusReplicas(), 1);
      await s().patch('Sandbox', 'plain', 'v1alpha1', { spec: { replicas: 0 } });
      assert.equal(await mode(), 'Suspended');
      await suspended();
      assert.equal(await statusReplicas(), 0);
      await s().patch('Sandbox', 'plain', 'v1beta1', { spec: { operatingMode: 'Running' } });
      assert.equal(await replicas(), 1);
      await resumed();
      await s().patch('Sandbox', 'plain', 'v1beta1', { spec: { operatingMode: 'Suspended' } });
      assert.equal(await replicas(), 0);
      await suspended();
      await s().patch('Sandbox', 'plain', 'v1alpha1', { spec: { replicas: 1 } });
      assert.equal(await mode(), 'Running');
      await resumed();
      await s().delete('Sandbox', 'plain');
      await waitFor(
        'it and its workload to go',
        async () => !(await s().get('Sandbox', 'plain')) && (await s().workloadGone('plain')),
        60_000,
      );
    },
  );

  it('replicas 0 stops a Sandbox and keeps its files and volumes; replicas 1 brings them back', async (t) => {
    const l = localOrSkip(t, 'files and processes in the sandbox, and its directory on the host');
    if (!l) return;
    await s().apply(sandboxYaml('keeper', { volumes: { data: { mountPath: '/data', storage: '64Mi' } } }));
    let sb = await Sandbox.connect('keeper', l.conn);
    // The storage request is the volume's size: filling it fails inside, not on the host's disk.
    const fill = await sb.run('head -c 100000000 /dev/zero > /data/fill; echo "exit=$?"; rm -f /data/fill');
    assert.match(fill.stdout + fill.stderr, /No space left on device/);
    // Written before the background process starts: `a && b && sleep 300 &` would background the
    // writes too, and the stop below could come before them.
    const wrote = await sb.run('echo in-workspace > note.txt && echo in-volume > /data/v.txt');
    assert.equal(wrote.exitCode, 0, wrote.stderr);
    await sb.run('sleep 300 &');
    await s().patch('Sandbox', 'keeper', 'v1alpha1', { spec: { replicas: 0 } });
    await waitFor('suspended', async () => readyOf(await s().get('Sandbox', 'keeper'))?.reason === 'SandboxSuspended');
    await assert.rejects(
      sb.run('true'),
      (err: unknown) => err instanceof UnavailableError && /suspended/.test((err as Error).message),
    );
    await s().patch('Sandbox', 'keeper', 'v1alpha1', { spec: { replicas: 1 } });
    sb = await Sandbox.connect('keeper', l.conn);
    assert.equal((await sb.run('cat note.txt /data/v.txt')).stdout, 'in-workspace\nin-volume\n');
    assert.equal((await sb.run('pgrep -c sleep || true')).stdout.trim(), '0', 'processes started anew');
    const dir = join(l.home, 'sandboxes', 'default', 'keeper');
    assert.ok(existsSync(join(dir, 'volumes', 'data', 'v.txt')));
    await sb.kill();
    await waitFor('its directory to be removed with it', () => !existsSync(dir));
  });

  it('refuses invalid claims whole, with field paths', async (t) => {
    const l = localOrSkip(
      t,
      "the engine's own validation; an API server validates with the CRDs' schema, " +
        'as test/k8s/crd-upstream.test.ts shows',
    );
    if (!l) return;
    await assert.rejects(apply(fixture('seed003-claim-wrong.yaml'), l.conn), (err: unknown) => {
      assert.ok(err instanceof InvalidError);
      assert.match((err as Error).message, /apiVersion/);
      assert.match((err as Error).message, /spec\.templateRef/);
      return true;
    });
    assert.equal((await s().list('SandboxClaim')).length, 0, 'nothing of it was stored');
  });

  it('reports a missing template on the claim (TemplateNotFound)', async () => {
    await s().apply(`apiVersion: extensions.agents.x-k8s.io/v1alpha1
kind: SandboxClaim
metadata: { name: orphan }
spec: { sandboxTemplateRef: { name: no-such-template } }
`);
    await waitFor(
      'TemplateNotFound',
      async () => readyOf(await s().get('SandboxClaim', 'orphan'))?.reason === 'TemplateNotFound',
      60_000,
    );
    assert.equal(readyOf(await s().get('SandboxClaim', 'orphan'))?.status, 'False');
    await s().delete('SandboxClaim', 'orphan');
    await waitFor('the claim to go', async () => !(await s().get('SandboxClaim', 'orphan')));
  });

  it("deletes a warm pool's members with it", async () => {
    await s().apply(`apiVersion: extensions.agents.x-k8s.io/v1alpha1
kind: SandboxWarmPool
metadata: { name: doomed }
spec: { replicas: 2, sandboxTemplateRef: { name: ${TEMPLATE} } }
`);
    await waitFor('2 ready members', async () => (await readyReplicas('doomed')) === 2, 120_000);
    const members = (await s().list('Sandbox')).map((x) => x.metadata.name).filter((n) => n.startsWith('doomed-'));
    assert.equal(members.length, 2);
    await s().delete('SandboxWarmPool', 'doomed');
    await waitFor(
      'its members and their workloads to go',
      async () => {
        const left = new Set((await s().list('Sandbox')).map((x) => x.metadata.name));
        for (const m of members) if (left.has(m) || !(await s().workloadGone(m))) return false;
        return true;
      },
      60_000,
    );
  });
}
