// The lifecycle suite (test/lifecycle/suite.ts) on real Kubernetes components (test/k8s/cluster.ts:
// etcd, kube-apiserver, controller-manager, scheduler, KWOK): our controller, as its own process,
// reconciles the seeds' objects into Pods that KWOK runs; v1alpha1 and v1beta1 are converted by its
// webhook. Then what only a controller on a control plane does: restart, leader hand-over, the
// garbage collector deleting what a claim owns, and a warm pool whose pods the scheduler cannot
// place.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { KINDS, KIND_NAMES, type Kind, type Version } from '@asb/api';
import { startHarness, waitFor, type Harness } from './harness.ts';
import { lifecycleCases, type Substrate } from '../lifecycle/suite.ts';

/** `sandboxclaims.extensions.agents.x-k8s.io`, or with a version `sandboxclaims.v1alpha1.extensions…`. */
const resource = (kind: Kind, version?: Version) =>
  [KINDS[kind].plural, version, KINDS[kind].group].filter(Boolean).join('.');

function controlPlane(h: Harness): Substrate {
  const pod = (name: string) => h.find('pod', name);
  return {
    async apply(yaml) {
      // kubectl answers a line per object: "sandboxwarmpool.extensions.agents.x-k8s.io/name created".
      return h
        .apply(yaml)
        .split('\n')
        .filter(Boolean)
        .map((line) => {
          const [, kind, name] = /^([a-z]+)\.[^/]+\/(\S+) /.exec(line) ?? [];
          return `${KIND_NAMES.find((k) => k.toLowerCase() === kind) ?? line}/${name}`;
        });
    },
    async get(kind, name, version) {
      return h.find(resource(kind, version), name);
    },
    async list(kind) {
      return h.get(resource(kind)).items;
    },
    async patch(kind, name, version, patch) {
      h.cluster.kubectl('patch', resource(kind, version), name, '--type', 'merge', '-p', JSON.stringify(patch));
    },
    async delete(kind, ...names) {
      h.cluster.kubectl('delete', resource(kind), ...names, '--wait=false');
    },
    async events(kind, name) {
      return h.get('events').items.filter((e: any) => e.involvedObject.kind === kind && e.involvedObject.name === name);
    },
    async assertRunning(name) {
      const p = pod(name);
      assert.ok(p, `${name} has its pod`);
      assert.deepEqual(
        p.metadata.ownerReferences.map((r: any) => [r.kind, r.name]),
        [['Sandbox', name]],
      );
      assert.equal(p.status.phase, 'Running');
    },
    async workloadGone(name) {
      return !pod(name);
    },
    local: { skip: 'this is a control plane, whose KWOK pods run nothing' },
  };
}

