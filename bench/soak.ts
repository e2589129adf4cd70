// npm run bench:soak: a million mixed requests through one sandbox (BENCH_SOAK_REQUESTS), from 20
// clients at once (BENCH_SOAK_CLIENTS) and then from one (BENCH_SOAK_SEQUENTIAL), to a sandbox of
// BENCH_SOAK_CPU CPUs (1), cycling through every kind or BENCH_SOAK_KINDS, against the engine as its own process:
// errors, throughput, p50/p99 by kind, the engine's memory and event-loop delay.
import { Sandbox, apply } from '@asb/sdk';
import { startEngineProcess } from '../test/e2e/harness.ts';
import { KINDS, runSoak, type Kind } from '../test/e2e/soak-load.ts';
import { percentile, table } from './stats.ts';

const REQUESTS = Number(process.env.BENCH_SOAK_REQUESTS ?? 1_000_000);
const CLIENTS = Number(process.env.BENCH_SOAK_CLIENTS ?? 20);
const SEQUENTIAL = Number(process.env.BENCH_SOAK_SEQUENTIAL ?? Math.min(REQUESTS, 100_000));
/** The sandbox's CPU limit (its template's resources.limits.cpu). */
const CPU = process.env.BENCH_SOAK_CPU ?? '1';
/** The kinds, comma-separated, each with an optional weight (`read:10,execute:1`: ten reads for
 *  each command); default: all of them, in turn. */
const ONLY = process.env.BENCH_SOAK_KINDS ? kindsOf(process.env.BENCH_SOAK_KINDS) : undefined;

function kindsOf(spec: string): Kind[] {
  return spec.split(',').flatMap((part) => {
    const [kind, weight = '1'] = part.trim().split(':');
    if (!(KINDS as readonly string[]).includes(kind!) || !(Number(weight) >= 1))
      throw new Error(`BENCH_SOAK_KINDS: "${part}" is not kind[:weight] with a kind of ${KINDS.join(', ')}`);
    return Array<Kind>(Math.floor(Number(weight))).fill(kind as Kind);
  });
}

const ms = (n: number) => `${n.toFixed(1)} ms`;

async function main(): Promise<void> {
  const e = await startEngineProcess();
  try {
    const conn = { url: e.url, token: e.token };
    await apply(
      `apiVersion: extensions.agents.x-k8s.io/v1alpha1
kind: SandboxTemplate
metadata: { name: soak }
spec:
  podTemplate:
    spec:
      containers: [{ name: main, image: python:3.13-slim, resources: { limits: { cpu: "${CPU}" } } }]
`,
      conn,
    );
    const sb = await Sandbox.create({ ...conn, template: 'soak' });
    const rows: string[][] = [];
    for (const [clients, requests] of [
      [CLIENTS, REQUESTS],
      [1, SEQUENTIAL],
    ] as const) {
      if (requests <= 0) continue;
      await e.eventLoopMaxMs(); // a new measurement window
      const rssBefore = e.rssBytes();
      let rssMax = rssBefore;
      let loopMax = 0;
      const t0 = Date.now();
      const r = await runSoak({
        url: e.url,
        token: e.token,
        sandbox: sb.id,
        clients,
        requests,
        kinds: ONLY,
        onProgress: (done, errors) => {
          rssMax = Math.max(rssMax, e.rssBytes());
          // Every 10 s: the loop's worst delay in that window, and where the run is.
          if ((Date.now() - t0) % 10_000 < 1000) {
            void e.eventLoopMaxMs().then((v) => {
              loopMax = Math.max(loopMax, v);
            });
            process.stderr.write(
              `  ${clients} client(s): ${done}/${requests}, ${((done / (Date.now() - t0)) * 1000).toFixed(0)}/s, engine RSS ${e.rssBytes() >> 20} MB, errors ${errors}\n`,
            );
          }
        },
      });
      loopMax = Math.max(loopMax, await e.eventLoopMaxMs());
      const all = KINDS.flatMap((k) => r.latencies[k]);
      rows.push([
        `${clients}`,
        `${requests}`,
        `${r.errors.length}`,
        `${((requests / r.durationMs) * 1000).toFixed(0)}/s`,
        ms(percentile(all, 50)),
        ms(percentile(all, 99)),
        `${rssBefore >> 20} → ${rssMax >> 20} MB`,
        ms(loopMax),
      ]);
      for (const k of KINDS)
        rows.push([
          `  ${k}`,
          `${r.latencies[k].length}`,
          `${r.errors.filter((x) => x.kind === k).length}`,
          '',
          ms(percentile(r.latencies[k], 50)),
          ms(percentile(r.latencies[k], 99)),
          '',
          '',
        ]);
      if (r.errors.length) process.stderr.write(`first errors: ${JSON.stringify(r.errors.slice(0, 5))}\n`);
    }
    console.log(
      table(['clients', 'requests', 'errors', 'throughput', 'p50', 'p99', 'engine RSS', 'event-loop max'], rows),
    );
    console.log(`sandbox ${(await sb.refresh()).phase}`);
    await sb.kill();
  } finally {
    await e.stop();
  }
}

await main();
