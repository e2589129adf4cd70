// npm run bench: the local engine's numbers, measured in one run on this machine.
//   cold and warm claim → first command result; pool refill; exec round trip of `true`;
//   memory per idle sandbox (BENCH_IDLE_N=200 for the lifecycle issue's 200 held).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { Engine } from '@asb/engine';
import { Sandbox, Objects, apply, type ApiObject } from '@asb/sdk';
import { nameHash } from '@asb/api';
import { percentile, table } from './stats.ts';
import { childrenOf, pssBytes, treeOf } from './procmem.ts';

const COLD_N = Number(process.env.BENCH_COLD_N ?? 15);
const EXEC_N = Number(process.env.BENCH_EXEC_N ?? 300);
const IDLE_N = Number(process.env.BENCH_IDLE_N ?? 20);
const WARM_N = Number(process.env.BENCH_WARM_N ?? 20);

const ms = (n: number) => `${n.toFixed(1)} ms`;

async function main(): Promise<void> {
  const home = mkdtempSync(join(tmpdir(), 'asb-bench-'));
  const engine = new Engine({ home, port: 0 }, pino({ level: process.env.ASB_LOG_LEVEL ?? 'warn' }));
  const state = await engine.start();
  const conn = { url: engine.url, token: engine.bearerToken };
  const rows: string[][] = [];
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
    rows.push([
      'cold claim → first command result (no pool)',
      String(COLD_N),
      ms(percentile(cold, 50)),
      ms(percentile(cold, 95)),
      '≤ 250 ms',
    ]);

    const sb = await Sandbox.create(conn);
    const exec: number[] = [];
    for (let i = 0; i < 20; i++) await sb.run('true');
    for (let i = 0; i < EXEC_N; i++) {
      const t0 = performance.now();
      await sb.run('true');
      exec.push(performance.now() - t0);
    }
    rows.push([
      'exec round trip of `true` (SDK → engine → agent)',
      String(EXEC_N),
      ms(percentile(exec, 50)),
      ms(percentile(exec, 95)),
      '≤ 5 ms',
    ]);
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
    rows.push([
      'warm claim → first command result (pool of 5)',
      String(WARM_N),
      ms(percentile(warm, 50)),
      ms(percentile(warm, 95)),
      '≤ 20 ms',
    ]);
    rows.push([
      'pool refill (claim → replacement ready)',
      String(WARM_N),
      ms(percentile(refill, 50)),
      ms(percentile(refill, 95)),
      '',
    ]);
    await objects.delete('SandboxWarmPool', 'bench-pool');

    // Ten at a time: on two cores, hundreds of simultaneous boots would only queue for the CPU.
    const idle: Sandbox[] = [];
    while (idle.length < IDLE_N)
      idle.push(
        ...(await Promise.all(Array.from({ length: Math.min(10, IDLE_N - idle.length) }, () => Sandbox.create(conn)))),
      );
    await new Promise((r) => setTimeout(r, 3000));
    const kids = childrenOf();
    const perSandbox = engine.workloads
      .list()
      .map((w) => treeOf(w.handle!.pid!, kids).reduce((a, p) => a + pssBytes(p), 0));
    const mb = (b: number) => `${(b / 1024 / 1024).toFixed(1)} MB`;
    rows.push([
      `memory (PSS) per idle sandbox, ${IDLE_N} idle`,
      String(perSandbox.length),
      mb(percentile(perSandbox, 50)),
      mb(percentile(perSandbox, 95)),
      '≤ 40 MB',
    ]);
    await Promise.all(idle.map((s) => s.kill()));

    console.log(`\nlocal engine benchmark — driver ${state.driver}, ${new Date().toISOString()}\n`);
    console.log(table(['measure', 'n', 'p50', 'p95', 'goal'], rows));
  } finally {
    await engine.stop({ deleteAll: true });
    rmSync(home, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
