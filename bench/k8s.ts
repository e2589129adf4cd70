// npm run bench:k8s: our controller and upstream's v0.5.6 on the real control plane of
// test/k8s (etcd, kube-apiserver, scheduler, controller-manager and KWOK, built from the Go
// module proxy), in one run:
// - 50 claims one at a time from a warm pool of N (a claim's own latency, nothing queued before it);
// - N claims (BENCH_K8S_N, default 1000) from the warm pool of N, created at a steady 40 per second
//   (latency under a sustained load below capacity);
// - N claims from the warm pool of N, and N claims served cold (a pool of 0), those two created 32
//   at a time (throughput).
// Each controller gets a fresh cluster from the same binaries on the same machine, one after the
// other (two controllers on one cluster would fight over the same objects). Claim → Ready is timed
// by the client: from the start of its create call to the watch event that shows it Ready.
// BENCH_K8S_SCENARIOS=real-node (not run by default) measures sandboxes that really run, on a
// real node with gVisor: bench/k8s-real-node.ts.
import { execFileSync } from 'node:child_process';
import * as k8s from '@kubernetes/client-node';
import { loadKubeConfig } from '@asb/kube';
import { startCluster, type Cluster } from '../test/k8s/cluster.ts';
import { startHarness, waitFor } from '../test/k8s/harness.ts';
import { installUpstreamCrds, startUpstreamController } from '../test/k8s/upstream.ts';
import { percentile, table } from './stats.ts';
import { watchBenchClaims } from './claim-watch.ts';
import { realNodeBench } from './k8s-real-node.ts';

const N = Number(process.env.BENCH_K8S_N ?? 1000);
const CONCURRENCY = Number(process.env.BENCH_K8S_CONCURRENCY ?? 32);
/** Claims made one at a time (each once the one before is Ready) from the full warm pool. */
const ONE_BY_ONE_N = Number(process.env.BENCH_K8S_ONE_BY_ONE_N ?? 50);
const GROUP = 'extensions.agents.x-k8s.io';
/** BENCH_K8S_ONLY=ours|upstream runs one controller (for profiling); the default runs both. */
const ONLY = process.env.BENCH_K8S_ONLY;
/**
 * BENCH_K8S_CONTROLLER_ARGS="--flag=value …": given to both controllers alike, for the flags they
 * share (e.g. upstream v0.5's refill shaping, --sandbox-warm-pool-replenish-delay=2s).
 */
const SHARED_ARGS = (process.env.BENCH_K8S_CONTROLLER_ARGS ?? '').split(/\s+/).filter(Boolean);
/**
 * The API server keeps a watch cache per served version, so every write of a Sandbox or claim
 * (stored as v1beta1) is converted to v1alpha1 as well, through the CRDs' conversion webhook,
 * whether or not anyone reads v1alpha1. Upstream's webhook cannot run here (its CRDs call it
 * through a Service, which does not resolve on this cluster), and a webhook that fails makes
 * that cache re-list and retry without end. So both controllers race with conversion off
 * (strategy None: the benchmark reads and writes v1beta1 only). BENCH_K8S_OUR_WEBHOOK=1 runs ours
 * with its webhook instead (~8 conversions per cold claim).
 */
const OUR_WEBHOOK = process.env.BENCH_K8S_OUR_WEBHOOK === '1';
/**
 * BENCH_K8S_SCENARIOS=single,paced,warm,cold (the default: all four) runs only those named;
 * `real-node` (not in the default) runs bench/k8s-real-node.ts: real gVisor pods on a real node.
 */
const SCENARIOS = new Set(
  (process.env.BENCH_K8S_SCENARIOS ?? 'single,paced,warm,cold').split(',').map((s) => s.trim()),
);
/**
 * The paced scenario: N claims on the warm pool, created at this steady rate (open loop), below
 * what the burst shows this machine serves: a claim's latency under a sustained load that does
 * not pile up. (A burst of creates as fast as they go measures throughput; its latency is mostly
 * the queue: 32 creates in flight take 32 / throughput each, before any controller sees them.)
 */
