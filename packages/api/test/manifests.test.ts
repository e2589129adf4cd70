// The seeds' YAML applies unchanged; wrong YAML is refused with the field and what to write.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseManifests, validateObject, formatIssues, type ManifestResult } from '../src/index.ts';

const fixture = (name: string) => readFileSync(join(dirname(fileURLToPath(import.meta.url)), 'fixtures', name), 'utf8');
const okObjects = (results: ManifestResult[]) => results.map((r) => { assert.ok(r.ok, r.ok ? '' : formatIssues(r.errors)); return r.object as any; });

describe('the seeds\' manifests', () => {
  it('seed 001: SandboxTemplate and SandboxWarmPool validate, with defaults applied', () => {
    const [tpl, pool] = okObjects(parseManifests(fixture('seed001-template-and-pool.yaml')));
    assert.equal(tpl.kind, 'SandboxTemplate');
    assert.equal(tpl.spec.networkPolicyManagement, 'Managed');
    assert.equal(tpl.spec.envVarsInjectionPolicy, 'Disallowed');
    assert.equal(tpl.spec.podTemplate.spec.containers[0].readinessProbe.httpGet.port, 8888, 'unknown PodSpec fields pass through');
    assert.equal(pool.spec.replicas, 2);
    assert.equal(pool.spec.sandboxTemplateRef.name, 'python-runtime-template');
  });

  it('seed 002: the counter template keeps its command, args and node selector', () => {
    const [tpl] = okObjects(parseManifests(fixture('seed002-counter-template.yaml')));
    assert.deepEqual(tpl.spec.podTemplate.spec.containers[0].command, ['python3', '-c']);
    assert.match(tpl.spec.podTemplate.spec.containers[0].args[0], /Count: \{i\}/);
    assert.equal(tpl.spec.podTemplate.spec.nodeSelector['topology.kubernetes.io/zone'], 'us-central1-a');
  });

  it('seed 004: template with limits and its warm pool', () => {
    const [tpl, pool] = okObjects(parseManifests(fixture('seed004-template-and-pool.yaml')));
    assert.equal(tpl.metadata.namespace, 'agent-sandbox-demo');
    assert.equal(tpl.spec.podTemplate.spec.containers[0].resources.limits.memory, '1Gi');
    assert.equal(pool.kind, 'SandboxWarmPool');
  });

  it('seed 003: Sandboxes, one with volumeClaimTemplates and shutdownPolicy', () => {
    const [a, b] = okObjects(parseManifests(fixture('seed003-sandboxes.yaml')));
    assert.equal(a.spec.replicas, 1);
    assert.equal(a.spec.shutdownPolicy, 'Retain');
    assert.equal(a.metadata.namespace, 'default');
    assert.equal(b.spec.shutdownPolicy, 'Delete');
    assert.equal(b.spec.volumeClaimTemplates[0].metadata.name, 'workspace');
  });

  it('seed 003\'s non-upstream template and claim are refused with what to write instead', () => {
    const [tpl, claim] = parseManifests(fixture('seed003-wrong.yaml'));
    assert.equal(tpl!.ok, false);
    assert.match(formatIssues((tpl as any).errors), /^apiVersion: SandboxTemplate is served as extensions\.agents\.x-k8s\.io\/v1alpha1/);
    const fixed = parseManifests(fixture('seed003-wrong.yaml').replace('apiVersion: agents.x-k8s.io/v1alpha1\nkind: SandboxClaim', 'apiVersion: extensions.agents.x-k8s.io/v1alpha1\nkind: SandboxClaim'));
    assert.equal(claim!.ok, false);
    const msg = formatIssues((fixed[1] as any).errors);
    assert.match(msg, /spec\.templateRef: unknown field; did you mean spec\.sandboxTemplateRef/);
    assert.match(msg, /spec\.ttl: unknown field; did you mean spec\.lifecycle\.shutdownTime/);
    assert.match(msg, /spec\.sandboxTemplateRef: /);
  });
});

describe('invalid objects', () => {
  const sandbox = (spec: Record<string, unknown>, name = 'ok-name') => ({ apiVersion: 'agents.x-k8s.io/v1alpha1', kind: 'Sandbox', metadata: { name }, spec: { podTemplate: { spec: { containers: [{ name: 'c', image: 'busybox' }] } }, ...spec } });
  const errorsOf = (raw: unknown) => { const r = validateObject(raw); assert.equal(r.ok, false); return formatIssues((r as any).errors); };

  const cases: Array<[string, unknown, RegExp]> = [
    ['replicas out of range', sandbox({ replicas: 3 }), /^spec\.replicas: must be 0 or 1/m],
    ['a missing image', sandbox({ podTemplate: { spec: { containers: [{ name: 'c' }] } } }), /^spec\.podTemplate\.spec\.containers\[0\]\.image: image is required/m],
    ['a bad name', sandbox({}, 'Bad_Name'), /^metadata\.name: must be a DNS subdomain/m],
    ['a bad quantity', sandbox({ podTemplate: { spec: { containers: [{ name: 'c', image: 'x', resources: { limits: { memory: '12XB' } } }] } } }), /containers\[0\]\.resources\.limits\.memory: must be a Kubernetes quantity/],
    ['an unknown field', sandbox({ colour: 'blue' }), /^spec\.colour: unknown field/m],
    ['a bad shutdown time', sandbox({ shutdownTime: 'tomorrow' }), /^spec\.shutdownTime: must be an RFC 3339 date-time/m],
    ['a bad shutdown policy', sandbox({ shutdownPolicy: 'Keep' }), /^spec\.shutdownPolicy: /m],
    ['operatingMode in v1alpha1', sandbox({ operatingMode: 'Running' }), /spec\.operatingMode: unknown field; did you mean spec\.replicas/],
    ['an unknown kind', { apiVersion: 'agents.x-k8s.io/v1alpha1', kind: 'Pod', metadata: { name: 'x' }, spec: {} }, /^kind: must be one of Sandbox, SandboxTemplate/],
    ['a bad label key', sandbox({ podTemplate: { metadata: { labels: { 'bad key!': 'x' } }, spec: { containers: [{ name: 'c', image: 'x' }] } } }), /podTemplate\.metadata\.labels\.bad key!: must be a qualified name/],
  ];
  for (const [what, raw, expected] of cases) it(`names the field of ${what}`, () => assert.match(errorsOf(raw), expected));

  it('reports YAML syntax errors with line and column', () => {
    const [r] = parseManifests('apiVersion: agents.x-k8s.io/v1alpha1\nkind: Sandbox\nmetadata:\n  name: [unclosed\n');
    assert.equal(r!.ok, false);
    assert.match(formatIssues((r as any).errors), /^line \d+:\d+: /);
  });

  it('accepts v1beta1 objects with their own fields', () => {
    const r = validateObject({ apiVersion: 'agents.x-k8s.io/v1beta1', kind: 'Sandbox', metadata: { name: 'b' }, spec: { operatingMode: 'Suspended', podTemplate: { spec: { containers: [{ name: 'c', image: 'x' }] } } } });
    assert.ok(r.ok);
    const claim = validateObject({ apiVersion: 'extensions.agents.x-k8s.io/v1beta1', kind: 'SandboxClaim', metadata: { name: 'c' }, spec: { warmPoolRef: { name: 'p' } } });
    assert.ok(claim.ok);
  });
});
