import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseQuantity, bytes, cpuMillis, nameHash, convert, validateObject } from '../src/index.ts';

describe('quantities', () => {
  const table: Array<[string, number]> = [['512Mi', 536870912], ['1Gi', 1073741824], ['1G', 1e9], ['250m', 0.25], ['2', 2], ['1.5', 1.5], ['1e3', 1000], ['100M', 1e8], ['64Ki', 65536]];
  for (const [q, v] of table) it(`parses ${q}`, () => assert.equal(parseQuantity(q), v));
  it('gives bytes and millicores', () => { assert.equal(bytes('1Gi'), 1073741824); assert.equal(cpuMillis('250m'), 250); assert.equal(cpuMillis('2'), 2000); });
  for (const bad of ['12XB', 'lots', '', '1.2.3', 'Mi']) it(`refuses "${bad}"`, () => assert.throws(() => parseQuantity(bad), /not a Kubernetes quantity/));
});

describe('nameHash', () => {
  it('is FNV-1a 32-bit as 8 hex digits', () => {
    assert.equal(nameHash(''), '811c9dc5');
    assert.equal(nameHash('a'), 'e40c292c');
    assert.equal(nameHash('foobar'), 'bf9cf968');
  });
});

describe('conversion between v1alpha1 and v1beta1', () => {
  const sandbox = (replicas: number) => (validateObject({ apiVersion: 'agents.x-k8s.io/v1alpha1', kind: 'Sandbox', metadata: { name: 's' }, spec: { replicas, podTemplate: { spec: { containers: [{ name: 'c', image: 'x' }] } } } }) as any).object;
  it('maps replicas to operatingMode and back', () => {
    for (const [replicas, mode] of [[0, 'Suspended'], [1, 'Running']] as const) {
      const beta = convert(sandbox(replicas), 'v1beta1') as any;
      assert.equal(beta.apiVersion, 'agents.x-k8s.io/v1beta1');
      assert.equal(beta.spec.operatingMode, mode);
      assert.equal(beta.spec.replicas, undefined);
      assert.ok(validateObject(beta).ok);
      assert.deepEqual(convert(beta, 'v1alpha1'), sandbox(replicas));
    }
  });
  it('maps a claim\'s template and warm pool to warmPoolRef, losslessly', () => {
    for (const warmpool of ['default', 'none', 'my-pool']) {
      const alpha = (validateObject({ apiVersion: 'extensions.agents.x-k8s.io/v1alpha1', kind: 'SandboxClaim', metadata: { name: 'c' }, spec: { sandboxTemplateRef: { name: 'tpl' }, warmpool } }) as any).object;
      const beta = convert(alpha, 'v1beta1') as any;
      assert.equal(beta.spec.warmPoolRef.name, warmpool === 'my-pool' ? 'my-pool' : 'shadow-pool-tpl');
      assert.ok(validateObject(beta).ok, JSON.stringify(validateObject(beta)));
      assert.deepEqual(convert(beta, 'v1alpha1'), alpha);
    }
  });
});
