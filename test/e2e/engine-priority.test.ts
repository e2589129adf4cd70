// The engine outranks its sandboxes for CPU (engine-cgroup.ts), and nothing it starts inherits
// that rank: with gVisor and with bubblewrap (whose sandboxes have no cgroup of their own), on a
// real engine process and real sandboxes. The effect on the event loop is measured by
// hostile-sandbox.test.ts.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { Sandbox } from '@asb/sdk';
import {
  ENGINE_CGROUP,
  ENGINE_CPU_SHARES_DEFAULT,
  TEARDOWN_CGROUP,
  TEARDOWN_CPU_SHARES,
  cpuCgroupOf,
  sharesToWeight,
} from '@asb/engine';
import { startEngineProcess } from './harness.ts';

function cpuCgroup(pid: number): string | undefined {
  try {
    return cpuCgroupOf(readFileSync(`/proc/${pid}/cgroup`, 'utf8'))?.path;
  } catch {
    return undefined;
  }
}

/** Every process whose command line names `needle` (the engine's home appears in runsc's and
 *  bwrap's arguments), with its command. */
function processesNaming(needle: string): { pid: number; cmd: string }[] {
  const out: { pid: number; cmd: string }[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8').replaceAll('\0', ' ');
      if (cmd.includes(needle)) out.push({ pid: Number(d), cmd });
    } catch {
      /* gone */
    }
  }
  return out;
}

for (const driver of ['gvisor', 'bubblewrap'] as const) {
  describe(`the engine's CPU weight (${driver})`, () => {
    it('runs the engine in its own weighted cgroup and its sandboxes outside it', { timeout: 180_000 }, async () => {
      const e = await startEngineProcess({ ASB_DRIVER: driver });
      try {
        const own = cpuCgroup(e.pid)!;
        assert.ok(own.endsWith(`/${ENGINE_CGROUP}`), `the engine's cpu cgroup is ${own}`);
        const v1 = `/sys/fs/cgroup/cpu${own}/cpu.shares`;
        // Teardown (runsc kill and delete) has a sibling cgroup at a low weight.
        const teardown = own.replace(new RegExp(`/${ENGINE_CGROUP}$`), `/${TEARDOWN_CGROUP}`);
        if (existsSync(v1)) {
          assert.equal(Number(readFileSync(v1, 'utf8')), ENGINE_CPU_SHARES_DEFAULT);
          const t = `/sys/fs/cgroup/cpu${teardown}/cpu.shares`;
          assert.equal(Number(readFileSync(t, 'utf8')), TEARDOWN_CPU_SHARES);
        } else {
          assert.equal(
            Number(readFileSync(`/sys/fs/cgroup${own}/cpu.weight`, 'utf8')),
            sharesToWeight(ENGINE_CPU_SHARES_DEFAULT),
          );
          assert.equal(
            Number(readFileSync(`/sys/fs/cgroup${teardown}/cpu.weight`, 'utf8')),
            sharesToWeight(TEARDOWN_CPU_SHARES),
          );
        }

        const sb = await Sandbox.create({ url: e.url, token: e.token });
        assert.equal((await sb.run('echo hi')).stdout, 'hi\n');
        const sandboxProcs = processesNaming(e.home).filter((p) => p.pid !== e.pid);
        assert.ok(sandboxProcs.length > 0, 'the sandbox has processes on the host');
        for (const p of sandboxProcs) {
          assert.notEqual(cpuCgroup(p.pid), own, `${p.cmd.slice(0, 120)} runs at the engine's weight`);
        }
        await sb.kill();
      } finally {
        await e.stop();
      }
    });
  });
}
