import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  TEARDOWN_CGROUP,
  TEARDOWN_CPU_SHARES,
  atTeardownWeight,
  cpuCgroupOf,
  lowerToTeardownWeight,
  outsideEngineCgroup,
  raiseEngineCpuWeight,
  sharesToWeight,
} from '../src/engine-cgroup.ts';

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

// The cgroup files as plain files in a directory laid out as cgroup v1's cpu hierarchy: what the
// engine writes, not whether the kernel obeys (engine-priority.test.ts runs the real one).
describe('the engine cgroup in a v1 tree', () => {
  it('makes the engine, helper and teardown cgroups, and tears sandboxes down at a low weight', () => {
    const root = mkdtempSync(join(tmpdir(), 'asb-cgroup-'));
    try {
      const cpu = join(root, 'cpu');
      mkdirSync(join(cpu, 'asb-sb1'), { recursive: true });
      writeFileSync(join(cpu, 'cpu.shares'), '1024');
      writeFileSync(join(cpu, 'asb-sb1', 'cpu.shares'), '256');
      // Before the engine moves, commands run where they are.
      assert.deepEqual(atTeardownWeight('runsc', ['delete', 'x']), ['runsc', ['delete', 'x']]);
      assert.equal(lowerToTeardownWeight('asb-sb1'), false);

      const moved = raiseEngineCpuWeight(262_144, root, '1:cpu:/\n');
      assert.ok(moved.moved);
      assert.equal(readFileSync(join(cpu, TEARDOWN_CGROUP, 'cpu.shares'), 'utf8'), String(TEARDOWN_CPU_SHARES));
      const [cmd, args] = atTeardownWeight('runsc', ['delete', 'x']);
      assert.equal(cmd, 'sh');
      assert.deepEqual(args.slice(2), [join(cpu, TEARDOWN_CGROUP, 'cgroup.procs'), 'runsc', 'delete', 'x']);
      assert.equal(outsideEngineCgroup('du', [])[1][2], join(cpu, 'asb-engine-children', 'cgroup.procs'));

      assert.equal(lowerToTeardownWeight('asb-sb1'), true);
      assert.equal(readFileSync(join(cpu, 'asb-sb1', 'cpu.shares'), 'utf8'), String(TEARDOWN_CPU_SHARES));
      // A sandbox without a cgroup, or a name that is not one, changes nothing.
      assert.equal(lowerToTeardownWeight('asb-gone'), false);
      assert.equal(lowerToTeardownWeight('../asb-sb1'), false);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
