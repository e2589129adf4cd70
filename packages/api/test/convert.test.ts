// Conversion through the hub: v1alpha1 → hub → v1alpha1 and v1beta1 → hub → v1beta1 return equal
// objects, and so do hub → either version → hub; the v1alpha1/v1beta1 field mappings hold.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  validateObject,
  validateHub,
  toHub,
  fromHub,
  convert,
  claimSource,
  formatIssues,
  versionOf,
  ANNOTATION_CLAIM_V1ALPHA1_INTENT,
  ANNOTATION_CLAIM_V1BETA1_FIELDS,
  ANNOTATION_V1BETA1_VCT_POLICY,
  type AnyObject,
  type HubObject,
  type SandboxClaim,
  type Version,
} from '../src/index.ts';

function valid<T = AnyObject>(raw: unknown): T {
  const r = validateObject(raw);
  assert.ok(r.ok, r.ok ? '' : formatIssues(r.errors));
  return r.object as T;
}
function hub(raw: unknown): HubObject {
  const r = validateHub(raw);
  assert.ok(r.ok, r.ok ? '' : formatIssues(r.errors));
  return r.object;
}

const A = 'extensions.agents.x-k8s.io';
const podTemplate = {
  metadata: { labels: { app: 'x' } },
  spec: {
    runtimeClassName: 'gvisor',
    containers: [{ name: 'c', image: 'busybox', resources: { limits: { memory: '1Gi' } } }],
  },
};
const vcts = [
  {
    metadata: { name: 'workspace', labels: { tier: 'data' } },
    spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '10Gi' } } },
  },
];
const meta = {
  name: 'obj',
  namespace: 'team',
  labels: { team: 'a' },
  annotations: { note: 'kept' },
  uid: 'u-1',
  resourceVersion: '7',
  generation: 2,
};
const condition = {
  type: 'Ready',
  status: 'False',
  reason: 'DependenciesNotReady',
  message: 'Pod exists with phase: Pending',
  lastTransitionTime: '2026-01-02T15:04:05Z',
  observedGeneration: 2,
};

/** Objects with every field set, in both versions, as validateObject returns them. */
const served: Record<string, unknown> = {
  'Sandbox v1alpha1 running': {
    apiVersion: 'agents.x-k8s.io/v1alpha1',
    kind: 'Sandbox',
    metadata: meta,
    spec: {
      podTemplate,
      volumeClaimTemplates: vcts,
      shutdownTime: '2026-01-02T16:00:00Z',
      shutdownPolicy: 'Delete',
      replicas: 1,
      service: true,
    },
    status: {
      replicas: 1,
      selector: 'agents.x-k8s.io/sandbox-name-hash=0123abcd',
      podIPs: ['10.0.0.7'],
      service: 'obj',
      serviceFQDN: 'obj.team.svc.cluster.local',
      conditions: [condition],
    },
  },
  'Sandbox v1alpha1 suspended': {
    apiVersion: 'agents.x-k8s.io/v1alpha1',
    kind: 'Sandbox',
    metadata: { name: 's' },
    spec: { podTemplate, replicas: 0 },
  },
  'Sandbox v1beta1': {
    apiVersion: 'agents.x-k8s.io/v1beta1',
    kind: 'Sandbox',
    metadata: meta,
    spec: { podTemplate, operatingMode: 'Suspended' },
    status: { nodeName: 'node-1', conditions: [condition] },
  },
  'SandboxTemplate v1alpha1': {
    apiVersion: `${A}/v1alpha1`,
    kind: 'SandboxTemplate',
    metadata: meta,
    spec: {
      podTemplate,
      volumeClaimTemplates: vcts,
      service: false,
      networkPolicy: { egress: [{ to: [{ ipBlock: { cidr: '0.0.0.0/0', except: ['10.0.0.0/8'] } }] }] },
      networkPolicyManagement: 'Unmanaged',
      envVarsInjectionPolicy: 'Overrides',
    },
  },
  'SandboxTemplate v1beta1': {
    apiVersion: `${A}/v1beta1`,
    kind: 'SandboxTemplate',
    metadata: meta,
    spec: { podTemplate, volumeClaimTemplatesPolicy: 'Allowed' },
  },
  'SandboxClaim v1alpha1 default pool': {
    apiVersion: `${A}/v1alpha1`,
    kind: 'SandboxClaim',
    metadata: meta,
    spec: {
      sandboxTemplateRef: { name: 'tpl' },
      lifecycle: {
        shutdownTime: '2026-01-02T16:00:00Z',
        ttlSecondsAfterFinished: 60,
        shutdownPolicy: 'DeleteForeground',
      },
      additionalPodMetadata: { labels: { 'example.com/user': 'u1' } },
      env: [{ name: 'A', value: '1', containerName: 'c' }],
    },
    status: { sandbox: { name: 'obj', podIPs: ['10.0.0.8'] }, conditions: [condition] },
  },
  'SandboxClaim v1alpha1 named pool': {
    apiVersion: `${A}/v1alpha1`,
    kind: 'SandboxClaim',
    metadata: { name: 'c' },
    spec: { sandboxTemplateRef: { name: 'tpl' }, warmpool: 'fast-pool' },
  },
  'SandboxClaim v1alpha1 cold': {
    apiVersion: `${A}/v1alpha1`,
    kind: 'SandboxClaim',
    metadata: { name: 'c' },
    spec: { sandboxTemplateRef: { name: 'tpl' }, warmpool: 'none' },
  },
  'SandboxClaim v1beta1': {
    apiVersion: `${A}/v1beta1`,
    kind: 'SandboxClaim',
    metadata: meta,
    spec: { warmPoolRef: { name: 'fast-pool' }, volumeClaimTemplates: vcts, env: [{ name: 'A', value: '1' }] },
  },
  'SandboxWarmPool v1alpha1': {
    apiVersion: `${A}/v1alpha1`,
    kind: 'SandboxWarmPool',
    metadata: meta,
    spec: { replicas: 3, sandboxTemplateRef: { name: 'tpl' }, updateStrategy: { type: 'Recreate' } },
    status: { replicas: 3, readyReplicas: 2, selector: 'agents.x-k8s.io/warm-pool-sandbox=0123abcd' },
  },
  'SandboxWarmPool v1beta1': {
    apiVersion: `${A}/v1beta1`,
    kind: 'SandboxWarmPool',
    metadata: meta,
    spec: { sandboxTemplateRef: { name: 'tpl' } },
    status: { replicas: 1, observedGeneration: 2 },
  },
};

