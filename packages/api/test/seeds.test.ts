// The seeds' YAML applies unchanged; the seed's non-upstream YAML is refused with what to write.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parseManifests, formatIssues, type AnyObject, type ManifestResult } from '../src/index.ts';

const fixture = (name: string) => readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8');

function objects(name: string): AnyObject[] {
  return parseManifests(fixture(name), name).map((r) => {
    assert.ok(r.ok, r.ok ? '' : formatIssues(r.errors));
    return r.object;
  });
}
function errors(r: ManifestResult | undefined): string {
  assert.ok(r);
  assert.equal(r.ok, false, 'expected the document to be refused');
  return r.ok ? '' : formatIssues(r.errors);
}

describe('seed 001: python runtime template and warm pool', () => {
  const [template, pool] = objects('seed001-template-and-pool.yaml');

  it("validates the SandboxTemplate and fills in upstream's defaults", () => {
    assert.ok(template?.kind === 'SandboxTemplate' && template.apiVersion === 'extensions.agents.x-k8s.io/v1alpha1');
    assert.equal(template.spec.networkPolicyManagement, 'Managed');
    assert.equal(template.spec.envVarsInjectionPolicy, 'Disallowed');
    assert.equal(template.spec.podTemplate.spec.runtimeClassName, 'gvisor');
    assert.equal(template.spec.podTemplate.spec.restartPolicy, 'OnFailure');
  });

  it("keeps the container's probe and resources as written", () => {
    assert.ok(template?.kind === 'SandboxTemplate');
    const [container] = template.spec.podTemplate.spec.containers;
    assert.deepEqual(container?.readinessProbe, {
      httpGet: { path: '/', port: 8888 },
      initialDelaySeconds: 0,
      periodSeconds: 1,
    });
    assert.deepEqual(container?.resources?.requests, { cpu: '250m', memory: '512Mi', 'ephemeral-storage': '512Mi' });
  });

  it('validates the SandboxWarmPool', () => {
    assert.ok(pool?.kind === 'SandboxWarmPool');
    assert.equal(pool.spec.replicas, 2);
    assert.equal(pool.spec.sandboxTemplateRef.name, 'python-runtime-template');
    assert.equal(pool.metadata.namespace, 'default');
  });
});

describe('seed 002: counter template for suspend and resume', () => {
  it('keeps the command, the multi-line script, the service account and the node selector', () => {
    const [template] = objects('seed002-counter-template.yaml');
    assert.ok(template?.kind === 'SandboxTemplate');
    const spec = template.spec.podTemplate.spec;
    assert.deepEqual(spec.containers[0]?.command, ['python3', '-c']);
    assert.match(spec.containers[0]?.args?.[0] ?? '', /print\(f"Count: \{i\}", flush=True\)/);
    assert.equal(spec.serviceAccountName, 'snapshot-sa');
    assert.deepEqual(spec.nodeSelector, { 'topology.kubernetes.io/zone': 'us-central1-a' });
    assert.deepEqual(template.spec.podTemplate.metadata?.labels, { app: 'agent-sandbox-workload' });
  });
});