const PACED_PER_S = Number(process.env.BENCH_K8S_PACED_PER_S ?? 40);

const TEMPLATE = {
  apiVersion: `${GROUP}/v1beta1`,
  kind: 'SandboxTemplate',
  metadata: { name: 'python-runtime-template', namespace: 'default' },
  spec: {
    podTemplate: {
      metadata: { labels: { sandbox: 'bench' } },
      spec: {
        runtimeClassName: 'gvisor',
        containers: [
          {
            name: 'python-runtime',
            image: 'registry.k8s.io/agent-sandbox/python-runtime-sandbox:v0.1.0',
            ports: [{ containerPort: 8888 }],
          },
        ],
      },
    },
  },
};
const pool = (name: string, replicas: number) => ({
  apiVersion: `${GROUP}/v1beta1`,
  kind: 'SandboxWarmPool',
  metadata: { name, namespace: 'default' },
  spec: { replicas, sandboxTemplateRef: { name: 'python-runtime-template' } },
});

/**
 * p50/p95/p99: from the start of the claim's create call to the watch event that shows it Ready.
 * createP50: the create call alone; existsToReadyP50: from its answer (the claim exists) to Ready.
 * With C creates in flight, the create call alone takes C / throughput on average (Little's law):
 * the share of the latency that the client's own load puts before any controller sees the claim.
 */
interface Result {
  claimsPerS: number;
  p50: number;
  p95: number;
  p99: number;
  ready: number;
  createP50: number;
  existsToReadyP50: number;
}

/**
 * Creates `n` claims on `poolName`, `concurrency` creates in flight, and times each to Ready
 * through one watch. One by one (`oneByOne`): each claim is created once the one before is Ready.
 * Paced (`perS`): claims are created at that steady rate, whatever the ones before are doing.
 */
async function claimBurst(
  kc: k8s.KubeConfig,
  label: string,
  poolName: string,
  n: number,
  opts: { concurrency?: number; oneByOne?: boolean; perS?: number } = {},
): Promise<Result> {
  const api = kc.makeApiClient(k8s.CustomObjectsApi);
  const created = new Map<string, number>();
  const exists = new Map<string, number>();
  const ready = new Map<string, number>();
  const waiting = new Map<string, () => void>();
  let finish!: () => void;
  const allReady = new Promise<void>((r) => {
    finish = r;
  });
  // Claims a list caught up with (the watch ended) are timed at the list, a little late: counted.
  let caughtUp = 0;
  const watcher = await watchBenchClaims(kc, 'default', label, (obj, at, byList) => {
    const name = obj.metadata.name as string;
    if (ready.has(name) || !created.has(name)) return;
    if (obj.status?.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True')) {
      ready.set(name, at);
      if (byList) caughtUp++;
      waiting.get(name)?.();
      if (ready.size === n) finish();
    }
  });
  const t0 = performance.now();
  const create = async (name: string) => {
    created.set(name, performance.now());
    await api.createNamespacedCustomObject({
      group: GROUP,
      version: 'v1beta1',
      plural: 'sandboxclaims',
      namespace: 'default',
      body: {
        apiVersion: `${GROUP}/v1beta1`,
        kind: 'SandboxClaim',
        metadata: { name, labels: { bench: label } },
        spec: { warmPoolRef: { name: poolName } },
      },
    });
    exists.set(name, performance.now());
  };
  if (opts.perS) {
    // Open loop: the i-th claim is created at t0 + i/rate, however long the ones before take.
    const calls: Array<Promise<void>> = [];
    for (let i = 0; i < n; i++) {
      const wait = t0 + (i * 1000) / opts.perS - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      calls.push(create(`${label}-${i}`));
    }
    await Promise.all(calls);
  } else {
    let next = 0;
    await Promise.all(
      Array.from({ length: opts.oneByOne ? 1 : (opts.concurrency ?? CONCURRENCY) }, async () => {
        while (next < n) {
          const name = `${label}-${next++}`;
          const isReady = opts.oneByOne ? new Promise<void>((r) => waiting.set(name, r)) : undefined;
          await create(name);
          await isReady;
        }
      }),
    );
  }
  // How fast claims arrived: a controller can only be as quick as that.
  process.stderr.write(
    `  ${label}: ${n} claims created in ${((performance.now() - t0) / 1000).toFixed(1)} s, ${ready.size} of them Ready by then\n`,
  );
  await Promise.race([allReady, new Promise((r) => setTimeout(r, 600_000))]);
  watcher.stop();
  if (caughtUp)
    process.stderr.write(`  (${caughtUp} claims seen Ready by a re-list after the watch ended, timed at the list)\n`);
  const latencies = [...ready].map(([name, t]) => t - created.get(name)!);
  const last = Math.max(...ready.values());
  // (A claim can be seen Ready before its create call returns: then it waited 0 after it existed.)
  const createCalls = [...exists].map(([name, t]) => t - created.get(name)!);
  const afterExists = [...ready].map(([name, t]) => Math.max(0, t - (exists.get(name) ?? t)));
  return {
    claimsPerS: ready.size / ((last - t0) / 1000),
    p50: percentile(latencies, 50),
    p95: percentile(latencies, 95),
    p99: percentile(latencies, 99),
    ready: ready.size,
    createP50: percentile(createCalls, 50),
    existsToReadyP50: percentile(afterExists, 50),
  };
}

