// The bubblewrap driver leaves nothing running: not after a sandbox is deleted, and not after the
// engine that started it is killed (bubblewrap sandboxes cannot be re-adopted, so they must not
// outlive it). bwrap runs the sandbox side in a session of its own; before --die-with-parent,
// killing bwrap's process group left the sandbox's init and the agent under it running.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Sandbox } from '@asb/sdk';
import { unmountAll } from '@asb/engine';
import { startTestEngine } from './harness.ts';

const ASB = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '../../bin/asb');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The host processes of a bubblewrap sandbox: its bwrap processes and all they started. */
function processesOf(sandbox: string): number[] {
  const rows = execFileSync('ps', ['-eo', 'pid=,ppid=,args='], { encoding: 'utf8' })
    .split('\n')
    .map((l) => l.trim().split(/\s+/, 3))
    .filter((r) => r.length === 3);
  const tree = new Set(
    rows
      .filter(([, , args]) => args!.startsWith('/usr/bin/bwrap') || args!.startsWith('bwrap'))
      .filter(([pid]) => {
        try {
          return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').includes(` --hostname ${sandbox} `);
        } catch {
          return false;
        }
      })
      .map(([pid]) => Number(pid)),
  );
  for (let grew = true; grew;) {
    grew = false;
    for (const [pid, ppid] of rows)
      if (tree.has(Number(ppid)) && !tree.has(Number(pid))) {
        tree.add(Number(pid));
        grew = true;
      }
  }
  return [...tree];
}
const alive = (pids: number[]) =>
  pids.filter((pid) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  });
async function until(what: string, fn: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

describe('bubblewrap sandboxes leave nothing running', () => {
  it('after the sandbox is deleted', async () => {
    const t = await startTestEngine({ driver: 'bubblewrap' });
    try {
      const sb = await Sandbox.create({ ...t.conn });
      await sb.run('sleep 300 >/dev/null 2>&1 &');
      const pids = processesOf(sb.info.name);
      assert.ok(pids.length >= 3, `bwrap, the sandbox's init and its agent at least (${pids.length})`);
      await sb.kill();
      await until("the sandbox's processes to end", () => alive(pids).length === 0).catch(() =>
        assert.fail(`still running after delete: ${alive(pids).join(', ')}`),
      );
    } finally {
      await t.stop();
    }
  });

  describe('after the engine is killed (kill -9)', () => {
    const home = mkdtempSync(join(tmpdir(), 'asb-bwrap-crash-'));
    let engine: ChildProcess | undefined;
    after(async () => {
      if (engine?.exitCode === null) engine.kill('SIGKILL');
      await unmountAll(home);
      rmSync(home, { recursive: true, force: true });
    });

    it('takes its sandboxes with it', async () => {
      engine = spawn(process.execPath, [ASB, 'engine', 'run'], {
        env: { ...process.env, ASB_HOME: home, ASB_ENGINE_PORT: '0', ASB_LOG_LEVEL: 'warn', ASB_DRIVER: 'bubblewrap' },
        stdio: ['ignore', 'ignore', 'inherit'],
      });
      await until(
        'the engine to start',
        () =>
          existsSync(join(home, 'engine.json')) &&
          JSON.parse(readFileSync(join(home, 'engine.json'), 'utf8')).pid === engine!.pid,
        60_000,
      );
      const { url } = JSON.parse(readFileSync(join(home, 'engine.json'), 'utf8')) as { url: string };
      const sb = await Sandbox.create({ url, token: readFileSync(join(home, 'token'), 'utf8').trim() });
      const pids = processesOf(sb.info.name);
      assert.ok(pids.length >= 3, `bwrap, the sandbox's init and its agent at least (${pids.length})`);
      engine.kill('SIGKILL');
      await until("the sandbox's processes to end with the engine", () => alive(pids).length === 0).catch(() =>
        assert.fail(`still running after the engine died: ${alive(pids).join(', ')}`),
      );
    });
  });
});
