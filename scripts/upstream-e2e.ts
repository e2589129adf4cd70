// npm run upstream:e2e [-- --version v0.5.6] [--run REGEX] [--only ours|upstream] [--json FILE] [--real-node]
// Upstream's own e2e suites against our controller and against upstream's (built from the module
// at the suite's version, with its own CRDs), one after the other on fresh clusters of this
// machine, and a table of each test's result with both. Not in CI (it takes about twice as long as
// the CI job that runs the suites against ours: test/k8s/upstream-e2e.test.ts).
// --real-node: only the tests that need running pods (upstream-e2e.ts: REAL_NODE_RUN), on a real
// node (test/k8s/node.ts; root, and `flock /tmp/asb-realnode.lock` around it), the Python runtime
// and sandboxd images (ours) served under upstream's names (test/k8s/upstream-e2e-real-node.test.ts
// runs them with our controller; upstream's only creates the pods, its tests talk to our daemons).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startCluster, type Cluster } from '../test/k8s/cluster.ts';
import { startHarness } from '../test/k8s/harness.ts';
import { startRealNode, type RealNode } from '../test/k8s/node.ts';
import { installUpstreamCrds, startUpstreamController } from '../test/k8s/upstream.ts';
import {
  REAL_NODE_PACKAGE,
  REAL_NODE_RUN,
  SUITES,
  ensureSuiteBinaries,
  labKwokStages,
  prepareLab,
  prepareRealNodeLab,
  realNodeEnv,
  runSuitePackage,
  type Suite,
  type TestResult,
} from '../test/k8s/upstream-e2e.ts';
import { RUNTIME_IMAGES, UPSTREAM_E2E_IMAGES, serveRuntimeImages, type ServedImages } from './runtime-images.ts';

const { values } = parseArgs({
  options: {
    version: { type: 'string', multiple: true },
    run: { type: 'string' },
    only: { type: 'string' },
    json: { type: 'string' },
    'real-node': { type: 'boolean' },
  },
});
/** With --real-node: the images' registry, served once for every cluster. */
let served: ServedImages | undefined;
const log = (m: string) => process.stderr.write(`${m}\n`);

async function runAll(suite: Suite, cluster: Cluster, who: string): Promise<TestResult[]> {
  const results: TestResult[] = [];
  const artifacts = join(cluster.dir, 'artifacts', suite.version);
  const packages = ensureSuiteBinaries(suite, log).filter((p) => !served || p.pkg === REAL_NODE_PACKAGE);
  for (const pkg of packages)
    results.push(
      ...(await runSuitePackage(cluster, pkg, {
        run: values.run ?? (served ? REAL_NODE_RUN : undefined),
        ...(served ? { skip: '', env: realNodeEnv(artifacts) } : {}),
        artifacts,
        onResult: (r) => {
          log(`${suite.version} ${who.padEnd(8)} ${r.result.padEnd(4)} ${r.test} (${r.seconds}s)`);
          if (r.result === 'fail') log(r.output.replace(/^/gm, '    '));
        },
      })),
    );
  return results;
}

/** With --real-node: a real node in `cluster` (its pods pulled through the served registry). */
async function lab(cluster: Cluster): Promise<RealNode | undefined> {
  if (!served) {
    prepareLab(cluster);
    return undefined;
  }
  const node = await startRealNode(cluster, { log, taint: false, mirrors: served.mirrors });
  prepareRealNodeLab(cluster, node);
  return node;
}

async function ours(suite: Suite): Promise<TestResult[]> {
  const h = await startHarness({ controllerArgs: ['--leader-elect=false'], kwokStages: labKwokStages() });
  let node: RealNode | undefined;
  try {
    node = await lab(h.cluster);
    return await runAll(suite, h.cluster, 'ours');
  } finally {
    await node?.stop();
    await h.stop();
  }
}

async function theirs(suite: Suite): Promise<TestResult[]> {
  const cluster = await startCluster({ log, kwokStages: labKwokStages() });
  let controller: Awaited<ReturnType<typeof startUpstreamController>> | undefined;
  let node: RealNode | undefined;
  try {
    // Its CRDs first: its informers cannot start without them.
    installUpstreamCrds(cluster, suite.version);
    node = await lab(cluster);
    controller = await startUpstreamController(cluster, [], suite.version);
    return await runAll(suite, cluster, 'upstream');
  } finally {
    await controller?.stop();
    await node?.stop();
    await cluster.stop();
  }
}

async function main(): Promise<void> {
  if (values['real-node']) served = await serveRuntimeImages({ images: [RUNTIME_IMAGES[0], ...UPSTREAM_E2E_IMAGES] });
  try {
    await compare();
  } finally {
    await served?.stop();
  }
}

async function compare(): Promise<void> {
  const suites = values.version ? SUITES.filter((s) => values.version!.includes(s.version)) : SUITES;
  const report: Array<{ version: string; test: string; upstream?: TestResult; ours?: TestResult }> = [];
  for (const suite of suites) {
    const t: Record<string, TestResult[]> = {};
    if (values.only !== 'ours') t.upstream = await theirs(suite);
    if (values.only !== 'upstream') t.ours = await ours(suite);
    const names = [...new Set([...(t.upstream ?? []), ...(t.ours ?? [])].map((r) => r.test))];
    for (const test of names)
      report.push({
        version: suite.version,
        test,
        upstream: t.upstream?.find((r) => r.test === test),
        ours: t.ours?.find((r) => r.test === test),
      });
  }
  if (values.json) writeFileSync(values.json, JSON.stringify(report, null, 2));
  const cell = (r?: TestResult) => (r ? `${r.result} (${Math.round(r.seconds)} s)` : '—');
  console.log(`\nupstream's e2e suites, ${new Date().toISOString()}\n`);
  console.log("| suite | test | upstream's controller | ours |");
  console.log('|---|---|---|---|');
  for (const r of report) console.log(`| ${r.version} | ${r.test} | ${cell(r.upstream)} | ${cell(r.ours)} |`);
  for (const version of new Set(report.map((r) => r.version))) {
    const rows = report.filter((r) => r.version === version);
    const passed = (k: 'upstream' | 'ours') => rows.filter((r) => r[k]?.result === 'pass').length;
    const ran = (k: 'upstream' | 'ours') => rows.filter((r) => r[k] && r[k].result !== 'skip').length;
    console.log(
      `\n${version}: upstream's controller passed ${passed('upstream')} of ${ran('upstream')}, ours ${passed('ours')} of ${ran('ours')}`,
    );
    const gaps = rows.filter((r) => r.upstream?.result === 'pass' && r.ours && r.ours.result !== 'pass');
    if (gaps.length) console.log(`passing with upstream's and not with ours: ${gaps.map((g) => g.test).join(', ')}`);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
