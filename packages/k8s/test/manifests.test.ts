// deploy/: every kustomization builds with kubectl kustomize, and says what it should: the
// runtime class per overlay, GKE's admission requirements, least-privilege RBAC. The sandbox
// manifests are also valid objects for our own API (they apply to the local engine unchanged).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import { validateObject } from '@asb/api';

const root = new URL('../../../', import.meta.url).pathname;
const hasKubectl = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' }).status === 0;
const kustomize = (dir: string) =>
  parseAllDocuments(execFileSync('kubectl', ['kustomize', `${root}deploy/${dir}`], { encoding: 'utf8' })).map((d) =>
    d.toJSON(),
  ) as Array<Record<string, any>>;
const templateOf = (docs: Array<Record<string, any>>) => docs.find((d) => d.kind === 'SandboxTemplate')!;

describe('deploy/ manifests', { skip: hasKubectl ? undefined : 'kubectl is not installed' }, () => {
  it('base: the Go runtime template without a runtime class, with spec.service, and a warm pool; valid for our API', () => {
    const docs = kustomize('sandbox/base');
    assert.deepEqual(docs.map((d) => d.kind).sort(), ['SandboxTemplate', 'SandboxWarmPool']);
    const t = templateOf(docs);
    assert.equal(t.spec.podTemplate.spec.runtimeClassName, undefined);
    assert.equal(t.spec.service, true);
    for (const d of docs) assert.ok(validateObject(d).ok, JSON.stringify(validateObject(d)));
  });

  it('overlays set the runtime class: gvisor and kata', () => {
    assert.equal(templateOf(kustomize('sandbox/overlays/gvisor')).spec.podTemplate.spec.runtimeClassName, 'gvisor');
    assert.equal(templateOf(kustomize('sandbox/overlays/kata')).spec.podTemplate.spec.runtimeClassName, 'kata-qemu');
  });

  it('gke-gvisor: non-root, no privilege escalation, no capabilities, RuntimeDefault seccomp, gVisor node pool, no spec.service', () => {
    const docs = kustomize('sandbox/overlays/gke-gvisor');
    const t = templateOf(docs);
    const pod = t.spec.podTemplate.spec;
    assert.equal(pod.runtimeClassName, 'gvisor');
    assert.equal(pod.securityContext.runAsNonRoot, true);
    assert.equal(pod.securityContext.seccompProfile.type, 'RuntimeDefault');
    const c = pod.containers[0].securityContext;
    assert.equal(c.allowPrivilegeEscalation, false);
    assert.deepEqual(c.capabilities.drop, ['ALL']);
    assert.deepEqual(pod.nodeSelector, { 'sandbox.gke.io/runtime': 'gvisor' });
    assert.deepEqual(pod.tolerations, [
      { key: 'sandbox.gke.io/runtime', operator: 'Equal', value: 'gvisor', effect: 'NoSchedule' },
    ]);
    assert.equal('service' in t.spec, false, "seed 000: GKE's bundled CRD rejects spec.service");
    for (const d of docs) assert.ok(validateObject(d).ok);
  });

  it("router: upstream's names, the token from a Secret, hardened pod", () => {
    const docs = kustomize('router');
    const dep = docs.find((d) => d.kind === 'Deployment')!;
    assert.equal(dep.metadata.name, 'sandbox-router-deployment');
    assert.equal(dep.spec.template.metadata.labels.app, 'sandbox-router');
    assert.equal(docs.find((d) => d.kind === 'Service')!.metadata.name, 'sandbox-router-svc');
    const c = dep.spec.template.spec.containers[0];
    assert.equal(
      c.env.find((e: any) => e.name === 'ROUTER_AUTH_TOKEN').valueFrom.secretKeyRef.name,
      'sandbox-router-token',
    );
    assert.equal(c.securityContext.allowPrivilegeEscalation, false);
  });

  it(
    'install: CRDs, least-privilege RBAC, the controller and its webhook Service',
    { skip: existsSync(`${root}deploy/crds/kustomization.yaml`) ? undefined : 'deploy/crds not generated yet' },
    () => {
      const docs = kustomize('install');
      const kinds = docs.map((d) => d.kind);
      assert.equal(kinds.filter((k) => k === 'CustomResourceDefinition').length, 4);
      for (const d of docs.filter((x) => x.kind === 'ClusterRole' || x.kind === 'Role')) {
        for (const rule of d.rules) {
          assert.ok(
            !rule.verbs.includes('*') && !rule.resources.includes('*') && !(rule.apiGroups ?? []).includes('*'),
            `no wildcards: ${JSON.stringify(rule)}`,
          );
          if (rule.apiGroups.includes('apiextensions.k8s.io'))
            assert.equal(rule.resourceNames.length, 4, 'only our own CRDs');
        }
      }
      const lease = docs.find((d) => d.kind === 'Role')!;
      assert.equal(lease.metadata.namespace, 'agent-sandbox-system', 'leases only in its own namespace');
      const dep = docs.find((d) => d.kind === 'Deployment')!;
      assert.equal(dep.spec.template.spec.securityContext.runAsNonRoot, true);
      assert.ok(dep.spec.template.spec.containers[0].args.includes('--leader-elect=true'));
      assert.equal(docs.find((d) => d.kind === 'Service')!.metadata.name, 'agent-sandbox-webhook-service');
    },
  );
});