/**
 * Status fields only one version has are not shown in the other (the controller rewrites status,
 * in the hub): Sandbox v1beta1 nodeName, pool v1beta1 observedGeneration; Sandbox v1alpha1
 * replicas are derived from the mode when the hub has none.
 */
function withoutVersionOnlyStatus(obj: AnyObject): AnyObject {
  if (!obj.status) return obj;
  const status: Record<string, unknown> = { ...obj.status };
  const v = versionOf(obj);
  // (v1alpha1's status.replicas comes back derived from the mode.)
  if (obj.kind === 'Sandbox' && v === 'v1alpha1')
    status.replicas = (obj.spec as { replicas?: number }).replicas === 0 ? 0 : 1;
  if (obj.kind === 'Sandbox' && v === 'v1beta1') delete status.nodeName;
  if (obj.kind === 'SandboxWarmPool' && v === 'v1beta1') delete status.observedGeneration;
  return { ...obj, status };
}

describe('round trips', () => {
  for (const [name, raw] of Object.entries(served)) {
    it(`${name} → hub → the same version is unchanged`, () => {
      const obj = valid(raw);
      const h = toHub(obj);
      assert.ok(validateHub(h).ok, 'the hub object is a valid hub object');
      assert.deepEqual(fromHub(h, versionOf(obj)), obj);
    });

    it(`${name} → hub → the other version is valid, and comes back unchanged but for status the other version lacks`, () => {
      const obj = valid(raw);
      const other: Version = versionOf(obj) === 'v1alpha1' ? 'v1beta1' : 'v1alpha1';
      const shown = valid(fromHub(toHub(obj), other));
      assert.equal(versionOf(shown), other);
      assert.deepEqual(convert(shown, versionOf(obj)), withoutVersionOnlyStatus(obj));
    });
  }

  it('does not modify its input', () => {
    const obj = valid(served['SandboxClaim v1beta1']);
    const copy = structuredClone(obj);
    fromHub(toHub(obj), 'v1alpha1');
    assert.deepEqual(obj, copy);
  });
});

