// A soak through one sandbox: mixed requests (commands buffered and streamed, files written, read,
// uploaded, downloaded, listed) from 20 clients at once, every answer checked, against the engine
// as its own process. Enough of them to cross the old failure point (a sandbox died after
// 1,100–3,200 requests) several times; `npm run bench:soak` runs a million.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Sandbox } from '@asb/sdk';
import { startEngineProcess, type EngineProcess } from './harness.ts';
import { KINDS, runSoak } from './soak-load.ts';
import { percentile } from '../../bench/stats.ts';

const REQUESTS = Number(process.env.ASB_SOAK_REQUESTS ?? 20_000);
const CLIENTS = Number(process.env.ASB_SOAK_CLIENTS ?? 20);
const MiB = 1024 * 1024;

describe('soak', () => {
  let e: EngineProcess;
  before(async () => {
    e = await startEngineProcess();
  });
  after(async () => {
    await e?.stop();
  });

  it(`serves ${REQUESTS} mixed requests from ${CLIENTS} clients through one sandbox without an error, its memory bounded`, async () => {
    const sb = await Sandbox.create({ url: e.url, token: e.token, template: 'python-runtime-template' });
    const rssBefore = e.rssBytes();
    let rssMax = rssBefore;
    const r = await runSoak({
      url: e.url,
      token: e.token,
      sandbox: sb.id,
      clients: CLIENTS,
      requests: REQUESTS,
      onProgress: () => {
        rssMax = Math.max(rssMax, e.rssBytes());
      },
    });
    const all = KINDS.flatMap((k) => r.latencies[k]);
    // A leak is what is still held once the load has stopped: V8 promotes a busy server's
    // short-lived garbage (about 8 KiB a request here) and may let it pile up to 150 MB before its
    // first full collection, so the peak says when V8 collected, not what was kept. Once idle,
    // V8's memory reducer collects within seconds; what RSS it comes back to is the measure (a
    // leak of 2 KiB a request would hold 40 MB).
    const rssAfterLoad = e.rssBytes();
    let rssIdle = rssAfterLoad;
    for (const until = Date.now() + 60_000; Date.now() < until && rssIdle >= rssBefore + 25 * MiB;) {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      rssIdle = e.rssBytes();
    }
    process.stderr.write(
      `# ${REQUESTS} requests in ${(r.durationMs / 1000).toFixed(1)} s (${((REQUESTS / r.durationMs) * 1000).toFixed(0)}/s), p50 ${percentile(all, 50).toFixed(1)} ms, p99 ${percentile(all, 99).toFixed(1)} ms; engine RSS ${rssBefore >> 20} MB before, ${rssMax >> 20} MB at most, ${rssAfterLoad >> 20} MB when the load stopped, ${rssIdle >> 20} MB idle\n`,
    );
    assert.deepEqual(r.errors.slice(0, 5), [], `${r.errors.length} requests failed`);
    for (const k of KINDS)
      assert.ok(
        r.latencies[k].length >= Math.floor(REQUESTS / KINDS.length) - CLIENTS,
        `${k}: ${r.latencies[k].length}`,
      );
    assert.ok(
      rssIdle < rssBefore + 25 * MiB,
      `engine RSS ${rssBefore >> 20} MB before, still ${rssIdle >> 20} MB a minute after the load stopped`,
    );
    // And no runaway while it lasted (a stream buffered whole, a queue without a bound).
    assert.ok(rssMax < rssBefore + 300 * MiB, `engine RSS ${rssBefore >> 20} → ${rssMax >> 20} MB under load`);
    assert.equal((await sb.refresh()).phase, 'Running');
    await sb.kill();
  });
});
