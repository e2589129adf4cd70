// Invalid objects are refused with the field's path and a sentence saying what is wrong.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { validateObject, validateHub, formatIssues, type FieldError } from '../src/index.ts';

const container = { name: 'c', image: 'busybox' };
const sandbox = (
  spec: Record<string, unknown> = {},
  metadata: Record<string, unknown> = { name: 'ok-name' },
  apiVersion = 'agents.x-k8s.io/v1alpha1',
) => ({ apiVersion, kind: 'Sandbox', metadata, spec: { podTemplate: { spec: { containers: [container] } }, ...spec } });
const podSpec = (spec: Record<string, unknown>) =>
  sandbox({ podTemplate: { spec: { containers: [container], ...spec } } });
const withContainer = (c: Record<string, unknown>) =>
  sandbox({ podTemplate: { spec: { containers: [{ ...container, ...c }] } } });
const claim = (spec: Record<string, unknown>, version = 'v1alpha1', name = 'my-claim') => ({
  apiVersion: `extensions.agents.x-k8s.io/${version}`,
  kind: 'SandboxClaim',
  metadata: { name },
  spec,
});
const pool = (spec: Record<string, unknown>, version = 'v1alpha1') => ({
  apiVersion: `extensions.agents.x-k8s.io/${version}`,
  kind: 'SandboxWarmPool',
  metadata: { name: 'pool' },
  spec,
});
const template = (spec: Record<string, unknown>, metadata: Record<string, unknown> = { name: 'tpl' }) => ({
  apiVersion: 'extensions.agents.x-k8s.io/v1alpha1',
  kind: 'SandboxTemplate',
  metadata,
  spec: { podTemplate: { spec: { containers: [container] } }, ...spec },
});

function errorsOf(raw: unknown): FieldError[] {
  const r = validateObject(raw);
  assert.equal(r.ok, false, 'expected the object to be refused');
  return r.ok ? [] : r.errors;
}

