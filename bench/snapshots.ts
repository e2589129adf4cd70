// npm run bench:snapshots: suspend/resume with memory snapshots on the local engine (gVisor
// checkpoint/restore), for a small process and for one holding 256 MB; snapshot size on disk;
// a fork; and a cold start by boot against a start from a golden snapshot. One run, one machine,
// each gVisor found side by side (Debian's and dist/runsc; or BENCH_RUNSC=path,path), each with
// its floor: gVisor checkpointing and restoring a bare `sleep` sandbox (bench/gvisor-floor.ts).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { Engine } from '@asb/engine';
import { Sandbox, Objects, apply } from '@asb/sdk';
import { SideBySide } from './stats.ts';
import { checkpointRestoreFloor, runscsUnderTest, type RunscUnderTest } from './gvisor-floor.ts';

const N = Number(process.env.BENCH_SNAPSHOT_N ?? 5);
const ms = (n: number) => `${n.toFixed(1)} ms`;
const mb = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MB`;

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now();
  const v = await fn();
  return [v, performance.now() - t0];
}

async function measure({ label: column, path: runscPath }: RunscUnderTest, results: SideBySide): Promise<void> {
  const home = mkdtempSync(join(tmpdir(), 'asb-bench-snap-'));
  const engine = new Engine(
    { home, port: 0, runscPath, hostImages: true },
    pino({ level: process.env.ASB_LOG_LEVEL ?? 'warn' }),
  );
  await engine.start();
  const conn = { url: engine.url, token: engine.bearerToken };
  try {
    await (await Sandbox.create(conn)).kill(); // page cache and code paths warm; not counted

    // Suspend → resume cycles of one sandbox, each a checkpoint to disk and a restore.
    const cycles = async (label: string, setup: (sb: Sandbox) => Promise<void>) => {
      const sb = await Sandbox.create({ ...conn, warmPool: 'none' });
      await setup(sb);
      const suspend: number[] = [];
      const resume: number[] = [];
      const firstResult: number[] = [];
      const sizes: number[] = [];
      for (let i = 0; i < N; i++) {
        const [res, s] = await timed(() => sb.suspend({ snapshot: true }));
        suspend.push(s);
        sizes.push(res.snapshot!.sizeBytes!);
        const [, r] = await timed(() => sb.resume());
        resume.push(r);
        const [, f] = await timed(() => sb.run('true'));
        firstResult.push(r + f);
      }
      results.add(column, `suspend with snapshot, ${label}`, '≤ 150 ms (small)', suspend, ms);
      results.add(column, `resume from snapshot, ${label}`, '≤ 150 ms (small)', resume, ms);
      results.add(column, `resume → first command result, ${label}`, '', firstResult, ms);
      results.add(column, `snapshot size on disk, ${label}`, '', sizes, mb);
      return sb;
    };
    // The floor of both: gVisor checkpointing and restoring a bare `sleep` sandbox, none of ours.
    const floor = await checkpointRestoreFloor(runscPath, N);
    results.add(column, 'floor: checkpoint of a bare `sleep` sandbox (runsc checkpoint)', '', floor.checkpoint, ms);
    results.add(column, 'floor: restore of it (runsc restore)', '', floor.restore, ms);
    const small = await cycles('idle runtime (small)', async () => undefined);
    await cycles('process holding 256 MB', async (sb) => {
      await sb.commands.start(`python3 -c '
import time, os
b = bytearray(os.urandom(1024 * 1024)) * 256
print("held", len(b), flush=True)
time.sleep(100000)
'`);
      for (
        let i = 0;
        i < 200 && !(await sb.commands.list()).some((p) => p.running && p.command.includes('bytearray'));
        i++
      )
        await new Promise((r) => setTimeout(r, 50));
      await new Promise((r) => setTimeout(r, 3000)); // the 256 MB are written
    }).then((sb) => sb.kill());

    // Snapshots of a running sandbox that keeps running (`asb snapshot create`): the first of a
    // sandbox's life (in place, gVisor's hook is armed then) and a later one, each in a new sandbox.
    const firstSnapshot: number[] = [];
    const laterSnapshot: number[] = [];
    const afterSnapshot: number[] = [];
    for (let i = 0; i < N; i++) {
      const sb = await Sandbox.create({ ...conn, warmPool: 'none' });
      await sb.run('true');
      firstSnapshot.push((await timed(() => sb.snapshots.create()))[1]);
      const [, later] = await timed(() => sb.snapshots.create());
      const [, first] = await timed(() => sb.run('true'));
      laterSnapshot.push(later);
      afterSnapshot.push(later + first);
      await sb.kill();
    }
    results.add(column, "snapshot of a running sandbox (it runs on), its life's first", '', firstSnapshot, ms);
    results.add(column, 'snapshot of a running sandbox, a later one', '', laterSnapshot, ms);
    results.add(column, 'a later snapshot → first command result after it', '', afterSnapshot, ms);

    // A fork: a new sandbox from a snapshot, to its first command.
    const snap = await small.snapshots.create();
    const forks: number[] = [];
    for (let i = 0; i < N; i++) {
      const [fork, t] = await timed(async () => {
        const f = await Sandbox.create({ ...conn, fromSnapshot: snap.id });
        await f.run('true');
        return f;
      });
      forks.push(t);
      await fork.kill();
    }
    results.add(column, 'fork from snapshot → first command result', '', forks, ms);
    await small.kill();

    // Cold start, booted vs restored from a golden snapshot of the same template. Offline, as the
    // built-in templates: without a policy a template gets upstream's default (the internet), and
    // gVisor 20221219 cannot checkpoint a networked sandbox (the host's network stack).
    await apply(
      `apiVersion: extensions.agents.x-k8s.io/v1alpha1
kind: SandboxTemplate
metadata: { name: bench-golden }
spec:
  podTemplate:
    spec:
      containers: [{ name: main, image: python:3.13-slim }]
  networkPolicy:
    egress: []
`,
      conn,
    );
    const coldStart = async () => {
      const out: number[] = [];
      for (let i = 0; i < N; i++) {
        const [sb, t] = await timed(async () => {
          const s = await Sandbox.create({ ...conn, template: 'bench-golden', warmPool: 'none' });
          await s.run('true');
          return s;
        });
        out.push(t);
        await sb.kill();
      }
      return out;
    };
    const booted = await coldStart();
    const setup = await Sandbox.create({ ...conn, template: 'bench-golden', warmPool: 'none' });
    const golden = await setup.snapshots.create();
    await setup.kill();
    await new Objects(conn).patch('SandboxTemplate', 'bench-golden', {
      metadata: { annotations: { 'sandbox.asb.dev/golden-snapshot': golden.id } },
    });
    const restored = await coldStart();
    results.add(column, 'cold claim → first result, booted', '', booted, ms);
    results.add(column, 'cold claim → first result, from golden snapshot', '', restored, ms);
  } finally {
    await engine.stop({ deleteAll: true });
    rmSync(home, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const results = new SideBySide();
  for (const r of await runscsUnderTest()) await measure(r, results);
  console.log(`\nsnapshot benchmark — ${new Date().toISOString()}; p50 (p95, n)\n`);
  console.log(results.toString());
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