type Kind = 'single' | 'paced' | 'warm' | 'cold';

async function scenarios(cluster: Cluster): Promise<Partial<Record<Kind, Result>>> {
  const kc = loadKubeConfig({ kubeconfig: cluster.kubeconfig });
  const api = kc.makeApiClient(k8s.CustomObjectsApi);
  const create = (plural: string, body: object) =>
    api.createNamespacedCustomObject({ group: GROUP, version: 'v1beta1', plural, namespace: 'default', body });
  await create('sandboxtemplates', TEMPLATE);
  // (The cold burst alone needs no warm pool: none is made, for a profile of cold claims only.)
  const warmPool = SCENARIOS.has('single') || SCENARIOS.has('paced') || SCENARIOS.has('warm');
  await create('sandboxwarmpools', pool('warm', warmPool ? N : 0));
  await create('sandboxwarmpools', pool('cold', 0));
  if (warmPool) await warmPoolFull(api, `pool of ${N} ready`, '');
  const r: Partial<Record<Kind, Result>> = {};
  // In this order; each warm scenario starts from a full pool. The pool's replacements are a
  // scenario's cost: they finish before the next one starts, so that it measures its own claims
  // alone (whenever a controller chooses to refill).
  const runs: Array<{ kind: Kind; what: string; pool: string; n: number; opts: Parameters<typeof claimBurst>[4] }> = [
    // A claim's own latency, with nothing queued before it: one at a time from the full pool.
    { kind: 'single', what: 'the claims one by one', pool: 'warm', n: ONE_BY_ONE_N, opts: { oneByOne: true } },
    { kind: 'paced', what: 'the paced claims', pool: 'warm', n: N, opts: { perS: PACED_PER_S } },
    { kind: 'warm', what: 'the warm burst', pool: 'warm', n: N, opts: {} },
    { kind: 'cold', what: 'the cold burst', pool: 'cold', n: N, opts: {} },
  ];
  for (const run of runs.filter((x) => SCENARIOS.has(x.kind))) {
    const before = apiStats(cluster);
    const result = (r[run.kind] = await claimBurst(kc, run.kind, run.pool, run.n, run.opts));
    process.stderr.write(`  ${run.kind}: ${result.ready}/${run.n} ready\n`);
    printStats(run.what, apiStats(cluster), before);
    if (run.pool === 'warm') await warmPoolFull(api, `pool refilled to ${N}`, ` after ${run.what}`);
  }
  return r;
}