describe('validateObject refuses', () => {
  // [what, object, the exact line formatIssues prints for it]
  const cases: Array<[string, unknown, string]> = [
    ['replicas out of range', sandbox({ replicas: 3 }), 'spec.replicas: must be 0 or 1 (got 3)'],
    ['replicas that is not a number', sandbox({ replicas: '1' }), 'spec.replicas: must be a number (got "1")'],
    [
      'a container without an image',
      sandbox({ podTemplate: { spec: { containers: [{ name: 'c' }] } } }),
      'spec.podTemplate.spec.containers[0].image: image is required',
    ],
    [
      'a pod without containers',
      sandbox({ podTemplate: { spec: { containers: [] } } }),
      'spec.podTemplate.spec.containers: at least one container is required',
    ],
    ['a missing podTemplate', { ...sandbox(), spec: {} }, 'spec.podTemplate: Required'],
    [
      'a name with capitals and "_"',
      sandbox({}, { name: 'Bad_Name' }),
      'metadata.name: must be a DNS-1035 label: lowercase letters, digits and "-", starting with a letter and ending with a letter or digit, because it becomes a hostname and a Service name (got "Bad_Name")',
    ],
    [
      'a Sandbox name longer than 63',
      sandbox({}, { name: 'a'.repeat(64) }),
      `metadata.name: must be at most 63 characters, because it becomes a hostname and a Service name (got "${'a'.repeat(57)}...")`,
    ],
    [
      'a Sandbox name starting with a digit',
      sandbox({}, { name: '1sandbox' }),
      'metadata.name: must be a DNS-1035 label: lowercase letters, digits and "-", starting with a letter and ending with a letter or digit, because it becomes a hostname and a Service name (got "1sandbox")',
    ],
    ['a missing name', sandbox({}, {}), 'metadata.name: Required (or set metadata.generateName)'],
    [
      'a bad namespace',
      sandbox({}, { name: 'a', namespace: 'My.NS' }),
      'metadata.namespace: must be a DNS label: lowercase letters, digits and "-", starting and ending with a letter or digit (got "My.NS")',
    ],
    [
      'a bad memory quantity',
      withContainer({ resources: { limits: { memory: '12XB' } } }),
      'spec.podTemplate.spec.containers[0].resources.limits[memory]: must be a Kubernetes quantity such as 512Mi, 1Gi, 250m, 2 or 1e3 (got "12XB")',
    ],
    [
      'a negative quantity',
      withContainer({ resources: { requests: { cpu: '-1' } } }),
      'spec.podTemplate.spec.containers[0].resources.requests[cpu]: must not be negative (got "-1")',
    ],
    [
      'a request above its limit',
      withContainer({ resources: { requests: { memory: '2Gi' }, limits: { memory: '1Gi' } } }),
      'spec.podTemplate.spec.containers[0].resources.requests[memory]: must be less than or equal to the memory limit (1Gi) (got "2Gi")',
    ],
    [
      'an unknown spec field',
      sandbox({ colour: 'blue' }),
      'spec.colour: unknown field (known fields: podTemplate, volumeClaimTemplates, service, shutdownTime, shutdownPolicy, replicas)',
    ],
    [
      'a misspelt spec field',
      sandbox({ shutdownpolicy: 'Delete' }),
      'spec.shutdownpolicy: unknown field; did you mean spec.shutdownPolicy?',
    ],
    [
      'operatingMode in v1alpha1',
      sandbox({ operatingMode: 'Running' }),
      'spec.operatingMode: unknown field; did you mean spec.replicas (1 = Running, 0 = Suspended)? operatingMode is the v1beta1 spelling',
    ],
    [
      'replicas in v1beta1',
      sandbox({ replicas: 1 }, { name: 'b' }, 'agents.x-k8s.io/v1beta1'),
      'spec.replicas: unknown field; did you mean spec.operatingMode (Running or Suspended)? replicas is the v1alpha1 spelling',
    ],
    [
      'a bad operatingMode',
      sandbox({ operatingMode: 'Paused' }, { name: 'b' }, 'agents.x-k8s.io/v1beta1'),
      'spec.operatingMode: must be one of Running, Suspended (got "Paused")',
    ],
    [
      'a shutdownTime that is not RFC 3339',
      sandbox({ shutdownTime: 'tomorrow' }),
      'spec.shutdownTime: must be an RFC 3339 date-time such as 2026-01-02T15:04:05Z (got "tomorrow")',
    ],
    [
      'a bad shutdownPolicy',
      sandbox({ shutdownPolicy: 'Keep' }),
      'spec.shutdownPolicy: must be one of Delete, Retain (got "Keep")',
    ],
    [
      'a name in podTemplate.metadata',
      sandbox({ podTemplate: { metadata: { name: 'x' }, spec: { containers: [container] } } }),
      'spec.podTemplate.metadata.name: unknown field; a pod template takes only labels and annotations; the pod is named after the Sandbox',
    ],
    [
      'a bad label key',
      sandbox({}, { name: 'a', labels: { 'bad key!': 'x' } }),
      'metadata.labels[bad key!]: invalid key: must be a qualified name: an optional DNS-subdomain prefix and "/", then at most 63 letters, digits, "-", "_" and ".", starting and ending with a letter or digit',
    ],
    [
      'a bad label value',
      sandbox({}, { name: 'a', labels: { 'app.kubernetes.io/name': 'no spaces' } }),
      'metadata.labels[app.kubernetes.io/name]: must be a label value: at most 63 letters, digits, "-", "_" and ".", starting and ending with a letter or digit (or empty) (got "no spaces")',
    ],
    [
      'duplicate container names',
      podSpec({ containers: [container, container] }),
      'spec.podTemplate.spec.containers[1].name: duplicate name: "c" is already used (got "c")',
    ],
    [
      'a probe without a handler',
      withContainer({ readinessProbe: { periodSeconds: 1 } }),
      'spec.podTemplate.spec.containers[0].readinessProbe: must have exactly one handler: httpGet, tcpSocket, exec or grpc',
    ],
    [
      'a port out of range',
      withContainer({ ports: [{ containerPort: 70000 }] }),
      'spec.podTemplate.spec.containers[0].ports[0].containerPort: must be a port number from 1 to 65535 (got 70000)',
    ],
    [
      'a bad restartPolicy',
      podSpec({ restartPolicy: 'Sometimes' }),
      'spec.podTemplate.spec.restartPolicy: must be one of Always, OnFailure, Never (got "Sometimes")',
    ],
    [
      'dnsPolicy None without nameservers',
      podSpec({ dnsPolicy: 'None' }),
      'spec.podTemplate.spec.dnsConfig.nameservers: Required when dnsPolicy is None (the pod would have no resolver)',
    ],
    [
      'env with value and valueFrom',
      withContainer({ env: [{ name: 'A', value: 'x', valueFrom: { secretKeyRef: { key: 'k' } } }] }),
      'spec.podTemplate.spec.containers[0].env[0].valueFrom: may not have both value and valueFrom',
    ],
    [
      'a volume claim template without a size',
      sandbox({
        volumeClaimTemplates: [
          { metadata: { name: 'w' }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: {} } } },
        ],
      }),
      'spec.volumeClaimTemplates[0].spec.resources.requests[storage]: Required: the volume size, e.g. 10Gi',
    ],
    [
      'a pool without replicas',
      pool({ sandboxTemplateRef: { name: 't' } }),
      'spec.replicas: Required: the number of ready sandboxes to keep (0 or more)',
    ],
    [
      'a pool with negative replicas',
      pool({ sandboxTemplateRef: { name: 't' }, replicas: -1 }),
      'spec.replicas: must be 0 or more (got -1)',
    ],
    [
      'a bad pool update strategy',
      pool({ sandboxTemplateRef: { name: 't' }, replicas: 1, updateStrategy: { type: 'Rolling' } }),
      'spec.updateStrategy.type: must be one of OnReplenish, Recreate (got "Rolling")',
    ],
    ['a claim without a template', claim({}), 'spec.sandboxTemplateRef: Required'],
    [
      'a claim with a bad warmpool',
      claim({ sandboxTemplateRef: { name: 't' }, warmpool: 'Any!' }),
      'spec.warmpool: must be "default" (any pool of the template), "none" (always start cold) or a SandboxWarmPool name (got "Any!")',
    ],
    [
      'a claim with a bad shutdownPolicy',
      claim({ sandboxTemplateRef: { name: 't' }, lifecycle: { shutdownPolicy: 'Later' } }),
      'spec.lifecycle.shutdownPolicy: must be one of Delete, DeleteForeground, Retain (got "Later")',
    ],
    [
      'a claim env var without a value',
      claim({ sandboxTemplateRef: { name: 't' }, env: [{ name: 'A' }] }),
      'spec.env[0].value: Required',
    ],
    [
      'a v1beta1 claim naming a template',
      claim({ sandboxTemplateRef: { name: 't' }, warmPoolRef: { name: 'p' } }, 'v1beta1'),
      'spec.sandboxTemplateRef: unknown field; did you mean spec.warmPoolRef? A v1beta1 claim names a SandboxWarmPool, which names the template (sandboxTemplateRef is the v1alpha1 spelling)',
    ],
    [
      'a claim name with dots',
      claim({ sandboxTemplateRef: { name: 't' } }, 'v1alpha1', 'a.b'),
      'metadata.name: must be a DNS-1035 label: lowercase letters, digits and "-", starting with a letter and ending with a letter or digit, because it becomes a hostname and a Service name (got "a.b")',
    ],
    [
      'a template network policy with a podSelector',
      template({ networkPolicy: { podSelector: {} } }),
      "spec.networkPolicy.podSelector: unknown field; the controller selects the template's sandboxes itself; give only ingress and egress rules",
    ],
    [
      'a template network policy with a bad CIDR',
      template({ networkPolicy: { egress: [{ to: [{ ipBlock: { cidr: '10.0.0.0/33' } }] }] } }),
      'spec.networkPolicy.egress[0].to[0].ipBlock.cidr: must be a CIDR such as 10.0.0.0/8 or fc00::/7 (got "10.0.0.0/33")',
    ],
    [
      'volumeClaimTemplatesPolicy on a v1alpha1 template',
      template({ volumeClaimTemplatesPolicy: 'Allowed' }),
      'spec.volumeClaimTemplatesPolicy: unknown field; volumeClaimTemplatesPolicy is new in v1beta1: use apiVersion extensions.agents.x-k8s.io/v1beta1',
    ],
    [
      'an unknown kind',
      { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'x' } },
      'kind: unknown kind "Pod" (this API serves Sandbox (agents.x-k8s.io/v1alpha1, v1beta1); SandboxTemplate (extensions.agents.x-k8s.io/v1alpha1, v1beta1); SandboxClaim (extensions.agents.x-k8s.io/v1alpha1, v1beta1); SandboxWarmPool (extensions.agents.x-k8s.io/v1alpha1, v1beta1))',
    ],
    [
      'an unserved version',
      { ...sandbox(), apiVersion: 'agents.x-k8s.io/v1' },
      'apiVersion: Sandbox is served as agents.x-k8s.io/v1alpha1 or agents.x-k8s.io/v1beta1 (got "agents.x-k8s.io/v1")',
    ],
    ['a document that is not a mapping', ['a', 'list'], 'must be a mapping with apiVersion, kind, metadata and spec'],
  ];
  for (const [what, raw, expected] of cases) {
    it(`${what}, naming the field`, () => assert.equal(formatIssues(errorsOf(raw)), expected));
  }

  it('a misspelt kind, suggesting the right one', () => {
    assert.match(
      formatIssues(errorsOf({ ...sandbox(), kind: 'sandbox' })),
      /^kind: unknown kind "sandbox"; did you mean Sandbox\?/,
    );
  });

  it('several mistakes at once, one line each', () => {
    const lines = formatIssues(errorsOf(sandbox({ replicas: 2, shutdownPolicy: 'x', extra: 1 }, { name: 'X' }))).split(
      '\n',
    );
    assert.deepEqual(
      lines.map((l) => l.slice(0, l.indexOf(':'))),
      ['metadata.name', 'spec.shutdownPolicy', 'spec.replicas', 'spec.extra'],
    );
  });
});

