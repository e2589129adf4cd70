// npm run bench: the local engine's numbers, measured in one run on this machine, for each gVisor
// found (Debian's runsc and the pinned current one, dist/runsc; or BENCH_RUNSC=path,path), side by
// side, with the floor each is read against: `runsc do true`, a fork+exec of /bin/true inside a
// running sandbox, a bare sandbox running only `sleep` (bench/gvisor-floor.ts), and a call into the
// sandbox and back with no command.
//   cold and warm claim → first command result; pool refill; exec round trip of `true`;
//   memory per idle sandbox (BENCH_IDLE_N=500 for issue 20's 500 held).
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { Engine } from '@asb/engine';
import { Sandbox, Objects, apply, type ApiObject } from '@asb/sdk';
import { nameHash } from '@asb/api';
import { SideBySide, printReport } from './stats.ts';
import { childrenOf, pssBytes, treeOf } from './procmem.ts';
import {
  FORK_EXEC_LOOP,
  QUIET_MS,
  idleSleepSandboxes,
  roundTripFloor,
  runscDoTrue,
  runscsUnderTest,
  timedAfterQuiet,
  type RunscUnderTest,
} from './gvisor-floor.ts';

const COLD_N = Number(process.env.BENCH_COLD_N ?? 15);
const EXEC_N = Number(process.env.BENCH_EXEC_N ?? 300);
const IDLE_N = Number(process.env.BENCH_IDLE_N ?? 20);
const WARM_N = Number(process.env.BENCH_WARM_N ?? 20);
const FLOOR_N = Number(process.env.BENCH_FLOOR_N ?? 20);
/** Loops of the fork+exec floor, each taken after an equal share of the exec round trips. */
const FLOOR_ROUNDS = 6;

const ms = (n: number) => `${n.toFixed(1)} ms`;
const mb = (b: number) => `${(b / 1024 / 1024).toFixed(1)} MB`;

