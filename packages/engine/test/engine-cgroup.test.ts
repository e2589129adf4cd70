import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cpuCgroupOf, sharesToWeight } from '../src/engine-cgroup.ts';

describe('the engine cgroup (pure parts)', () => {
  it('finds the cpu controller of cgroup v1, even combined with cpuacct', () => {
    assert.deepEqual(cpuCgroupOf('4:memory:/x\n2:cpuacct:/\n1:cpu:/\n0::/\n'), { version: 1, path: '/' });
    assert.deepEqual(cpuCgroupOf('3:cpu,cpuacct:/system.slice/asb.service\n0::/'), {
      version: 1,
      path: '/system.slice/asb.service',
    });
  });

  it('falls back to the unified hierarchy of cgroup v2, whose path may hold colons', () => {
    assert.deepEqual(cpuCgroupOf('0::/user.slice/a:b\n'), { version: 2, path: '/user.slice/a:b' });
    assert.equal(cpuCgroupOf(''), undefined);
  });

  it('maps v1 shares to v2 weights within 1..10000', () => {
    assert.equal(sharesToWeight(1024), 100);
    assert.equal(sharesToWeight(2), 1);
    assert.equal(sharesToWeight(262_144), 10_000);
  });
});
