// Lifecycle on the real local engine under gVisor: the seeds' YAML, warm pools serving claims,
// expiry, Retain, suspend/resume keeping files and volumes, claims without leaks.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { Sandbox, apply, Objects, InvalidError, UnavailableError } from '@asb/sdk';
import { startTestEngine, type TestEngine } from './harness.ts';

const fixture = (f: string) => readFileSync(new URL(`../../packages/api/test/fixtures/${f}`, import.meta.url), 'utf8');

async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try { const v = await fn(); if (v) return v; } catch (err) { last = err; }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}

const readyOf = (o: { status?: { conditions?: Array<{ type: string; status: string; reason: string }> } }) => o.status?.conditions?.find((c) => c.type === 'Ready');

function runscContainers(t: TestEngine): string[] {
  const out = execFileSync('runsc', ['--root', join(t.home, 'runsc'), 'list', '--quiet'], { encoding: 'utf8' });
  return out.split('\n').filter(Boolean);
}

describe('lifecycle on the local engine', () => {
  let t: TestEngine;
  let api: Objects;
  before(async () => { t = await startTestEngine(); api = new Objects(t.conn); });
  after(async () => { await t?.stop(); });

  it('applies seed 001\'s template and warm pool unchanged; claims adopt warm members and the pool refills', async () => {
    const applied = await apply(fixture('seed001-template-and-pool.yaml'), t.conn);
    assert.deepEqual(applied.map((a) => `${a.kind}/${a.name}`), ['SandboxTemplate/python-runtime-template', 'SandboxWarmPool/python-sandbox-warmpool']);
    await waitFor('2 ready pool members', async () => (await api.get('SandboxWarmPool', 'python-sandbox-warmpool')).status?.readyReplicas === 2);
    const t0 = performance.now();
    const sb = await Sandbox.create({ ...t.conn, template: 'python-runtime-template' });
    const r = await sb.run('echo warm');
    const warmMs = performance.now() - t0;
    assert.equal(r.stdout, 'warm\n');
    assert.match(sb.id, /^python-sandbox-warmpool-[a-z0-9]{5}$/, 'served by the pool');
    assert.ok(warmMs < 5000, `a warm claim answers quickly (${warmMs.toFixed(0)} ms)`);
    const sbObj = await api.get('Sandbox', sb.id);
    assert.equal(sbObj.metadata.labels?.['agents.x-k8s.io/warm-pool-sandbox'], undefined, 'pool label removed');
    assert.equal(sbObj.metadata.ownerReferences?.[0]?.kind, 'SandboxClaim');
    assert.equal(sbObj.metadata.annotations?.['agents.x-k8s.io/pod-name'], sb.id);
    const claim = await api.get('SandboxClaim', sb.info.claim!);
    assert.equal(readyOf(claim)?.status, 'True');
    assert.equal((claim.status?.sandbox as { name: string }).name, sb.id);
    const events = await api.events('SandboxClaim', sb.info.claim!);
    assert.ok(events.some((e) => e.reason === 'SandboxAdopted' && e.message.includes(sb.id)));
    await waitFor('the pool to refill', async () => (await api.get('SandboxWarmPool', 'python-sandbox-warmpool')).status?.readyReplicas === 2);
    await sb.kill();
    await waitFor('the claim and its sandbox to go', async () => !(await api.list('Sandbox')).some((s) => s.metadata.name === sb.id));
  });

  it('serves 50 claims against a pool of 5: every one answered, the pool refilled, nothing leaked', async () => {
    await api.patch('SandboxWarmPool', 'python-sandbox-warmpool', { spec: { replicas: 5 } });
    await waitFor('5 ready pool members', async () => (await api.get('SandboxWarmPool', 'python-sandbox-warmpool')).status?.readyReplicas === 5, 120_000);
    let warm = 0;
    for (let wave = 0; wave < 5; wave++) {
      const results = await Promise.all(Array.from({ length: 10 }, async (_, i) => {
        const sb = await Sandbox.create({ ...t.conn, template: 'python-runtime-template' });
        const out = await sb.run(`echo claim-${wave}-${i}`);
        if (sb.id.startsWith('python-sandbox-warmpool-')) warm++;
        await sb.kill();
        return out.stdout;
      }));
      assert.deepEqual(results, Array.from({ length: 10 }, (_, i) => `claim-${wave}-${i}\n`));
    }
    assert.ok(warm >= 5, `at least the pool's 5 were served warm (${warm} of 50)`);
    await waitFor('the pool to refill to 5', async () => (await api.get('SandboxWarmPool', 'python-sandbox-warmpool')).status?.readyReplicas === 5, 120_000);
    await waitFor('only the pool\'s sandboxes to be left', async () => {
      const sbs = await api.list('Sandbox');
      return sbs.length === 5 && sbs.every((s) => s.metadata.name.startsWith('python-sandbox-warmpool-'));
    }, 60_000);
    assert.equal((await api.list('SandboxClaim')).length, 0);
    await waitFor('5 containers and 5 workspaces', async () => runscContainers(t).length === 5 && readdirSync(join(t.home, 'sandboxes', 'default')).length === 5, 30_000);
    // Deleting the pool removes its members.
    await api.delete('SandboxWarmPool', 'python-sandbox-warmpool');
    await waitFor('no container left', async () => runscContainers(t).length === 0 && (await api.list('Sandbox')).length === 0, 60_000);
  });

  it('expires a claim at its ttl (shutdownPolicy Delete): the claim and its sandbox are gone', async () => {
    const sb = await Sandbox.create({ ...t.conn, template: 'python-runtime-template', ttlSeconds: 2 });
    assert.equal((await sb.run('echo alive')).stdout, 'alive\n');
    await waitFor('the claim to expire', async () => (await api.list('SandboxClaim')).length === 0 && (await api.list('Sandbox')).length === 0, 15_000);
    await assert.rejects(sb.run('true'));
  });

  it('Retain keeps an expired claim (ClaimExpired) and deletes only its sandbox', async () => {
    const at = new Date(Date.now() + 2000).toISOString().replace(/\.\d{3}Z$/, 'Z');
    await apply(`apiVersion: extensions.agents.x-k8s.io/v1alpha1
kind: SandboxClaim
metadata: { name: kept }
spec:
  sandboxTemplateRef: { name: python-runtime-template }
  lifecycle: { shutdownTime: "${at}", shutdownPolicy: Retain }
`, t.conn);
    await waitFor('the claim to be ready', async () => readyOf(await api.get('SandboxClaim', 'kept'))?.status === 'True');
    await waitFor('the claim to expire', async () => readyOf(await api.get('SandboxClaim', 'kept'))?.reason === 'ClaimExpired', 15_000);
    await waitFor('its sandbox to go', async () => (await api.list('Sandbox')).length === 0);
    assert.ok(await api.get('SandboxClaim', 'kept'), 'the claim is kept');
    await api.delete('SandboxClaim', 'kept');
  });

  it('replicas 0 stops a Sandbox and keeps its files and volumes; replicas 1 brings them back', async () => {
    await apply(`apiVersion: agents.x-k8s.io/v1alpha1
kind: Sandbox
metadata: { name: keeper }
spec:
  podTemplate:
    spec:
      containers:
      - name: main
        image: python:3.13-slim
        volumeMounts: [ { name: data, mountPath: /data } ]
  volumeClaimTemplates:
  - metadata: { name: data }
    spec: { accessModes: [ReadWriteOnce], resources: { requests: { storage: 64Mi } } }
`, t.conn);
    let sb = await Sandbox.connect('keeper', t.conn);
    // The storage request is the volume's size: filling it fails inside, not on the host's disk.
    const fill = await sb.run('head -c 100000000 /dev/zero > /data/fill; echo "exit=$?"; rm -f /data/fill');
    assert.match(fill.stdout + fill.stderr, /No space left on device/);
    await sb.run('echo in-workspace > note.txt && echo in-volume > /data/v.txt && sleep 300 &');
    await new Objects({ ...t.conn, version: 'v1alpha1' }).patch('Sandbox', 'keeper', { spec: { replicas: 0 } });
    await waitFor('suspended', async () => readyOf(await api.get('Sandbox', 'keeper'))?.reason === 'SandboxSuspended');
    await assert.rejects(sb.run('true'), (err: unknown) => err instanceof UnavailableError && /suspended/.test((err as Error).message));
    const v1 = await new Objects({ ...t.conn, version: 'v1alpha1' }).get('Sandbox', 'keeper');
    assert.equal(v1.status?.replicas, 0);
    await new Objects({ ...t.conn, version: 'v1alpha1' }).patch('Sandbox', 'keeper', { spec: { replicas: 1 } });
    sb = await Sandbox.connect('keeper', t.conn);
    assert.equal((await sb.run('cat note.txt /data/v.txt')).stdout, 'in-workspace\nin-volume\n');
    assert.equal((await sb.run('pgrep -c sleep || true')).stdout.trim(), '0', 'processes started anew');
    const dir = join(t.home, 'sandboxes', 'default', 'keeper');
    assert.ok(existsSync(join(dir, 'volumes', 'data', 'v.txt')));
    await sb.kill();
    await waitFor('its directory to be removed with it', async () => !existsSync(dir));
  });

  it('refuses invalid claims with field paths, and reports a missing template on the claim', async () => {
    await assert.rejects(apply(fixture('seed003-claim-wrong.yaml'), t.conn), (err: unknown) => {
      assert.ok(err instanceof InvalidError);
      assert.match((err as Error).message, /apiVersion/);
      assert.match((err as Error).message, /spec\.templateRef/);
      return true;
    });
    await apply('apiVersion: extensions.agents.x-k8s.io/v1alpha1\nkind: SandboxClaim\nmetadata: { name: orphan }\nspec: { sandboxTemplateRef: { name: no-such-template } }\n', t.conn);
    await waitFor('TemplateNotFound', async () => readyOf(await api.get('SandboxClaim', 'orphan'))?.reason === 'TemplateNotFound');
    await api.delete('SandboxClaim', 'orphan');
  });
});