async function measureEngine(
  { label, path: runscPath, version }: RunscUnderTest,
  results: SideBySide,
): Promise<string> {
  const home = mkdtempSync(join(tmpdir(), 'asb-bench-'));
  const engine = new Engine(
    { home, port: 0, runscPath, hostImages: true },
    pino({ level: process.env.ASB_LOG_LEVEL ?? 'warn' }),
  );
  const state = await engine.start();
  const conn = { url: engine.url, token: engine.bearerToken };
  try {
    // Warm the host's page cache and the engine's code paths once; not counted.
    await (await Sandbox.create(conn)).kill();

    const cold: number[] = [];
    for (let i = 0; i < COLD_N; i++) {
      const t0 = performance.now();
      const sb = await Sandbox.create(conn);
      await sb.run('true');
      cold.push(performance.now() - t0);
      await sb.kill();
    }
    results.add(label, 'cold claim → first command result (no pool)', '≤ 250 ms', cold, ms);

    const sb = await Sandbox.create(conn);
    // The exec round trip and the floor it is read against, a shell's fork+exec of /bin/true in
    // the very sandbox (200 a loop), taken in turns: the machine's speed drifts over a run (a VM on
    // shared cores), and measured one after the other the two would each catch a different part.
    // Each round starts with 20 execs not counted: the first ~10 after the floor's busy loop are
    // slower (p50 9.9 and 8.1 ms for the 1st-5th and 6th-10th against ~7 after, 10 rounds),
    // an after-effect of the loop (gVisor still busy from it), not what an exec costs.
    const exec: number[] = [];
    const forkExec: number[] = [];
    for (let round = 0; round < FLOOR_ROUNDS; round++) {
      for (let i = 0; i < 20; i++) await sb.run('true');
      for (let i = 0; i < Math.ceil(EXEC_N / FLOOR_ROUNDS); i++) {
        const t0 = performance.now();
        const { exitCode } = await sb.run('true');
        exec.push(performance.now() - t0);
        // A failed `true` ran no program: its time would not be an exec's.
        if (exitCode !== 0) throw new Error(`\`true\` exited ${exitCode} in the bench's sandbox`);
      }
      forkExec.push(Number((await sb.run(FORK_EXEC_LOOP(200))).stdout.trim()) / 1000);
    }
    results.add(label, 'exec round trip of `true` (SDK → engine → sandbox)', '≤ floor + 1.5 ms', exec, ms);
    // The same in a sandbox that sat idle, as a warm claim's first command finds its member.
    const execQuiet = await timedAfterQuiet(EXEC_N, () => sb.run('true'));
    results.add(label, `exec round trip of \`true\` after ${QUIET_MS} ms of quiet`, '', execQuiet, ms);
    // What any call into the sandbox costs before a command runs: the runtime API's `GET /`
    // through the engine to the agent and back, over a kept-alive connection as the SDK's.
    const roundTrip: number[] = [];
    const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const get = () =>
      new Promise<void>((resolve, reject) => {
        const headers = { authorization: `Bearer ${conn.token}`, 'x-sandbox-id': sb.id };
        http
          .get(`${conn.url}/`, { agent: keepAlive, headers }, (res) => res.resume().on('end', resolve))
          .on('error', reject);
      });
    for (let i = 0; i < 20; i++) await get();
    for (let i = 0; i < EXEC_N; i++) {
      const t0 = performance.now();
      await get();
      roundTrip.push(performance.now() - t0);
    }
    keepAlive.destroy();
    results.add(label, 'floor: a call into the sandbox and back, no command (GET /)', '', roundTrip, ms);
    results.add(label, 'floor: fork+exec of /bin/true in a running sandbox', '', forkExec, ms);
    // The same, from the host: a round trip into a bare sandbox that runs /bin/true (none of ours).
    const floor = await roundTripFloor(runscPath, EXEC_N);
    if (floor) {
      results.add(label, 'floor: a call into a bare sandbox and back (C, no command)', '', floor.call, ms);
      results.add(label, 'floor: the same, running /bin/true (C: vfork, pipes, wait)', '', floor.exec, ms);
      results.add(label, `floor: the same after ${QUIET_MS} ms of quiet (C)`, '', floor.execAfterQuiet, ms);
    }
    await sb.kill();

    // Warm pool: claims served from pre-started sandboxes, and how fast the pool refills.
    const objects = new Objects(conn);
    const POOL = 5;
    await apply(
      `apiVersion: extensions.agents.x-k8s.io/v1alpha1
kind: SandboxWarmPool
metadata: { name: bench-pool }
spec: { replicas: ${POOL}, sandboxTemplateRef: { name: python-runtime-template } }
`,
      conn,
    );
    // Counted from the members themselves (the pool's status catches up when it reconciles).
    const poolReady = async (n: number) => {
      const t0 = performance.now();
      const selector = `agents.x-k8s.io/warm-pool-sandbox=${nameHash('bench-pool')}`;
      const ready = (s: ApiObject) => s.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
      while ((await objects.list('Sandbox', { labelSelector: selector })).filter(ready).length !== n)
        await new Promise((r) => setTimeout(r, 5));
      return performance.now() - t0;
    };
    await poolReady(POOL);
    const warm: number[] = [];
    const refill: number[] = [];
    for (let i = 0; i < WARM_N; i++) {
      const t0 = performance.now();
      const sb = await Sandbox.create(conn);
      await sb.run('true');
      warm.push(performance.now() - t0);
      if (!sb.id.startsWith('bench-pool-')) throw new Error(`claim ${i} was not served by the pool (${sb.id})`);
      // From the adoption to the pool's replacement being ready (ASB_POOL_REFILL_DELAY_MS included).
      refill.push((await poolReady(POOL)) + warm[i]!);
      await sb.kill();
    }
    results.add(label, 'warm claim → first command result (pool of 5)', '≤ 20 ms', warm, ms);
    results.add(label, 'pool refill (claim → replacement ready)', '', refill, ms);
    await objects.delete('SandboxWarmPool', 'bench-pool');

    // Ten at a time: on two cores, hundreds of simultaneous boots would only queue for the CPU.
    const idle: Sandbox[] = [];
    while (idle.length < IDLE_N)
      idle.push(
        ...(await Promise.all(Array.from({ length: Math.min(10, IDLE_N - idle.length) }, () => Sandbox.create(conn)))),
      );
    // Each has run commands, as a sandbox in use has: the first opens its exec lane (an asb-spawn
    // inside, counted with the rest), the later ones take it.
    for (let i = 0; i < 3; i++) {
      await Promise.all(idle.map((s) => s.run('true')));
      await new Promise((r) => setTimeout(r, 1000));
    }
    await new Promise((r) => setTimeout(r, 3000));
    const kids = childrenOf();
    const perSandbox = engine.workloads
      .list()
      .map((w) => treeOf(w.handle!.pid!, kids).reduce((a, p) => a + pssBytes(p), 0));
    results.add(label, `memory (PSS) per idle sandbox, ${IDLE_N} held`, '≤ 20 MB', perSandbox, mb);
    // Each still answers: held, not merely started.
    const alive = await Promise.all(idle.map((s) => s.run('true').then((r) => r.exitCode === 0)));
    if (alive.some((ok) => !ok)) throw new Error(`${alive.filter((ok) => !ok).length} idle sandboxes did not answer`);
    await Promise.all(idle.map((s) => s.kill()));
    return `${label}: ${runscPath} (${version}), driver ${state.driver}, agent ${engine.config.agent}`;
  } finally {
    await engine.stop({ deleteAll: true });
    rmSync(home, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const runscs = await runscsUnderTest();
  const results = new SideBySide();
  const notes: string[] = [];
  for (const r of runscs) {
    results.add(r.label, 'floor: `runsc do true`', '', await runscDoTrue(r.path, FLOOR_N), ms);
    const sleeping = await idleSleepSandboxes(r.path, Math.min(IDLE_N, 20));
    results.add(r.label, 'floor: idle sandbox running only `sleep` (PSS)', '', sleeping, mb);
    notes.push(await measureEngine(r, results));
  }
  printReport('local engine benchmark', notes, results);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
