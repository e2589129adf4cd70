// What the Kubernetes substrate creates for a Sandbox, as upstream's Sandbox reconciler does
// (reference section 2.1): pure functions, checked without a cluster.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { nameHash, type Sandbox } from '@asb/api';
import {
  podFor,
  podMetadataPatch,
  pvcsFor,
  serviceFor,
  podChange,
  stateOfPod,
  podNameOf,
} from '../src/substrate/kube-workloads.ts';

const sandbox = (over: Partial<Sandbox['metadata']> = {}): Sandbox => ({
  apiVersion: 'agents.x-k8s.io/v1beta1',
  kind: 'Sandbox',
  metadata: { name: 'sb', namespace: 'team', uid: 'uid-1', ...over },
  spec: {
    operatingMode: 'Running',
    shutdownPolicy: 'Retain',
    podTemplate: {
      metadata: { labels: { b: '2', a: '1' }, annotations: { note: 'x' } },
      spec: { containers: [{ name: 'main', image: 'python:3.13-slim' }], volumes: [{ name: 'data', emptyDir: {} }] },
    },
    volumeClaimTemplates: [
      {
        metadata: { name: 'data', labels: { tier: 'fast' } },
        spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } },
      },
    ],
  },
});

describe('the Pod, PVCs and Service of a Sandbox', () => {
  it('names the pod after the sandbox, or after its pod-name annotation (a warm pool member keeps its pod)', () => {
    assert.equal(podNameOf(sandbox()), 'sb');
    assert.equal(podNameOf(sandbox({ annotations: { 'agents.x-k8s.io/pod-name': 'pool-abcde' } })), 'pool-abcde');
  });

  it('labels, annotates and owns the pod as upstream does', () => {
    const pod = podFor(sandbox());
    assert.equal(pod.metadata!.labels!['agents.x-k8s.io/sandbox-name-hash'], nameHash('sb'));
    assert.equal(pod.metadata!.labels!.a, '1');
    assert.equal(pod.metadata!.annotations!['agents.x-k8s.io/propagated-labels'], 'a,b');
    assert.equal(pod.metadata!.annotations!['agents.x-k8s.io/propagated-annotations'], 'note');
    assert.deepEqual(pod.metadata!.ownerReferences, [
      {
        apiVersion: 'agents.x-k8s.io/v1beta1',
        kind: 'Sandbox',
        name: 'sb',
        uid: 'uid-1',
        controller: true,
        blockOwnerDeletion: true,
      },
    ]);
  });

  it('mounts one PVC per volumeClaimTemplate, replacing the volume of the same name', () => {
    const pod = podFor(sandbox());
    assert.deepEqual(pod.spec!.volumes, [{ name: 'data', persistentVolumeClaim: { claimName: 'data-sb' } }]);
    const [pvc] = pvcsFor(sandbox());
    assert.equal(pvc!.metadata!.name, 'data-sb');
    assert.equal(pvc!.metadata!.labels!.tier, 'fast');
    assert.equal(pvc!.metadata!.labels!['agents.x-k8s.io/sandbox-name-hash'], nameHash('sb'));
    assert.equal(pvc!.spec!.resources!.requests!.storage, '1Gi');
  });

  it('makes a headless Service selecting the pod by its name hash', () => {
    const svc = serviceFor(sandbox());
    assert.equal(svc.spec!.clusterIP, 'None');
    assert.deepEqual(svc.spec!.selector, { 'agents.x-k8s.io/sandbox-name-hash': nameHash('sb') });
  });

  it("reads a pod's phase, readiness, IPs, node and scheduling in upstream's words", () => {
    assert.deepEqual(
      stateOfPod({
        spec: { nodeName: 'n1', containers: [] },
        status: {
          phase: 'Running',
          conditions: [
            { type: 'Ready', status: 'True' },
            { type: 'PodScheduled', status: 'True' },
          ],
          podIPs: [{ ip: '10.0.0.7' }],
        },
      }),
      {
        phase: 'Running',
        ready: true,
        message: 'Pod is Ready',
        podIPs: ['10.0.0.7'],
        nodeName: 'n1',
        scheduled: { status: 'True', reason: 'PodScheduled', message: '' },
      },
    );
    assert.equal(stateOfPod({}).phase, 'Pending');
    assert.deepEqual(stateOfPod({}).scheduled, {
      status: 'Unknown',
      reason: 'PodSchedulingUnknown',
      message: 'Pod has not reported a PodScheduled condition yet',
    });
    assert.equal(
      stateOfPod({ status: { phase: 'Running', conditions: [{ type: 'Ready', status: 'False' }] } }).message,
      'Pod is Running but not Ready',
    );
    // Ready without an IP is not ready: nothing could reach it.
    const noIp = stateOfPod({ status: { phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] } });
    assert.deepEqual([noIp.ready, noIp.message], [false, 'Pod is Ready but has no podIPs yet']);
    const unschedulable = stateOfPod({
      status: {
        phase: 'Pending',
        conditions: [
          { type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: '0/1 nodes are available' },
        ],
      },
    });
    assert.deepEqual(unschedulable.scheduled, {
      status: 'False',
      reason: 'Unschedulable',
      message: '0/1 nodes are available',
    });
  });

  it('calls a pod change settled (reported at once) when the pod is Ready, ended or gone, not on the way there', () => {
    const pod = (phase: string, ready: boolean, ip?: string) => ({
      status: {
        phase,
        conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }],
        ...(ip ? { podIPs: [{ ip }] } : {}),
      },
    });
    assert.deepEqual(podChange(pod('Pending', false), false), { settled: false });
    assert.deepEqual(podChange(pod('Running', false, '10.0.0.7'), false), { settled: false });
    assert.deepEqual(podChange(pod('Running', true), false), { settled: false }, 'Ready with no IP yet: not Ready');
    assert.deepEqual(podChange(pod('Running', true, '10.0.0.7'), false), { settled: true });
    assert.deepEqual(podChange(pod('Succeeded', false), false), { settled: true });
    assert.deepEqual(podChange(pod('Failed', false), false), { settled: true });
    assert.deepEqual(podChange(pod('Running', false), true), { settled: true }, 'deleted');
  });

  it("never copies system-reserved labels of the template onto the Pod (a tenant cannot take another Sandbox's name hash)", () => {
    const sb = sandbox();
    sb.spec.podTemplate.metadata = {
      labels: {
        app: 'x',
        'agents.x-k8s.io/sandbox-name-hash': nameHash('victim'),
        'agents.x-k8s.io/claim-uid': 'forged',
      },
      annotations: { 'agents.x-k8s.io/pod-name': 'other', team: 't' },
    };
    const pod = podFor(sb);
    assert.deepEqual(pod.metadata!.labels, { app: 'x', 'agents.x-k8s.io/sandbox-name-hash': nameHash('sb') });
    assert.equal(pod.metadata!.annotations!['agents.x-k8s.io/propagated-labels'], 'app');
    assert.equal(pod.metadata!.annotations!['agents.x-k8s.io/pod-name'], undefined);
    assert.equal(pod.metadata!.annotations!.team, 't');
  });

  it("carries the owning claim's uid from the Sandbox to its Pod while a claim owns it, as v1.0 does (and takes it off when none does)", () => {
    const owned = (kind: string) =>
      sandbox({
        labels: { 'agents.x-k8s.io/claim-uid': 'claim-uid-1' },
        ownerReferences: [
          { apiVersion: 'extensions.agents.x-k8s.io/v1beta1', kind, name: 'c', uid: 'u', controller: true },
        ],
      });
    assert.equal(podFor(owned('SandboxClaim')).metadata!.labels!['agents.x-k8s.io/claim-uid'], 'claim-uid-1');
    assert.equal(podFor(owned('SandboxWarmPool')).metadata!.labels!['agents.x-k8s.io/claim-uid'], undefined);
    assert.equal(podFor(sandbox()).metadata!.labels!['agents.x-k8s.io/claim-uid'], undefined);
    const stale = podFor(owned('SandboxClaim'));
    assert.deepEqual(podMetadataPatch(stale, owned('SandboxWarmPool'))?.labels, { 'agents.x-k8s.io/claim-uid': null });
  });
});
