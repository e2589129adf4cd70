// Code in a sandbox acting as an attacker would, against a real engine (its own process, so that
// its event loop and memory are its own) on real gVisor: nothing it does may stall the engine for
// the other sandboxes, grow the engine without bound, or write on the host outside its quota.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Sandbox, apply, type ConnectionOpts } from '@asb/sdk';
import { startEngineProcess, type EngineProcess } from './harness.ts';
import { percentile } from '../../bench/stats.ts';
import { sandboxYaml, templateYaml } from '../support/manifests.ts';
import { waitFor } from '../support/wait.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function metric(text: string, name: string): number {
  return Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)?.[1] ?? 0);
}

/** /healthz every 20 ms, each round trip timed; a probe with no answer in 5 s counts as lost. */
function healthProbe(e: EngineProcess) {
  const times: number[] = [];
  let lost = 0;
  let running = true;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const loop = (async () => {
    while (running) {
      const t0 = performance.now();
      const ok = await new Promise<boolean>((resolve) => {
        const req = http.get(`${e.url}/healthz`, { agent, timeout: 5000 }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode === 200));
        });
        req.on('timeout', () => {
          req.destroy();
          resolve(false);
        });
        req.on('error', () => resolve(false));
      });
      if (ok) times.push(performance.now() - t0);
      else lost++;
      await sleep(20);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      agent.destroy();
      return { times, lost };
    },
  };
}

