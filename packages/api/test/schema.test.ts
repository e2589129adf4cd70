// The schemas are the one source: a CRD generator can derive JSON Schema from them, with the
// defaults and enums validation applies.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import {
  KINDS,
  KIND_NAMES,
  SCHEMAS,
  VERSIONS,
  SandboxV1alpha1,
  SandboxV1beta1,
  SandboxClaimV1alpha1,
} from '../src/index.ts';

type JsonSchema = {
  properties?: Record<string, JsonSchema>;
  default?: unknown;
  enum?: unknown[];
  minimum?: number;
  maximum?: number;
  required?: string[];
  additionalProperties?: unknown;
};
const jsonSchema = (s: z.ZodType) => z.toJSONSchema(s, { io: 'input', unrepresentable: 'throw' }) as JsonSchema;
const at = (s: JsonSchema, ...path: string[]) =>
  path.reduce<JsonSchema | undefined>((node, key) => node?.properties?.[key], s);

describe('JSON Schema derivation', () => {
  for (const kind of KIND_NAMES) {
    for (const version of VERSIONS) {
      it(`derives ${kind} ${version} without unrepresentable parts`, () => {
        const schema = jsonSchema(KINDS[kind].served[version]);
        assert.deepEqual(schema.required?.sort(), ['apiVersion', 'kind', 'metadata', 'spec']);
      });
    }
    it(`derives the ${kind} hub schema`, () => assert.ok(jsonSchema(KINDS[kind].hub).properties?.spec));
  }

  it('carries defaults, bounds and enums into the JSON Schema', () => {
    const alpha = jsonSchema(SandboxV1alpha1);
    assert.deepEqual(at(alpha, 'spec', 'replicas'), { type: 'integer', default: 1, minimum: 0, maximum: 1 });
    assert.deepEqual(at(alpha, 'spec', 'shutdownPolicy'), {
      type: 'string',
      enum: ['Delete', 'Retain'],
      default: 'Retain',
    });
    assert.deepEqual(at(jsonSchema(SandboxV1beta1), 'spec', 'operatingMode'), {
      type: 'string',
      enum: ['Running', 'Suspended'],
      default: 'Running',
    });
    assert.equal(at(jsonSchema(SandboxClaimV1alpha1), 'spec', 'warmpool')?.default, 'default');
  });

  it("keeps spec strict and the PodSpec open, as upstream's CRDs prune and pass through", () => {
    const alpha = jsonSchema(SandboxV1alpha1);
    assert.equal(at(alpha, 'spec')?.additionalProperties, false);
    assert.notEqual(at(alpha, 'spec', 'podTemplate', 'spec')?.additionalProperties, false);
  });
});

describe('the kind registry', () => {
  it('serves each kind in both versions under its group', () => {
    assert.deepEqual(Object.keys(SCHEMAS).sort(), [
      'agents.x-k8s.io/v1alpha1',
      'agents.x-k8s.io/v1beta1',
      'extensions.agents.x-k8s.io/v1alpha1',
      'extensions.agents.x-k8s.io/v1beta1',
    ]);
    assert.deepEqual(Object.keys(SCHEMAS['extensions.agents.x-k8s.io/v1beta1']!).sort(), [
      'SandboxClaim',
      'SandboxTemplate',
      'SandboxWarmPool',
    ]);
  });

  it("uses upstream's plurals and short names", () => {
    assert.deepEqual(
      KIND_NAMES.map((k) => [KINDS[k].plural, ...KINDS[k].shortNames]),
      [
        ['sandboxes', 'sandbox'],
        ['sandboxtemplates', 'sandboxtemplate'],
        ['sandboxclaims', 'sandboxclaim'],
        ['sandboxwarmpools', 'swp'],
      ],
    );
  });
});
