import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseQuantity, bytes, cpuMillis, isQuantity, QuantityError } from '../src/index.ts';

describe('parseQuantity', () => {
  const table: Array<[string | number, number]> = [
    ['512Mi', 536870912],
    ['1Gi', 1073741824],
    ['64Ki', 65536],
    ['1Ti', 2 ** 40],
    ['1Ei', 2 ** 60],
    ['1G', 1e9],
    ['100M', 1e8],
    ['1k', 1000],
    ['1E', 1e18],
    ['250m', 0.25],
    ['100u', 0.0001],
    ['5n', 5e-9],
    ['2', 2],
    ['1.5', 1.5],
    ['.5', 0.5],
    ['5.', 5],
    ['+2', 2],
    ['-1', -1],
    ['1e3', 1000],
    ['1E3', 1000],
    ['2e-3', 0.002],
    ['1.5e+2', 150],
    [2, 2],
    [0.5, 0.5],
  ];
  for (const [q, v] of table) it(`reads ${JSON.stringify(q)} as ${v}`, () => assert.equal(parseQuantity(q), v));

  const garbage = [
    '12XB',
    'lots',
    '',
    ' 1Gi',
    '1Gi ',
    '1.2.3',
    'Mi',
    '1K',
    '1e',
    '1gi',
    '1 Gi',
    '0x10',
    '1e999',
    Number.NaN,
    Number.POSITIVE_INFINITY,
  ];
  for (const bad of garbage) {
    it(`refuses ${JSON.stringify(String(bad))}`, () => {
      assert.equal(isQuantity(bad), false);
      assert.throws(
        () => parseQuantity(bad),
        (err: unknown) => err instanceof QuantityError && /is not a Kubernetes quantity/.test(err.message),
      );
    });
  }
});

describe('bytes and cpuMillis', () => {
  // Kubernetes rounds up (Value, MilliValue); exact decimal arithmetic keeps 0.1 at 100m, not 101m.
  const table: Array<[string | number, number, number]> = [
    ['1Gi', 1073741824, 1073741824000],
    ['512Mi', 536870912, 536870912000],
    ['250m', 1, 250],
    ['2', 2, 2000],
    ['0.1', 1, 100],
    [0.1, 1, 100],
    ['100m', 1, 100],
    ['1.5k', 1500, 1500000],
    ['1e3', 1000, 1000000],
    ['0.3', 1, 300],
    ['1m', 1, 1],
    ['0.0001', 1, 1],
    ['1.1', 2, 1100],
  ];
  for (const [q, b, m] of table) {
    it(`${JSON.stringify(q)} is ${b} bytes and ${m} millicores`, () => {
      assert.equal(bytes(q), b);
      assert.equal(cpuMillis(q), m);
    });
  }
});