describe('seed 003: Sandboxes on gVisor and Kata', () => {
  it('validates the gVisor test Sandbox with replicas 1 and shutdownPolicy Retain by default', () => {
    const [sandbox] = objects('seed003-sandbox-gvisor.yaml');
    assert.ok(sandbox?.kind === 'Sandbox' && sandbox.apiVersion === 'agents.x-k8s.io/v1alpha1');
    assert.equal(sandbox.spec.replicas, 1);
    assert.equal(sandbox.spec.shutdownPolicy, 'Retain');
    assert.equal(sandbox.metadata.namespace, 'default');
    assert.deepEqual(sandbox.spec.podTemplate.spec.containers[0]?.command, ['sleep', 'infinity']);
  });

  it('validates the Firecracker Sandbox with its requests and limits', () => {
    const [sandbox] = objects('seed003-sandbox-firecracker.yaml');
    assert.ok(sandbox?.kind === 'Sandbox');
    assert.deepEqual(sandbox.spec.podTemplate.spec.containers[0]?.resources?.limits, { memory: '512Mi', cpu: '500m' });
  });

  it('validates the CRD-reference Sandbox with volumeClaimTemplates, a secret env var and shutdownPolicy Delete', () => {
    const [sandbox] = objects('seed003-sandbox-vct.yaml');
    assert.ok(sandbox?.kind === 'Sandbox');
    assert.equal(sandbox.spec.shutdownPolicy, 'Delete');
    assert.equal(sandbox.spec.volumeClaimTemplates?.[0]?.metadata.name, 'workspace');
    assert.deepEqual(sandbox.spec.volumeClaimTemplates?.[0]?.spec.resources.requests, { storage: '10Gi' });
    assert.deepEqual(sandbox.spec.podTemplate.spec.containers[0]?.env?.[0]?.valueFrom, {
      secretKeyRef: { name: 'agent-secrets', key: 'openai-key' },
    });
  });

  it('refuses the SandboxTemplate written in the agents.x-k8s.io group, naming the right apiVersion', () => {
    const results = parseManifests(fixture('seed003-template-wrong.yaml'));
    assert.equal(results.length, 1);
    assert.equal(
      errors(results[0]),
      'apiVersion: SandboxTemplate belongs to the API group extensions.agents.x-k8s.io: use apiVersion extensions.agents.x-k8s.io/v1alpha1 (got "agents.x-k8s.io/v1alpha1")',
    );
  });

  it('refuses the SandboxClaim with templateRef and ttl, saying what each should be', () => {
    const message = errors(parseManifests(fixture('seed003-claim-wrong.yaml'))[0]);
    assert.match(
      message,
      /^apiVersion: SandboxClaim belongs to the API group extensions\.agents\.x-k8s\.io: use apiVersion extensions\.agents\.x-k8s\.io\/v1alpha1/m,
    );
    assert.match(message, /^spec\.templateRef: unknown field; did you mean spec\.sandboxTemplateRef\?$/m);
    assert.match(
      message,
      /^spec\.ttl: unknown field; did you mean spec\.lifecycle\.shutdownTime .*ttlSecondsAfterFinished/m,
    );
    assert.match(message, /^spec\.sandboxTemplateRef: Required$/m);
    assert.equal(message.split('\n').length, 4, message);
  });

  it("points each of the claim's errors at its line", () => {
    const r = parseManifests(fixture('seed003-claim-wrong.yaml'), 'claim.yaml')[0];
    assert.ok(r && !r.ok);
    const at = Object.fromEntries(r.errors.map((e) => [e.path, e.line]));
    assert.deepEqual(at, { apiVersion: 1, 'spec.templateRef': 6, 'spec.ttl': 8, 'spec.sandboxTemplateRef': 5 });
    assert.match(
      formatIssues(r.errors, { positions: true, source: 'claim.yaml' }),
      /^claim\.yaml:6:3: spec\.templateRef: unknown field/m,
    );
  });
});

describe('seed 004: quickstart template and warm pool', () => {
  it('validates the template (runtime class filled in) with its limits and image pull policy', () => {
    const [template] = objects('seed004-template.yaml');
    assert.ok(template?.kind === 'SandboxTemplate');
    assert.equal(template.metadata.namespace, 'agent-sandbox-demo');
    const [container] = template.spec.podTemplate.spec.containers;
    assert.equal(container?.imagePullPolicy, 'Never');
    assert.deepEqual(container?.ports, [{ containerPort: 8888, protocol: 'TCP' }]);
    assert.deepEqual(container?.resources?.limits, { cpu: '500m', memory: '1Gi', 'ephemeral-storage': '1Gi' });
  });

  it('validates the warm pool', () => {
    const [pool] = objects('seed004-warmpool.yaml');
    assert.ok(pool?.kind === 'SandboxWarmPool');
    assert.equal(pool.spec.replicas, 2);
    assert.equal(pool.spec.updateStrategy, undefined, 'updateStrategy is defaulted only when given');
  });

  it('validates all seed documents applied together as one stream', () => {
    const text = ['seed004-template.yaml', 'seed004-warmpool.yaml', 'seed003-sandbox-vct.yaml']
      .map(fixture)
      .join('\n---\n');
    const results = parseManifests(text);
    assert.deepEqual(
      results.map((r) => [r.doc, r.ok]),
      [
        [0, true],
        [1, true],
        [2, true],
      ],
    );
  });
});