/** Waits for the warm pool to have N ready members, and says how long that took. */
async function warmPoolFull(api: k8s.CustomObjectsApi, what: string, when: string): Promise<void> {
  const t = performance.now();
  await waitFor(
    `the warm pool to have ${N} ready`,
    async () =>
      (
        await api.getNamespacedCustomObject({
          group: GROUP,
          version: 'v1beta1',
          plural: 'sandboxwarmpools',
          namespace: 'default',
          name: 'warm',
        })
      ).status?.readyReplicas === N,
    900_000,
  );
  process.stderr.write(`  ${what} in ${((performance.now() - t) / 1000).toFixed(1)} s${when}\n`);
}

/** The four CRDs with conversion strategy None (see OUR_WEBHOOK). */
function conversionOff(cluster: Cluster): void {
  for (const crd of [
    'sandboxes.agents.x-k8s.io',
    'sandboxclaims.extensions.agents.x-k8s.io',
    'sandboxtemplates.extensions.agents.x-k8s.io',
    'sandboxwarmpools.extensions.agents.x-k8s.io',
  ]) {
    cluster.kubectl(
      'patch',
      'crd',
      crd,
      '--type=merge',
      '-p',
      JSON.stringify({ spec: { conversion: { strategy: 'None', webhook: null } } }),
    );
  }
}

interface Stats {
  requests: Map<string, number>;
  cpuS: Map<string, number>;
}

/**
 * BENCH_K8S_API_STATS=1: the API server's request counts by verb and resource (every client)
 * and each process's CPU seconds, so that a scenario's share is the difference of two of these.
 */
