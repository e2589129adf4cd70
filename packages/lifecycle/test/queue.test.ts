import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { WorkQueue } from '../src/index.ts';

const tick = (ms = 5) => new Promise((r) => setTimeout(r, ms));

describe('work queue', () => {
  it('never runs one key twice at once, and runs it again when added meanwhile', async () => {
    let running = 0;
    let maxRunning = 0;
    let runs = 0;
    const q = new WorkQueue(
      async () => {
        running++;
        maxRunning = Math.max(maxRunning, running);
        runs++;
        await tick(10);
        running--;
      },
      { concurrency: 4, baseBackoffMs: 1, maxBackoffMs: 10 },
    );
    q.add('a');
    await tick(1);
    q.add('a');
    q.add('a');
    await q.idle();
    assert.equal(maxRunning, 1);
    assert.equal(runs, 2, 'the adds during the run collapse into one more run');
  });

  it('addNow runs a key at once and drops its pending delayed add', async () => {
    const runs: string[] = [];
    const q = new WorkQueue(
      async (key) => {
        runs.push(key);
      },
      { concurrency: 1, baseBackoffMs: 1, maxBackoffMs: 10 },
    );
    q.addAfter('a', 30);
    q.addNow('a');
    await q.idle();
    assert.deepEqual(runs, ['a']);
    await tick(60);
    assert.deepEqual(runs, ['a'], 'the delayed add was dropped');
  });

  it('runs distinct keys in parallel up to its concurrency', async () => {
    let running = 0;
    let maxRunning = 0;
    const q = new WorkQueue(
      async () => {
        running++;
        maxRunning = Math.max(maxRunning, running);
        await tick(10);
        running--;
      },
      { concurrency: 3, baseBackoffMs: 1, maxBackoffMs: 10 },
    );
    for (const k of ['a', 'b', 'c', 'd', 'e']) q.add(k);
    await q.idle();
    assert.equal(maxRunning, 3);
  });

  it('retries a failing key with growing backoff, and honours requeueAfterMs', async () => {
    const times: number[] = [];
    const q = new WorkQueue(
      async () => {
        times.push(Date.now());
        if (times.length < 4) throw new Error('boom');
        return times.length === 4 ? { requeueAfterMs: 30 } : {};
      },
      { concurrency: 1, baseBackoffMs: 10, maxBackoffMs: 1000 },
    );
    q.add('k');
    while (times.length < 5) await tick(5);
    const gaps = times.slice(1).map((t, i) => t - times[i]!);
    assert.ok(gaps[0]! >= 9 && gaps[1]! >= 19 && gaps[2]! >= 39, `backoff doubles: ${gaps}`);
    assert.ok(gaps[3]! >= 29, `requeueAfter: ${gaps}`);
    await q.stop();
  });
});
