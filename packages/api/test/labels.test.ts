import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  nameHash,
  isRestrictedMetadataKey,
  LABEL_SANDBOX_NAME_HASH,
  LABEL_WARM_POOL_SANDBOX,
  LABEL_SANDBOX_TEMPLATE_REF_HASH,
  LABEL_SANDBOX_POD_TEMPLATE_HASH,
  ANNOTATION_POD_NAME,
  ANNOTATION_SANDBOX_TEMPLATE_REF,
  LABEL_CLAIM_UID,
  ANNOTATION_SANDBOX_NAME,
  ANNOTATION_PROPAGATED_LABELS,
  ANNOTATION_PROPAGATED_ANNOTATIONS,
  ANNOTATION_TRACE_CONTEXT,
  LABEL_LAUNCH_TYPE,
  isLabelValue,
} from '../src/index.ts';

describe('nameHash', () => {
  // FNV-1a 32-bit golden values (Go's hash/fnv tests), as 8 lowercase hex digits.
  const vectors: Array<[string, string]> = [
    ['', '811c9dc5'],
    ['a', 'e40c292c'],
    ['ab', '4d2505ca'],
    ['abc', '1a47e90b'],
    ['foobar', 'bf9cf968'],
  ];
  for (const [input, hash] of vectors)
    it(`hashes ${JSON.stringify(input)} to ${hash}`, () => assert.equal(nameHash(input), hash));

  it('hashes UTF-8 bytes, not UTF-16 code units', () => {
    // "é" is c3 a9 in UTF-8: two rounds of FNV-1a.
    let h = 0x811c9dc5;
    for (const b of [0xc3, 0xa9]) h = Math.imul(h ^ b, 0x01000193) >>> 0;
    assert.equal(nameHash('é'), h.toString(16).padStart(8, '0'));
  });

  it('always gives 8 hex digits, a valid label value', () => {
    for (const name of ['python-sandbox-warmpool', 'python-runtime-template', 'x', 'a'.repeat(253)]) {
      assert.match(nameHash(name), /^[0-9a-f]{8}$/);
      assert.ok(isLabelValue(nameHash(name)));
    }
  });
});

describe('label and annotation keys', () => {
  it("match upstream's strings", () => {
    assert.deepEqual(
      [
        LABEL_SANDBOX_NAME_HASH,
        LABEL_WARM_POOL_SANDBOX,
        LABEL_SANDBOX_TEMPLATE_REF_HASH,
        LABEL_SANDBOX_POD_TEMPLATE_HASH,
        ANNOTATION_POD_NAME,
        ANNOTATION_SANDBOX_TEMPLATE_REF,
        LABEL_CLAIM_UID,
        ANNOTATION_SANDBOX_NAME,
        ANNOTATION_PROPAGATED_LABELS,
        ANNOTATION_PROPAGATED_ANNOTATIONS,
        ANNOTATION_TRACE_CONTEXT,
        LABEL_LAUNCH_TYPE,
      ],
      [
        'agents.x-k8s.io/sandbox-name-hash',
        'agents.x-k8s.io/warm-pool-sandbox',
        'agents.x-k8s.io/sandbox-template-ref-hash',
        'agents.x-k8s.io/sandbox-pod-template-hash',
        'agents.x-k8s.io/pod-name',
        'agents.x-k8s.io/sandbox-template-ref',
        'agents.x-k8s.io/claim-uid',
        'agents.x-k8s.io/sandbox-name',
        'agents.x-k8s.io/propagated-labels',
        'agents.x-k8s.io/propagated-annotations',
        'opentelemetry.io/trace-context',
        'agents.x-k8s.io/launch-type',
      ],
    );
  });

  it('restrict claim metadata in kubernetes.io, k8s.io and agents.x-k8s.io, except safe-to-evict', () => {
    const table: Array<[string, boolean]> = [
      ['agents.x-k8s.io/claim-uid', true],
      ['node.kubernetes.io/x', true],
      ['k8s.io/x', true],
      ['KUBERNETES.IO/x', true],
      ['cluster-autoscaler.kubernetes.io/safe-to-evict', false],
      ['example.com/team', false],
      ['app', false],
      ['notkubernetes.io/x', false],
    ];
    for (const [key, restricted] of table) assert.equal(isRestrictedMetadataKey(key), restricted, key);
  });
});
