import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  CreateSandboxBody,
  DEFAULT_TEMPLATE,
  REASONS,
  STATUS_OF,
  TERMINAL_REASONS,
  buildClaim,
  isReason,
  isTerminalReason,
  rfc3339,
  sandboxInfo,
  validateObject,
} from '../src/index.ts';

const now = new Date('2026-01-02T03:04:05.678Z');

describe('rfc3339', () => {
  it('writes UTC to the second, as metav1.Time', () => assert.equal(rfc3339(now), '2026-01-02T03:04:05Z'));
});

describe('reasons', () => {
  it('has one status per reason, and knows its own', () => {
    for (const r of REASONS) assert.ok(STATUS_OF[r] >= 400 && STATUS_OF[r] < 600, r);
    assert.equal(STATUS_OF.Conflict, 409);
    assert.equal(STATUS_OF.Internal, 500);
    assert.ok(isReason('PathOutsideSandbox'));
    assert.ok(!isReason('toString'));
  });
  it("terminal reasons: the engine's and the SDK's lists together", () => {
    for (const r of ['ReconcilerError', 'PodFailed', 'PodSucceeded', 'VolumeClaimTemplatesError', 'TemplateNotFound']) {
      assert.ok(isTerminalReason(r), r);
    }
    for (const r of ['DependenciesNotReady', 'SandboxNotReady', 'SandboxCreatePending', undefined])
      assert.ok(!isTerminalReason(r), r);
    assert.equal(new Set(TERMINAL_REASONS).size, TERMINAL_REASONS.length);
  });
});

describe('CreateSandboxBody', () => {
  it('defaults the namespace and refuses unknown fields', () => {
    assert.deepEqual(CreateSandboxBody.parse({ template: 't' }), { template: 't', namespace: 'default' });
    assert.ok(!CreateSandboxBody.safeParse({ warmPool: 'p' }).success);
  });
});

describe('buildClaim', () => {
  it("by template, in the engine's hub form: a valid v1beta1 claim with its policy and lifetime", () => {
    const c = buildClaim({
      name: 'c',
      namespace: 'ns',
      from: { template: DEFAULT_TEMPLATE, warmpool: 'none' },
      ttlSeconds: 60,
      now,
      createdBy: 'asb-engine-api',
      version: 'v1beta1',
    });
    assert.deepEqual(c, {
      apiVersion: 'extensions.agents.x-k8s.io/v1beta1',
      kind: 'SandboxClaim',
      metadata: { name: 'c', namespace: 'ns', labels: { 'agents.x-k8s.io/created-by': 'asb-engine-api' } },
      spec: {
        sandboxTemplateRef: { name: 'python-runtime-template' },
        warmpool: 'none',
        lifecycle: { shutdownTime: '2026-01-02T03:05:05Z', shutdownPolicy: 'Delete' },
      },
    });
  });
  it('by template, as a client writes it to an API server: v1alpha1, valid as served', () => {
    const c = buildClaim({
      name: 'c',
      from: { template: 't' },
      now,
      createdBy: 'asb-sdk',
      labels: { a: 'b' },
      annotations: { x: 'y' },
      version: 'v1alpha1',
    });
    assert.equal(c.apiVersion, 'extensions.agents.x-k8s.io/v1alpha1');
    assert.deepEqual(c.spec, { sandboxTemplateRef: { name: 't' } });
    assert.deepEqual(c.metadata, {
      name: 'c',
      labels: { 'agents.x-k8s.io/created-by': 'asb-sdk', a: 'b' },
      annotations: { x: 'y' },
    });
    assert.ok(validateObject({ ...c, metadata: { ...c.metadata, namespace: 'default' } }).ok);
  });
  it('by pool: v1beta1 warmPoolRef whatever version is asked', () => {
    const c = buildClaim({ name: 'c', from: { warmPool: 'p' }, now, createdBy: 'asb-sdk', version: 'v1alpha1' });
    assert.equal(c.apiVersion, 'extensions.agents.x-k8s.io/v1beta1');
    assert.deepEqual(c.spec, { warmPoolRef: { name: 'p' } });
    assert.ok(validateObject({ ...c, metadata: { ...c.metadata, namespace: 'default' } }).ok);
  });
});

describe('sandboxInfo', () => {
  const sb = {
    metadata: {
      name: 's',
      namespace: 'ns',
      uid: 'u',
      creationTimestamp: '2026-01-02T03:00:00Z',
      annotations: { 'agents.x-k8s.io/sandbox-template-ref': 'tpl' },
      ownerReferences: [{ kind: 'SandboxClaim', name: 'c', controller: true }],
    },
    spec: { podTemplate: { spec: { containers: [{ image: 'img' }] } } },
    status: {
      conditions: [
        {
          type: 'Ready',
          status: 'True',
          reason: 'DependenciesReady',
          message: 'Pod is Ready',
          lastTransitionTime: 'T',
        },
      ],
    },
  };
  it('on the engine: phase and times from the workload', () => {
    const started = new Date(now.getTime() - 250);
    const info = sandboxInfo(sb, {
      substrate: 'engine',
      workload: { phase: 'Running', containerId: 'k', startedAt: started, readyAt: now },
    });
    assert.deepEqual(JSON.parse(JSON.stringify(info)), {
      id: 's',
      name: 's',
      namespace: 'ns',
      uid: 'u',
      claim: 'c',
      template: 'tpl',
      phase: 'Running',
      ready: true,
      message: 'Pod is Ready',
      reason: 'DependenciesReady',
      image: 'img',
      containerId: 'k',
      createdAt: '2026-01-02T03:00:00Z',
      readyAt: '2026-01-02T03:04:05.678Z',
      startupMs: 250,
    });
    assert.equal(sandboxInfo(sb, { substrate: 'engine' }).phase, 'Pending', 'no workload yet');
  });
  it('on a cluster: phase from the Ready condition, template from the claim', () => {
    const info = sandboxInfo(sb, {
      substrate: 'kubernetes',
      claim: { metadata: { name: 'c2' }, spec: { warmPoolRef: { name: 'pool' } } },
    });
    assert.equal(info.phase, 'Running');
    assert.equal(info.template, 'pool');
    assert.equal(info.claim, 'c2');
    assert.equal(info.readyAt, 'T');
    const failed = { ...sb, status: { conditions: [{ type: 'Ready', status: 'False', reason: 'ReconcilerError' }] } };
    assert.equal(sandboxInfo(failed, { substrate: 'kubernetes' }).phase, 'Failed');
    assert.equal(
      sandboxInfo({ ...sb, spec: { operatingMode: 'Suspended' } }, { substrate: 'kubernetes' }).phase,
      'Suspended',
    );
  });
});