describe('validateObject accepts', () => {
  it('a v1beta1 Sandbox and defaults operatingMode to Running', () => {
    const r = validateObject(sandbox({}, { name: 'b' }, 'agents.x-k8s.io/v1beta1'));
    assert.ok(r.ok && r.object.kind === 'Sandbox' && 'operatingMode' in r.object.spec);
    assert.equal(r.object.spec.operatingMode, 'Running');
  });

  it('a v1beta1 claim with warmPoolRef, and a v1alpha1 claim defaulting warmpool to "default"', () => {
    assert.ok(validateObject(claim({ warmPoolRef: { name: 'p' } }, 'v1beta1')).ok);
    const r = validateObject(claim({ sandboxTemplateRef: { name: 't' } }));
    assert.ok(r.ok && r.object.kind === 'SandboxClaim' && 'warmpool' in r.object.spec);
    assert.equal(r.object.spec.warmpool, 'default');
  });

  it('a v1beta1 pool without replicas, defaulting them to 1', () => {
    const r = validateObject(pool({ sandboxTemplateRef: { name: 't' } }, 'v1beta1'));
    assert.ok(r.ok && r.object.kind === 'SandboxWarmPool');
    assert.equal(r.object.spec.replicas, 1);
  });

  it('a v1beta1 template, defaulting volumeClaimTemplatesPolicy to Disallowed', () => {
    const r = validateObject({ ...template({}), apiVersion: 'extensions.agents.x-k8s.io/v1beta1' });
    assert.ok(r.ok && r.object.kind === 'SandboxTemplate' && 'volumeClaimTemplatesPolicy' in r.object.spec);
    assert.equal(r.object.spec.volumeClaimTemplatesPolicy, 'Disallowed');
  });

  it('a template name that is a dotted DNS subdomain (only names that become hostnames are stricter)', () => {
    assert.ok(validateObject(template({}, { name: 'python.runtime-v2' })).ok);
  });

  it('the `creationTimestamp: null` that kubectl --dry-run writes', () => {
    assert.ok(validateObject(sandbox({}, { name: 'a', creationTimestamp: null })).ok);
  });

  it('generateName instead of name', () => {
    assert.ok(validateObject(sandbox({}, { generateName: 'pool-' })).ok);
  });

  it('unknown PodSpec and container fields, untouched', () => {
    const r = validateObject(
      podSpec({ priorityClassName: 'high', containers: [{ ...container, terminationMessagePolicy: 'File' }] }),
    );
    assert.ok(r.ok && r.object.kind === 'Sandbox');
    assert.equal((r.object.spec.podTemplate.spec as Record<string, unknown>).priorityClassName, 'high');
    assert.equal(
      (r.object.spec.podTemplate.spec.containers[0] as Record<string, unknown>).terminationMessagePolicy,
      'File',
    );
  });

  it('status from `kubectl get -o yaml`, including fields it does not know', () => {
    const status = {
      replicas: 1,
      selector: 'agents.x-k8s.io/sandbox-name-hash=1234abcd',
      futureField: true,
      conditions: [
        {
          type: 'Ready',
          status: 'True',
          reason: 'DependenciesReady',
          message: 'Pod is Ready',
          lastTransitionTime: '2026-01-02T15:04:05Z',
          observedGeneration: 1,
        },
      ],
    };
    assert.ok(validateObject({ ...sandbox(), status }).ok);
  });
});

describe('validateHub', () => {
  it('refuses a hub claim that names both a pool and a template', () => {
    const r = validateHub({
      apiVersion: 'extensions.agents.x-k8s.io/v1beta1',
      kind: 'SandboxClaim',
      metadata: { name: 'c' },
      spec: { warmPoolRef: { name: 'p' }, sandboxTemplateRef: { name: 't' } },
    });
    assert.ok(!r.ok);
    assert.equal(
      formatIssues(r.errors),
      'spec.warmPoolRef: set exactly one of warmPoolRef (v1beta1) or sandboxTemplateRef (v1alpha1)',
    );
  });

  it('accepts a hub claim that keeps v1alpha1 intent', () => {
    assert.ok(
      validateHub({
        apiVersion: 'extensions.agents.x-k8s.io/v1beta1',
        kind: 'SandboxClaim',
        metadata: { name: 'c' },
        spec: { sandboxTemplateRef: { name: 't' }, warmpool: 'none' },
      }).ok,
    );
  });
});
