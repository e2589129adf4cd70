// The lifecycle on real Kubernetes components (test/k8s/cluster.ts: etcd, kube-apiserver,
// controller-manager, scheduler, KWOK): our controller, as its own process, reconciles the
// seeds' objects into Pods that KWOK runs; v1alpha1 and v1beta1 are converted by its webhook.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { startHarness, waitFor, repo, type Harness } from './harness.ts';

describe('the controller on a real API server', { timeout: 900_000 }, () => {
  let h: Harness;
  let controller: ChildProcess;
  const get = (...args: string[]) => h.get(...args);
  const apply = (yaml: string) => h.apply(yaml);
  const claimReady = (name: string) => h.claimReady(name);
  const startController = () => h.startController();
  const claim = (name: string) => apply(`apiVersion: extensions.agents.x-k8s.io/v1alpha1
kind: SandboxClaim
metadata: { name: ${name} }
spec: { sandboxTemplateRef: { name: python-runtime-template }, warmpool: none }
`);

  before(async () => {
    h = await startHarness({ controller: false });
    controller = await startController();
  });
  after(async () => { await h?.stop(); });

  it('serves seed 001\'s template and pool: members become Ready through KWOK pods; a claim adopts one and the pool refills', async () => {
    apply(readFileSync(join(repo, 'packages/api/test/fixtures/seed001-template-and-pool.yaml'), 'utf8'));
    await waitFor('2 ready pool members', () => get('sandboxwarmpools.extensions.agents.x-k8s.io', 'python-sandbox-warmpool').status?.readyReplicas === 2, 120_000);
    const members = get('sandboxes.agents.x-k8s.io').items.map((s: any) => s.metadata.name);
    assert.equal(members.length, 2);
    apply(`apiVersion: extensions.agents.x-k8s.io/v1alpha1
kind: SandboxClaim
metadata: { name: my-claim }
spec: { sandboxTemplateRef: { name: python-runtime-template } }
`);
    const claim = await waitFor('the claim to be Ready', () => { const c = get('sandboxclaims.extensions.agents.x-k8s.io', 'my-claim'); return c.status?.conditions?.some((x: any) => x.type === 'Ready' && x.status === 'True') && c; }, 60_000);
    const adopted = claim.status.sandbox.name;
    assert.ok(members.includes(adopted), `adopted a warm member (${adopted})`);
    const sb = get('sandboxes.agents.x-k8s.io', adopted);
    assert.equal(sb.metadata.ownerReferences[0].kind, 'SandboxClaim');
    assert.equal(sb.metadata.annotations['agents.x-k8s.io/pod-name'], adopted);
    assert.equal(sb.metadata.labels['agents.x-k8s.io/warm-pool-sandbox'], undefined);
    const pod = get('pod', adopted);
    assert.equal(pod.metadata.ownerReferences[0].name, adopted);
    assert.equal(pod.status.phase, 'Running');
    await waitFor('the pool to refill', () => get('sandboxwarmpools.extensions.agents.x-k8s.io', 'python-sandbox-warmpool').status?.readyReplicas === 2, 60_000);
  });

  it('converts between v1alpha1 and v1beta1 through the webhook: replicas 0 suspends (the pod goes), 1 resumes', async () => {
    apply(`apiVersion: agents.x-k8s.io/v1alpha1
kind: Sandbox
metadata: { name: plain }
spec:
  podTemplate:
    spec:
      containers: [{ name: main, image: python:3.13-slim }]
`);
    await waitFor('its pod', () => get('pod', 'plain').status?.phase === 'Running');
    assert.equal(get('sandboxes.v1beta1.agents.x-k8s.io', 'plain').spec.operatingMode, 'Running');
    h.cluster.kubectl('patch', 'sandboxes.v1alpha1.agents.x-k8s.io', 'plain', '--type', 'merge', '-p', '{"spec":{"replicas":0}}');
    assert.equal(get('sandboxes.v1beta1.agents.x-k8s.io', 'plain').spec.operatingMode, 'Suspended');
    await waitFor('the pod to go', () => { try { get('pod', 'plain'); return false; } catch { return true; } });
    h.cluster.kubectl('patch', 'sandboxes.v1beta1.agents.x-k8s.io', 'plain', '--type', 'merge', '-p', '{"spec":{"operatingMode":"Running"}}');
    assert.equal(get('sandboxes.v1alpha1.agents.x-k8s.io', 'plain').spec.replicas, 1);
    await waitFor('a new pod', () => get('pod', 'plain').status?.phase === 'Running');
  });

  it('expires claims at shutdownTime: Delete removes the claim and what it owns; Retain keeps the claim (ClaimExpired) and deletes its sandbox', async () => {
    const at = new Date(Date.now() + 4000).toISOString().replace(/\.\d+Z$/, 'Z');
    for (const [name, policy] of [['expire-delete', 'Delete'], ['expire-retain', 'Retain']]) {
      apply(`apiVersion: extensions.agents.x-k8s.io/v1alpha1
kind: SandboxClaim
metadata: { name: ${name} }
spec: { sandboxTemplateRef: { name: python-runtime-template }, warmpool: none, lifecycle: { shutdownTime: "${at}", shutdownPolicy: ${policy} } }
`);
    }
    await waitFor('both claims Ready before they expire', () => claimReady('expire-delete') && claimReady('expire-retain'), 30_000);
    const retained = get('sandboxclaims.extensions.agents.x-k8s.io', 'expire-retain').status.sandbox.name;
    await waitFor('the Delete claim and its sandbox to go', () => !h.find('sandboxclaims.extensions.agents.x-k8s.io', 'expire-delete') && !h.find('sandboxes.agents.x-k8s.io', 'expire-delete'), 60_000);
    await waitFor('the Retain claim\'s sandbox to go', () => !h.find('sandboxes.agents.x-k8s.io', retained), 60_000);
    const kept = get('sandboxclaims.extensions.agents.x-k8s.io', 'expire-retain');
    const cond = kept.status.conditions.find((c: any) => c.type === 'Ready');
    assert.deepEqual([cond.status, cond.reason, cond.message], ['False', 'ClaimExpired', 'Claim expired. Sandbox cleanup initiated.']);
    const events = get('events').items.filter((e: any) => e.involvedObject.name === 'expire-retain').map((e: any) => e.reason);
    assert.ok(events.includes('ClaimExpired'), events.join(','));
    h.cluster.kubectl('delete', 'sandboxclaims.extensions.agents.x-k8s.io', 'expire-retain');
  });

  it('serves claims that race for a small pool: each ends with a sandbox of its own, none shared', async () => {
    const names = Array.from({ length: 6 }, (_, i) => `race-${i}`);
    apply(names.map((n) => `apiVersion: extensions.agents.x-k8s.io/v1beta1
kind: SandboxClaim
metadata: { name: ${n} }
spec: { warmPoolRef: { name: python-sandbox-warmpool } }
`).join('---\n'));
    await waitFor('every racing claim Ready', () => names.every((n) => claimReady(n)), 90_000);
    const owners = new Map<string, string>();
    for (const n of names) {
      const sb = get('sandboxclaims.extensions.agents.x-k8s.io', n).status.sandbox.name;
      assert.ok(!owners.has(sb), `${sb} is held by ${owners.get(sb)} and ${n}`);
      owners.set(sb, n);
      const refs = get('sandboxes.agents.x-k8s.io', sb).metadata.ownerReferences.filter((r: any) => r.controller);
      assert.deepEqual(refs.map((r: any) => [r.kind, r.name]), [['SandboxClaim', n]]);
    }
    h.cluster.kubectl('delete', 'sandboxclaims.extensions.agents.x-k8s.io', ...names, '--wait=false');
  });

  it('picks up where it left off after a restart: a claim made while it was down is served', async () => {
    controller.kill('SIGKILL');
    await new Promise((r) => controller.once('exit', r));
    // v1beta1, the storage version: writing it needs no webhook (v1alpha1 waits for one).
    apply(`apiVersion: extensions.agents.x-k8s.io/v1beta1
kind: SandboxClaim
metadata: { name: while-down }
spec: { warmPoolRef: { name: python-sandbox-warmpool } }
`);
    controller = await startController();
    await waitFor('the claim made while the controller was down', () => claimReady('while-down'), 60_000);
  });

  it('hands over between two replicas: the standby takes the Lease when the leader dies, and serves', async () => {
    const standby = await startController();
    const lease = () => get('lease', '-n', 'agent-sandbox-system', 'a3317529.agent-sandbox.x-k8s.io').spec.holderIdentity as string;
    const leader = lease();
    assert.ok(leader, 'a leader holds the lease');
    controller.kill('SIGKILL'); // no release: the standby must wait for the lease to expire
    await waitFor('the standby to take the lease', () => lease() !== leader && lease(), 60_000);
    claim('after-handover');
    await waitFor('a claim served by the new leader', () => claimReady('after-handover'), 60_000);
    controller = standby;
  });

  it('deletes what a claim owns with it (garbage collection)', async () => {
    h.cluster.kubectl('delete', 'sandboxclaims.extensions.agents.x-k8s.io', '--all', '--wait=false');
    await waitFor('the claim\'s sandbox and pod to go', () => {
      const names = get('sandboxes.agents.x-k8s.io').items.filter((s: any) => s.metadata.ownerReferences?.[0]?.kind === 'SandboxClaim');
      return names.length === 0;
    }, 60_000);
  });
});