function apiStats(cluster: Cluster): Stats | undefined {
  if (!process.env.BENCH_K8S_API_STATS) return undefined;
  const requests = new Map<string, number>();
  const text = execFileSync('kubectl', ['--kubeconfig', cluster.kubeconfig, 'get', '--raw', '/metrics'], {
    encoding: 'utf8',
    maxBuffer: 1 << 28,
  });
  for (const line of text.split('\n')) {
    // Calls to a conversion webhook (ours: the API server converting objects between versions).
    if (line.startsWith('apiserver_crd_conversion_webhook_duration_seconds_count{')) {
      const labels = Object.fromEntries([...line.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
      const key = `conversion webhook ${labels.crd_name} ${labels.from_version}→${labels.to_version}`;
      requests.set(key, (requests.get(key) ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1)));
      continue;
    }
    if (!line.startsWith('apiserver_request_total{')) continue;
    const labels = Object.fromEntries([...line.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    if (!/sandbox|pods|events|services|bindings/.test(labels.resource ?? '')) continue;
    const key = `${labels.verb} ${labels.resource}${labels.subresource ? `/${labels.subresource}` : ''}${/^2/.test(labels.code ?? '') ? '' : ` (${labels.code})`}`;
    requests.set(key, (requests.get(key) ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1)));
  }
  // CPU time of each part of the cluster and of the controllers (all on this machine), from ps.
  const cpuS = new Map<string, number>();
  for (const line of execFileSync('ps', ['-eo', 'cputimes=,args='], { encoding: 'utf8' }).split('\n')) {
    const m = /^\s*(\d+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const args = m[2]!;
    const who = /controller\/main\.ts|agent-sandbox-controller/.test(args)
      ? 'controller'
      : args.includes(cluster.dir) || /kubeconfig/.test(args)
        ? /(kube-apiserver|etcd|kwok|kube-scheduler|kube-controller-manager)/.exec(args)?.[1]
        : undefined;
    if (who) cpuS.set(who, (cpuS.get(who) ?? 0) + Number(m[1]));
  }
  return { requests, cpuS };
}

function printStats(what: string, after: Stats | undefined, before: Stats | undefined): void {
  if (!after || !before) return;
  process.stderr.write(`  API requests during ${what}:\n`);
  const diff = [...after.requests]
    .map(([k, v]) => [k, v - (before.requests.get(k) ?? 0)] as const)
    .filter(([, v]) => v > 0);
  for (const [k, v] of diff.sort((a, b) => b[1] - a[1])) process.stderr.write(`  ${String(v).padStart(7)}  ${k}\n`);
  process.stderr.write(
    `  CPU seconds during ${what}: ${[...after.cpuS].map(([k, v]) => `${k} ${v - (before.cpuS.get(k) ?? 0)}`).join(', ')}\n`,
  );
}

async function main(): Promise<void> {
  if (KWOK_KINDS.some((k) => SCENARIOS.has(k))) await kwokScenarios();
  if (SCENARIOS.has('real-node'))
    await realNodeBench({ only: ONLY, sharedArgs: SHARED_ARGS, ourWebhook: OUR_WEBHOOK, conversionOff });
}

const KWOK_KINDS: Kind[] = ['single', 'paced', 'warm', 'cold'];

/** The four scenarios on KWOK's nodes, both controllers, and their table. */
async function kwokScenarios(): Promise<void> {
  const results: Array<[string, Partial<Record<Kind, Result>>]> = [];
  if (ONLY !== 'upstream') {
    process.stderr.write(
      `our controller (N=${N}${SHARED_ARGS.length ? `, ${SHARED_ARGS.join(' ')}` : ''}, conversion ${OUR_WEBHOOK ? 'by our webhook' : "off, as for upstream's"})\n`,
    );
    const ours = await startHarness({ controllerArgs: ['--leader-elect=false', ...SHARED_ARGS], webhook: OUR_WEBHOOK });
    if (!OUR_WEBHOOK) conversionOff(ours.cluster);
    try {
      results.push(['ours', await scenarios(ours.cluster)]);
    } finally {
      await ours.stop();
    }
  }
  if (ONLY !== 'ours') {
    process.stderr.write(
      `upstream's controller v0.5.6 (N=${N}${SHARED_ARGS.length ? `, ${SHARED_ARGS.join(' ')}` : ''}, conversion off)\n`,
    );
    const cluster = await startCluster();
    try {
      installUpstreamCrds(cluster);
      conversionOff(cluster);
      const up = await startUpstreamController(cluster, SHARED_ARGS);
      try {
        results.push(['upstream v0.5.6', await scenarios(cluster)]);
      } finally {
        await up.stop();
      }
    } finally {
      await cluster.stop();
    }
  }

  const ms = (v: number) => `${v.toFixed(0)} ms`;
  const rows: string[][] = [];
  const scenario: Record<Kind, string> = {
    single: `${ONE_BY_ONE_N} claims one by one, warm pool of ${N}`,
    paced: `${N} claims at ${PACED_PER_S}/s, warm pool of ${N}`,
    warm: `${N} claims, warm pool of ${N}`,
    cold: `${N} claims, cold (pool of 0)`,
  };
  for (const kind of ['single', 'paced', 'warm', 'cold'] as const) {
    for (const [who, r] of results) {
      const x = r[kind];
      if (!x) continue;
      const n = kind === 'single' ? ONE_BY_ONE_N : N;
      rows.push([
        scenario[kind],
        who,
        `${x.ready}/${n}`,
        x.claimsPerS.toFixed(1),
        ms(x.p50),
        ms(x.p95),
        ms(x.p99),
        ms(x.createP50),
        ms(x.existsToReadyP50),
      ]);
    }
  }
  console.log(
    table(
      [
        'scenario',
        'controller',
        'Ready',
        'claims/s',
        'claim→Ready p50',
        'p95',
        'p99',
        'create call p50',
        'created→Ready p50',
      ],
      rows,
    ),
  );
  const ratio = (kind: 'warm' | 'cold') =>
    (results[0]![1][kind]!.claimsPerS / results[1]![1][kind]!.claimsPerS).toFixed(2);
  if (results.length < 2 || !SCENARIOS.has('warm') || !SCENARIOS.has('cold')) return;
  console.log(
    `\nthroughput, ours / upstream: warm ${ratio('warm')}×, cold ${ratio('cold')}×  (${CONCURRENCY} creates in flight; 2-core machine; KWOK pods)`,
  );
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
