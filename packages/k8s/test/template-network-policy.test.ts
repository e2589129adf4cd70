// The NetworkPolicy a template owns on a cluster (pure): upstream's default, a template's own
// rules in its place, none when Unmanaged, and deny-all egress where our allow-list of names
// cannot be enforced. That upstream's controllers make the same objects is proven side by side
// against them (test/k8s/upstream.test.ts).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { nameHash, type SandboxTemplate } from '@asb/api';
import {
  comparable,
  defaultNetworkPolicySpec,
  desiredNetworkPolicySpec,
  namesNotEnforced,
} from '../src/controller/template-network-policy.ts';

function template(spec: Partial<SandboxTemplate['spec']> = {}, annotations?: Record<string, string>): SandboxTemplate {
  return {
    apiVersion: 'extensions.agents.x-k8s.io/v1beta1',
    kind: 'SandboxTemplate',
    metadata: { name: 't', namespace: 'default', annotations },
    spec: { podTemplate: { spec: { containers: [] } }, networkPolicyManagement: 'Managed', ...spec },
  } as unknown as SandboxTemplate;
}

describe("a template's NetworkPolicy", () => {
  it("is upstream's default without rules, selecting the template's pods", () => {
    const spec = desiredNetworkPolicySpec(template())!;
    assert.deepEqual(spec, defaultNetworkPolicySpec('t'));
    assert.deepEqual(spec.podSelector?.matchLabels, { 'agents.x-k8s.io/sandbox-template-ref-hash': nameHash('t') });
    assert.deepEqual(spec.egress![0]!.to![0]!.ipBlock!.except, [
      '10.0.0.0/8',
      '172.16.0.0/12',
      '192.168.0.0/16',
      '169.254.0.0/16',
    ]);
  });

  it("takes the template's own rules in place of the default (an empty list denies), and none when Unmanaged", () => {
    const own = desiredNetworkPolicySpec(
      template({
        networkPolicy: {
          ingress: [{ from: [{ podSelector: { matchLabels: { app: 'client' } } }] }],
          egress: [{ to: [{ ipBlock: { cidr: '203.0.113.0/24' } }], ports: [{ port: 443 }] }],
        },
      }),
    )!;
    assert.match(comparable(own), /"ingress":\[\{"from":\[\{"podSelector"/);
    assert.deepEqual(own.egress, [{ to: [{ ipBlock: { cidr: '203.0.113.0/24' } }], ports: [{ port: 443 }] }]);
    assert.deepEqual(desiredNetworkPolicySpec(template({ networkPolicy: { egress: [] } }))!.egress, []);
    assert.equal(desiredNetworkPolicySpec(template({ networkPolicyManagement: 'Unmanaged' })), undefined);
  });

  it('denies all egress where an allow-list of names or credentials cannot be enforced, and says why', () => {
    const t = template({}, { 'sandbox.asb.dev/allowed-domains': 'pypi.org' });
    const spec = desiredNetworkPolicySpec(t)!;
    assert.deepEqual(spec.egress, []);
    assert.deepEqual(spec.ingress, defaultNetworkPolicySpec('t').ingress, 'ingress stays');
    assert.match(namesNotEnforced(t)!, /allowed-domains is enforced by the local engine's egress proxy/);
    assert.equal(namesNotEnforced(template()), undefined);
  });

  it('compares as the API shows it: `_from` is `from`, key order and undefined aside', () => {
    assert.equal(
      comparable({ podSelector: {}, ingress: [{ _from: [], ports: undefined }] }),
      comparable({ ingress: [{ from: [] }], podSelector: {} } as never),
    );
  });
});