describe('hostile sandboxes', () => {
  let e: EngineProcess;
  let conn: ConnectionOpts;
  before(async () => {
    e = await startEngineProcess();
    conn = { url: e.url, token: e.token };
    await apply(templateYaml('hostile', { limits: { memory: '512Mi', 'ephemeral-storage': '256Mi' } }), conn);
  });
  after(async () => {
    await e?.stop();
  });

  it(
    'cannot stall the engine: link loops in a snapshot, endless output, unread stdin, a growing download, a log flood',
    { timeout: 600_000 },
    async (t) => {
      await apply(sandboxYaml('linker', { volumes: { data: { mountPath: '/data', storage: '64Mi' } } }), conn);
      const linker = await Sandbox.connect('linker', conn);
      const victim = await Sandbox.create({ ...conn, template: 'hostile' });
      const printer = await Sandbox.create({ ...conn, template: 'hostile' });
      const deaf = await Sandbox.create({ ...conn, template: 'hostile' });
      const grower = await Sandbox.create({ ...conn, template: 'hostile' });
      // The engine's event-loop delay, its worst in each 250 ms window (prom-client resets the
      // histogram at each scrape), all through the attack.
      await e.eventLoopMaxMs();
      const loopWindows: number[] = [];
      let measuring = true;
      const loopWatch = (async () => {
        while (measuring) {
          await sleep(250);
          loopWindows.push(await e.eventLoopMaxMs());
        }
      })();
      const probe = healthProbe(e);
      const rssBefore = e.rssBytes();

      // The victim is timed throughout: an exec round trip at a time.
      let attacking = true;
      // A failed step must not leave these loops running: the test file's process would never
      // exit, and the whole run would wait on it (it did, in a CI run).
      t.after(async () => {
        attacking = false;
        measuring = false;
        await probe.stop();
      });
      const victimTimes: number[] = [];
      const victimLoop = (async () => {
        while (attacking) {
          const t0 = performance.now();
          assert.equal((await victim.run('true')).exitCode, 0);
          victimTimes.push(performance.now() - t0);
        }
      })();
      victimLoop.catch(() => undefined); // awaited below; a failure after a failed step is moot

      // 1. Link loops and links to host paths in a volume and the workspace, then a snapshot (its
      //    free-space check walked them on the event loop, following links, without end).
      await linker.run(
        'mkdir -p /data/loop /app/loop && ln -s . /data/loop/a && ln -s . /data/loop/b && ln -s / /data/root && ln -s /etc /app/etc && ln -s .. /app/loop/up',
      );
      const snapshot = linker.snapshots.create();
      // 2. Output without end: a background process and a streamed command, both printing `yes`.
      const yes = await printer.commands.start('yes');
      const flood = printer
        .run('timeout 8 yes', { timeoutMs: 20_000, onStdout: () => undefined })
        .catch((err: Error) => err);
      // 3. A process that never reads its stdin, sent 32 MiB of it.
      const sleeper = await deaf.commands.start('sleep 600');
      const stdinSent = deaf.commands.sendStdin(sleeper.id, new Uint8Array(32 * 1024 * 1024)).then(
        () => 'sent',
        (err: Error) => err.message,
      );
      // 4. A file growing while it is downloaded, again and again (64 KiB at a time, without pause).
      await grower.commands.start('while head -c 65536 /dev/zero >> /app/grow; do :; done');
      // Downloads from its first bytes on: a start alone does not say the loop has run yet (it had
      // not, 300 ms later, in a CI run under this load).
      await waitFor('the growing file to have bytes', async () => (await grower.files.stat('grow')).size > 0, 30_000);
      // 5. The agent's stderr (the sandbox's log, on the host, outside the quota) written without end.
      await printer.commands.start('yes log-flood-from-the-sandbox > /proc/2/fd/2');

      const downloads: number[] = [];
      for (let i = 0; i < 10; i++) {
        await sleep(300);
        downloads.push((await grower.files.read('grow', { format: 'bytes' })).length);
      }
      const logFile = join(e.home, 'sandboxes', 'default', printer.id, 'sandbox.log');
      let logMax = 0;
      for (let i = 0; i < 6; i++) {
        logMax = Math.max(logMax, statSync(logFile).size);
        await sleep(500);
      }
      const snap = await snapshot;
      assert.ok((snap.info.sizeBytes ?? 0) > 0);
      await flood;
      attacking = false;
      await victimLoop;
      const health = await probe.stop();
      measuring = false;
      await loopWatch;
      const loopMaxMs = Math.max(...loopWindows);
      const loopP90 = percentile(loopWindows, 90);
      const rssAfter = e.rssBytes();
      const metrics = await e.metrics();
      process.stderr.write(
        `# engine event-loop delay: worst of each 250 ms window p50 ${percentile(loopWindows, 50).toFixed(1)} ms, p90 ${loopP90.toFixed(1)} ms, max ${loopMaxMs.toFixed(1)} ms (${loopWindows.length} windows); /healthz p50 ${percentile(health.times, 50).toFixed(1)} ms, max ${Math.max(...health.times).toFixed(1)} ms over ${health.times.length} probes; victim exec p50 ${percentile(victimTimes, 50).toFixed(1)} ms p99 ${percentile(victimTimes, 99).toFixed(1)} ms (${victimTimes.length}); engine RSS ${rssBefore >> 20} → ${rssAfter >> 20} MB; log max ${logMax >> 10} KiB; downloads ${downloads.map((d) => d >> 20).join(',')} MiB\n`,
      );

      assert.equal(health.lost, 0, '/healthz answered every probe');
      // Never stalled (the symlink loop froze it for good), and under 100 ms in nine windows of ten.
      // The engine's cgroup outweighs the sandboxes' (engine-cgroup.ts): with it, the worst window
      // was 27-62 ms in most runs and 106 ms in one of eight; without it, 95-156 ms and a p90
      // over 100 ms in two runs of five, the engine runnable but not scheduled.
      assert.ok(
        loopP90 < 100,
        `the engine's event loop was delayed over 100 ms in more than one window in ten (p90 ${loopP90.toFixed(1)} ms)`,
      );
      // One window over 250 ms is let through, never a second, nor one over a second: a CI run had a
      // single window of 272 ms (p90 18.7 ms, /healthz never over 127 ms), where eleven runs on a
      // development machine stayed under 35 ms; a stall of the engine's own (the link loop) is
      // every window from it on.
      const slowWindows = loopWindows.filter((ms) => ms >= 250);
      assert.ok(
        slowWindows.length <= 1 && loopMaxMs < 1000,
        `the engine's event loop was delayed over 250 ms in ${slowWindows.length} windows (${slowWindows.map((ms) => ms.toFixed(0)).join(', ')} ms)`,
      );
      assert.ok(victimTimes.length > 20, 'the victim kept being served');
      assert.ok(rssAfter < rssBefore + 150 * 1024 * 1024, `engine RSS ${rssBefore >> 20} → ${rssAfter >> 20} MB`);
      assert.ok(logMax < 8 * 1024 * 1024 + 256 * 1024 * 1024, `the sandbox log stayed bounded (${logMax} bytes)`);
      assert.ok(metric(metrics, 'asb_sandbox_log_bytes_dropped_total') > 0, 'the log flood was cut');
      assert.ok(downloads.every((d) => d > 0));
      // The sandboxes that were attacked from still answer, and the stdin writer was held back
      // (flow control), not buffered by the engine.
      for (const sb of [linker, printer, deaf, grower]) assert.equal((await sb.run('echo ok')).stdout, 'ok\n');
      await printer.commands.kill(yes.id);
      await deaf.commands.kill(sleeper.id);
      process.stderr.write(
        `# stdin to a process that never reads: ${await Promise.race([stdinSent, sleep(2000).then(() => 'still held back')])}\n`,
      );
      // A link made in the sandbox is not followed by the file API either.
      await assert.rejects(linker.files.read('/data/root/etc/hostname'), /outside/i);
      for (const sb of [linker, victim, printer, deaf, grower]) await sb.kill();
    },
  );

  it("never makes a directory on the host for a spec's mount points", async () => {
    await apply(templateYaml('probe-wd', { workingDir: '/usr/rt-probe-wd' }), conn);
    await assert.rejects(
      Sandbox.create({ ...conn, template: 'probe-wd' }),
      /\/usr is the host's, mounted read-only, and \/usr\/rt-probe-wd does not exist there/,
    );
    assert.equal(existsSync('/usr/rt-probe-wd'), false);

    const x = { mountPath: '/etc/x', storage: '16Mi' };
    await apply(sandboxYaml('etc-volume', { workingDir: '/workspace', volumes: { x } }), conn);
    const sb = await Sandbox.connect('etc-volume', conn);
    assert.equal((await sb.run('pwd && echo hi > /etc/x/f && cat /etc/x/f')).stdout, '/workspace\nhi\n');
    assert.equal(existsSync(join(e.home, 'rootfs', 'etc', 'x')), false, 'not in the shared skeleton');
    assert.equal(existsSync(join(e.home, 'rootfs', 'workspace')), false, 'not in the shared skeleton');
    await sb.kill();
    // Its directory (private root included) goes once the engine has released it.
    const dir = join(e.home, 'sandboxes', 'default', 'etc-volume');
    for (let i = 0; i < 100 && existsSync(dir); i++) await sleep(100);
    assert.equal(existsSync(dir), false, 'its private root went with it');
  });
});
