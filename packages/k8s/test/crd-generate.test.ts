// The CRDs come from our types: deploy/crds/ is what the generator makes now (no drift), both
// versions are served with v1beta1 stored, and every schema node is structural.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { generateCrds, structural } from '../src/crd/generate.ts';

const dir = new URL('../../../deploy/crds/', import.meta.url).pathname;

/** Paths of nodes Kubernetes would call non-structural (no type, and not an open or int-or-string node). */
function untyped(node: any, path = ''): string[] {
  if (!node || typeof node !== 'object') return [];
  const out: string[] = [];
  if (!node.type && !node['x-kubernetes-preserve-unknown-fields'] && !node['x-kubernetes-int-or-string'])
    out.push(path || '(root)');
  if ('$ref' in node || '$defs' in node) out.push(`${path}: $ref`);
  for (const [k, v] of Object.entries(node.properties ?? {})) out.push(...untyped(v, `${path}.${k}`));
  if (node.items) out.push(...untyped(node.items, `${path}[]`));
  if (node.additionalProperties && typeof node.additionalProperties === 'object')
    out.push(...untyped(node.additionalProperties, `${path}{}`));
  return out;
}

describe('generated CRDs', () => {
  const crds = generateCrds();

  it('deploy/crds is up to date with the types (npm run gen:crds)', () => {
    for (const crd of crds)
      assert.deepEqual(
        parse(readFileSync(`${dir}${crd.spec.group}_${crd.spec.names.plural}.yaml`, 'utf8')),
        crd,
        crd.metadata.name,
      );
  });

  it("serves v1alpha1 and v1beta1, stores v1beta1, converts by webhook, with upstream's names", () => {
    assert.deepEqual(crds.map((c) => c.metadata.name).sort(), [
      'sandboxclaims.extensions.agents.x-k8s.io',
      'sandboxes.agents.x-k8s.io',
      'sandboxtemplates.extensions.agents.x-k8s.io',
      'sandboxwarmpools.extensions.agents.x-k8s.io',
    ]);
    for (const crd of crds) {
      assert.deepEqual(
        crd.spec.versions.map((v: any) => [v.name, v.served, v.storage]),
        [
          ['v1alpha1', true, false],
          ['v1beta1', true, true],
        ],
      );
      assert.equal(crd.spec.conversion.strategy, 'Webhook');
    }
    assert.deepEqual(crds.find((c) => c.spec.names.kind === 'SandboxWarmPool')!.spec.names.shortNames, ['swp']);
  });

  it('every schema node is structural', () => {
    for (const crd of crds)
      for (const v of crd.spec.versions)
        assert.deepEqual(untyped(v.schema.openAPIV3Schema), [], `${crd.metadata.name} ${v.name}`);
  });

  it("maps zod's JSON Schema forms onto Kubernetes' ones", () => {
    assert.deepEqual(structural({ anyOf: [{ type: 'string' }, { type: 'null' }] }), { type: 'string' });
    assert.deepEqual(structural({ anyOf: [{ type: 'string' }, { type: 'number' }] }), {
      'x-kubernetes-int-or-string': true,
      anyOf: [{ type: 'integer' }, { type: 'string' }],
    });
    assert.deepEqual(structural({ type: 'object', properties: { a: { type: 'string' } }, additionalProperties: {} }), {
      type: 'object',
      properties: { a: { type: 'string' } },
      'x-kubernetes-preserve-unknown-fields': true,
    });
    assert.equal(structural({ type: 'string', pattern: '^(?=a)b$' }).pattern, undefined, 'lookahead is not RE2');
  });
});