describe('Sandbox: replicas ↔ operatingMode', () => {
  for (const [replicas, mode] of [
    [0, 'Suspended'],
    [1, 'Running'],
  ] as const) {
    it(`maps replicas ${replicas} to operatingMode ${mode} and back`, () => {
      const alpha = valid({
        apiVersion: 'agents.x-k8s.io/v1alpha1',
        kind: 'Sandbox',
        metadata: { name: 's' },
        spec: { podTemplate, replicas },
      });
      const beta = convert(alpha, 'v1beta1');
      assert.ok(beta.kind === 'Sandbox' && 'operatingMode' in beta.spec);
      assert.equal(beta.spec.operatingMode, mode);
      assert.ok(!('replicas' in beta.spec));
    });
  }

  it('shows status.replicas only in v1alpha1 and status.nodeName only in v1beta1', () => {
    const h = hub({
      apiVersion: 'agents.x-k8s.io/v1beta1',
      kind: 'Sandbox',
      metadata: { name: 's' },
      spec: { podTemplate },
      status: { replicas: 1, nodeName: 'n1' },
    });
    assert.deepEqual(fromHub(h, 'v1alpha1').status, { replicas: 1 });
    assert.deepEqual(fromHub(h, 'v1beta1').status, { nodeName: 'n1' });
  });

  it("derives v1alpha1's status.replicas from the mode when the stored status has none (a cluster's v1beta1 storage prunes it)", () => {
    for (const [operatingMode, replicas] of [
      ['Running', 1],
      ['Suspended', 0],
    ] as const) {
      const h = hub({
        apiVersion: 'agents.x-k8s.io/v1beta1',
        kind: 'Sandbox',
        metadata: { name: 's' },
        spec: { podTemplate, operatingMode },
        status: { serviceFQDN: 's.default.svc.cluster.local' },
      });
      assert.deepEqual(fromHub(h, 'v1alpha1').status, { serviceFQDN: 's.default.svc.cluster.local', replicas });
    }
  });
});