describe('the lifecycle on a real API server', { timeout: 900_000 }, () => {
  let h: Harness;
  let substrate: Substrate;
  let controller: ChildProcess;
  const claimReady = (name: string) => h.claimReady(name);

  before(async () => {
    h = await startHarness({ controller: false });
    controller = await h.startController();
    substrate = controlPlane(h);
  });
  after(async () => {
    await h?.stop();
  });

  lifecycleCases(() => substrate);

  describe('what only a controller on a control plane does', () => {
    it('picks up where it left off after a restart: a claim made while it was down is served', async () => {
      controller.kill('SIGKILL');
      await new Promise((r) => controller.once('exit', r));
      // v1beta1, the storage version: writing it needs no webhook (v1alpha1 waits for one).
      h.apply(`apiVersion: extensions.agents.x-k8s.io/v1beta1
kind: SandboxClaim
metadata: { name: while-down }
spec: { warmPoolRef: { name: python-sandbox-warmpool } }
`);
      controller = await h.startController();
      await waitFor('the claim made while the controller was down', () => claimReady('while-down'), 60_000);
    });

    it('hands over between two replicas: the standby takes the Lease when the leader dies, and serves', async () => {
      const standby = await h.startController();
      const lease = () =>
        h.get('lease', '-n', 'agent-sandbox-system', 'a3317529.agent-sandbox.x-k8s.io').spec.holderIdentity as string;
      const leader = lease();
      assert.ok(leader, 'a leader holds the lease');
      controller.kill('SIGKILL'); // no release: the standby must wait for the lease to expire
      await waitFor('the standby to take the lease', () => lease() !== leader && lease(), 60_000);
      h.apply(`apiVersion: extensions.agents.x-k8s.io/v1alpha1
kind: SandboxClaim
metadata: { name: after-handover }
spec: { sandboxTemplateRef: { name: python-runtime-template }, warmpool: none }
`);
      await waitFor('a claim served by the new leader', () => claimReady('after-handover'), 60_000);
      controller = standby;
    });

    it("holds a warm pool's members that the scheduler cannot place past the readiness grace period, says so, and says so again when they run", async () => {
      // A short grace period (upstream's flag) so the test need not wait five minutes.
      controller.kill('SIGTERM');
      await new Promise((r) => controller.once('exit', r));
      controller = await h.startController([
        '--leader-elect=false',
        '--sandbox-warm-pool-readiness-grace-period=3s',
        '--sandbox-warm-pool-unschedulable-recheck-interval=2s',
      ]);
      h.apply(`apiVersion: extensions.agents.x-k8s.io/v1beta1
kind: SandboxTemplate
metadata: { name: needs-gpu-node }
spec:
  podTemplate:
    spec:
      nodeSelector: { pool: gpu }
      containers: [{ name: main, image: python:3.13-slim }]
---
apiVersion: extensions.agents.x-k8s.io/v1beta1
kind: SandboxWarmPool
metadata: { name: gpu-pool }
spec: { replicas: 2, sandboxTemplateRef: { name: needs-gpu-node } }
`);
      const members = () =>
        h
          .get(resource('Sandbox'))
          .items.filter((s: any) => s.metadata.ownerReferences?.[0]?.name === 'gpu-pool')
          .map((s: any) => s.metadata.name as string)
          .sort();
      const poolEvents = (reason: string) =>
        h.get('events').items.filter((e: any) => e.involvedObject.name === 'gpu-pool' && e.reason === reason);
      await waitFor('two members', () => members().length === 2, 30_000);
      const first = members();
      await waitFor(
        'the WarmPoolNotProgressing warning',
        () => poolEvents('WarmPoolNotProgressing').length > 0,
        30_000,
      );
      const [warning] = poolEvents('WarmPoolNotProgressing');
      assert.equal(warning.type, 'Warning');
      assert.match(
        warning.message,
        /^2\/2 sandboxes are unschedulable past the 3s readiness grace period; holding them/,
      );
      // Past the grace period several times over, the same two members: none was replaced.
      await new Promise((r) => setTimeout(r, 8000));
      assert.deepEqual(members(), first, 'unschedulable members are held, not replaced');
      assert.equal(poolEvents('WarmPoolNotProgressing').length, 1, 'one event per transition, not one per pass');
      // A node that fits: the scheduler places them, they become Ready, and the pool says it moves again.
      h.apply(`apiVersion: v1
kind: Node
metadata:
  name: kwok-gpu-node
  annotations: { kwok.x-k8s.io/node: fake }
  labels: { type: kwok, pool: gpu, kubernetes.io/hostname: kwok-gpu-node }
status:
  allocatable: { cpu: "100", memory: 1Ti, pods: "100" }
  capacity: { cpu: "100", memory: 1Ti, pods: "100" }
`);
      await waitFor(
        'the pool to be ready',
        () => h.get(resource('SandboxWarmPool'), 'gpu-pool').status?.readyReplicas === 2,
        60_000,
      );
      await waitFor('the WarmPoolProgressing event', () => poolEvents('WarmPoolProgressing').length > 0, 30_000);
      assert.deepEqual(members(), first, 'the held members are the ones that run');
      h.cluster.kubectl('delete', resource('SandboxWarmPool'), 'gpu-pool', '--wait=false');
      h.cluster.kubectl('delete', 'node', 'kwok-gpu-node', '--wait=false');
    });

    it('refuses to choose between two pods a Sandbox controls: Ready=False/MultiplePods, one Warning, and ready again when one goes', async () => {
      h.apply(`apiVersion: agents.x-k8s.io/v1beta1
kind: Sandbox
metadata: { name: twin }
spec:
  podTemplate:
    spec:
      containers: [{ name: main, image: python:3.13-slim }]
`);
      const ready = () => h.find(resource('Sandbox'), 'twin')?.status?.conditions?.find((c: any) => c.type === 'Ready');
      await waitFor('twin to be ready', () => ready()?.status === 'True', 60_000);
      const sb = h.get(resource('Sandbox'), 'twin');
      const pod = h.get('pod', 'twin');
      // A second pod naming the Sandbox its controller, with its label: a copy, as a user could make.
      h.apply(
        JSON.stringify({
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: {
            name: 'twin-copy',
            labels: pod.metadata.labels,
            ownerReferences: [
              { apiVersion: sb.apiVersion, kind: 'Sandbox', name: 'twin', uid: sb.metadata.uid, controller: true },
            ],
          },
          spec: { containers: [{ name: 'main', image: 'python:3.13-slim' }] },
        }),
      );
      await waitFor('MultiplePods', () => ready()?.reason === 'MultiplePods', 30_000);
      assert.equal(ready().status, 'False');
      assert.equal(
        ready().message,
        'multiple Pods (2) are controlled by this Sandbox; refusing to choose or create a Pod',
      );
      const warnings = () =>
        h.get('events').items.filter((e: any) => e.involvedObject.name === 'twin' && e.reason === 'MultiplePods');
      await waitFor('the Warning', () => warnings().length === 1, 30_000);
      assert.equal(warnings()[0].type, 'Warning');
      h.cluster.kubectl('delete', 'pod', 'twin-copy', '--wait=false');
      await waitFor('twin ready again', () => ready()?.status === 'True', 60_000);
      assert.equal(warnings()[0].count ?? 1, 1, 'said once');
      h.cluster.kubectl('delete', resource('Sandbox'), 'twin', '--wait=false');
    });

    it('deletes what a claim owns with it (garbage collection)', async () => {
      const owned = () =>
        h.get(resource('Sandbox')).items.filter((s: any) => s.metadata.ownerReferences?.[0]?.kind === 'SandboxClaim');
      const names: string[] = owned().map((s: any) => s.metadata.name);
      assert.equal(names.length, 2, 'the claims of the two tests above hold a sandbox each');
      h.cluster.kubectl('delete', resource('SandboxClaim'), '--all', '--wait=false');
      await waitFor(
        "the claims' sandboxes and pods to go",
        () => owned().length === 0 && names.every((n) => !h.find('pod', n)),
        60_000,
      );
    });
  });
});
