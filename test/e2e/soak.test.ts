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
    e = await startEngineProcess({}, { heapSnapshots: true });
  });
  after(async () => {
    await e?.stop();
  });

  it(`serves ${REQUESTS} mixed requests from ${CLIENTS} clients through one sandbox without an error, its memory bounded`, async () => {
    const sb = await Sandbox.create({ url: e.url, token: e.token, template: 'python-runtime-template' });
    // What a request leaves behind for good, measured after full collections: before the soak (once
    // every kind has run, so code and caches that load once are counted) and after it. RSS after the
    // load says only whether V8 has yet given its grown heap back (it did not within a minute in a
    // CI run, with nothing held), so it is printed, not judged.
    await runSoak({
      url: e.url,
      token: e.token,
      sandbox: sb.id,
      clients: CLIENTS,
      requests: 10 * KINDS.length * CLIENTS,
    });
    const heldBefore = await e.heldBytes();
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
    const rssAfterLoad = e.rssBytes();
    const heldAfter = await e.heldBytes();
    process.stderr.write(
      `# ${REQUESTS} requests in ${(r.durationMs / 1000).toFixed(1)} s (${((REQUESTS / r.durationMs) * 1000).toFixed(0)}/s), p50 ${percentile(all, 50).toFixed(1)} ms, p99 ${percentile(all, 99).toFixed(1)} ms; engine RSS ${rssBefore >> 20} MB before, ${rssMax >> 20} MB at most, ${rssAfterLoad >> 20} MB when the load stopped; held after a full collection ${(heldBefore / MiB).toFixed(1)} MB before, ${(heldAfter / MiB).toFixed(1)} MB after\n`,
    );
    assert.deepEqual(r.errors.slice(0, 5), [], `${r.errors.length} requests failed`);
    for (const k of KINDS)
      assert.ok(
        r.latencies[k].length >= Math.floor(REQUESTS / KINDS.length) - CLIENTS,
        `${k}: ${r.latencies[k].length}`,
      );
    // A leak of 500 bytes a request would hold 10 MB more.
    assert.ok(
      heldAfter < heldBefore + 10 * MiB,
      `the engine holds ${(heldBefore / MiB).toFixed(1)} MB before and ${(heldAfter / MiB).toFixed(1)} MB after ${REQUESTS} requests`,
    );
    // And no runaway while it lasted (a stream buffered whole, a queue without a bound).
    assert.ok(rssMax < rssBefore + 300 * MiB, `engine RSS ${rssBefore >> 20} → ${rssMax >> 20} MB under load`);
    assert.equal((await sb.refresh()).phase, 'Running');
    await sb.kill();
  });
});