describe('SandboxClaim: sandboxTemplateRef + warmpool ↔ warmPoolRef', () => {
  const alphaClaim = (spec: Record<string, unknown>, status?: unknown) =>
    valid({
      apiVersion: `${A}/v1alpha1`,
      kind: 'SandboxClaim',
      metadata: { name: 'my-claim' },
      spec,
      ...(status ? { status } : {}),
    });
  const poolShown = (obj: AnyObject) => {
    const beta = convert(obj, 'v1beta1');
    assert.ok(beta.kind === 'SandboxClaim' && 'warmPoolRef' in beta.spec);
    return beta.spec.warmPoolRef.name;
  };

  it('keeps a v1alpha1 claim\'s template and policy in the hub (so "default" still means any pool of the template)', () => {
    const h = toHub(alphaClaim({ sandboxTemplateRef: { name: 'tpl' } }));
    assert.deepEqual(h.spec, { sandboxTemplateRef: { name: 'tpl' }, warmpool: 'default' });
    assert.deepEqual(claimSource(h), { by: 'template', template: 'tpl', warmpool: 'default' });
  });

  it("shows a cold or default claim as shadow-pool-<template> in v1beta1, as upstream's webhook does", () => {
    assert.equal(poolShown(alphaClaim({ sandboxTemplateRef: { name: 'tpl' } })), 'shadow-pool-tpl');
    assert.equal(
      poolShown(
        alphaClaim({ sandboxTemplateRef: { name: 'tpl' }, warmpool: 'none' }, { sandbox: { name: 'my-claim' } }),
      ),
      'shadow-pool-tpl',
    );
  });

  it('shows a named pool as that pool, and a warm-adopted claim as the pool its Sandbox came from', () => {
    assert.equal(poolShown(alphaClaim({ sandboxTemplateRef: { name: 'tpl' }, warmpool: 'fast-pool' })), 'fast-pool');
    assert.equal(
      poolShown(alphaClaim({ sandboxTemplateRef: { name: 'tpl' } }, { sandbox: { name: 'python-warmpool-x7k2p' } })),
      'python-warmpool',
    );
  });

  it('carries the v1alpha1 intent in an annotation of the v1beta1 object, and drops it on the way back', () => {
    const beta = convert(alphaClaim({ sandboxTemplateRef: { name: 'tpl' } }), 'v1beta1');
    assert.deepEqual(JSON.parse(beta.metadata.annotations?.[ANNOTATION_CLAIM_V1ALPHA1_INTENT] ?? ''), {
      sandboxTemplateRef: 'tpl',
      warmpool: 'default',
      warmPoolRef: 'shadow-pool-tpl',
    });
    assert.equal(toHub(beta).metadata.annotations, undefined);
  });

  it('lets a v1beta1 writer re-point the claim: a changed warmPoolRef replaces the v1alpha1 intent', () => {
    const beta = convert(alphaClaim({ sandboxTemplateRef: { name: 'tpl' } }), 'v1beta1');
    assert.ok(beta.kind === 'SandboxClaim' && 'warmPoolRef' in beta.spec);
    const edited = valid({ ...beta, spec: { ...beta.spec, warmPoolRef: { name: 'other-pool' } } });
    const h = toHub(edited) as SandboxClaim;
    assert.deepEqual(h.spec, { warmPoolRef: { name: 'other-pool' } });
    assert.equal(h.metadata.annotations, undefined);
  });

  it('lets a v1alpha1 writer re-point a v1beta1 claim: a changed template replaces the pool ref', () => {
    const alpha = convert(
      valid({
        apiVersion: `${A}/v1beta1`,
        kind: 'SandboxClaim',
        metadata: { name: 'c' },
        spec: { warmPoolRef: { name: 'fast-pool' } },
      }),
      'v1alpha1',
    );
    assert.ok(alpha.kind === 'SandboxClaim' && 'sandboxTemplateRef' in alpha.spec);
    assert.deepEqual(
      alpha.spec,
      { sandboxTemplateRef: { name: 'fast-pool' }, warmpool: 'fast-pool' },
      'without a resolver the pool name stands in for the template, as upstream',
    );
    const edited = valid({ ...alpha, spec: { sandboxTemplateRef: { name: 'tpl-2' }, warmpool: 'none' } });
    assert.deepEqual(toHub(edited).spec, { sandboxTemplateRef: { name: 'tpl-2' }, warmpool: 'none' });
  });

  it("names the pool's template in v1alpha1 when told how to find it", () => {
    const beta = valid({
      apiVersion: `${A}/v1beta1`,
      kind: 'SandboxClaim',
      metadata: { name: 'c', namespace: 'ns' },
      spec: { warmPoolRef: { name: 'fast-pool' } },
    });
    const seen: string[] = [];
    const alpha = convert(beta, 'v1alpha1', {
      templateOfPool: (ns, pool) => {
        seen.push(`${ns}/${pool}`);
        return 'python-runtime-template';
      },
    });
    assert.ok(alpha.kind === 'SandboxClaim' && 'sandboxTemplateRef' in alpha.spec);
    assert.deepEqual(alpha.spec, { sandboxTemplateRef: { name: 'python-runtime-template' }, warmpool: 'fast-pool' });
    assert.deepEqual(seen, ['ns/fast-pool']);
  });

  it('shows a shadow pool in v1alpha1 as its template with the default policy', () => {
    const alpha = convert(
      valid({
        apiVersion: `${A}/v1beta1`,
        kind: 'SandboxClaim',
        metadata: { name: 'c' },
        spec: { warmPoolRef: { name: 'shadow-pool-tpl' } },
      }),
      'v1alpha1',
    );
    assert.ok(alpha.kind === 'SandboxClaim' && 'sandboxTemplateRef' in alpha.spec);
    assert.deepEqual(alpha.spec, { sandboxTemplateRef: { name: 'tpl' }, warmpool: 'default' });
  });

  it('refuses a carried annotation that is not what conversion writes', () => {
    const raw = {
      apiVersion: `${A}/v1alpha1`,
      kind: 'SandboxClaim',
      metadata: { name: 'c', annotations: { [ANNOTATION_CLAIM_V1BETA1_FIELDS]: '{not json' } },
      spec: { sandboxTemplateRef: { name: 't' } },
    };
    const r = validateObject(raw);
    assert.ok(!r.ok);
    assert.equal(
      formatIssues(r.errors),
      `metadata.annotations[${ANNOTATION_CLAIM_V1BETA1_FIELDS}]: is written by version conversion and is not valid; remove it`,
    );
  });
});

describe('SandboxTemplate: volumeClaimTemplatesPolicy', () => {
  it('rides in an annotation in v1alpha1 when it is not the default', () => {
    const beta = valid({
      apiVersion: `${A}/v1beta1`,
      kind: 'SandboxTemplate',
      metadata: { name: 't' },
      spec: { podTemplate, volumeClaimTemplatesPolicy: 'Overrides' },
    });
    const alpha = convert(beta, 'v1alpha1');
    assert.equal(alpha.metadata.annotations?.[ANNOTATION_V1BETA1_VCT_POLICY], 'Overrides');
    assert.equal(
      convert(valid({ ...beta, spec: { podTemplate } }), 'v1alpha1').metadata.annotations,
      undefined,
      'the default needs no annotation',
    );
  });

  it('refuses a carried policy that is not one of the three', () => {
    const r = validateObject({
      apiVersion: `${A}/v1alpha1`,
      kind: 'SandboxTemplate',
      metadata: { name: 't', annotations: { [ANNOTATION_V1BETA1_VCT_POLICY]: 'Sometimes' } },
      spec: { podTemplate },
    });
    assert.ok(!r.ok);
    assert.match(formatIssues(r.errors), /must be one of Disallowed, Allowed, Overrides \(got "Sometimes"\)/);
  });
});
