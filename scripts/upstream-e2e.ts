// npm run upstream:e2e [-- --version v0.5.6] [--run REGEX] [--only ours|upstream] [--json FILE]
// Upstream's own e2e suites against our controller and against upstream's (built from the module
// at the suite's version, with its own CRDs), one after the other on fresh clusters of this
// machine, and a table of each test's result with both. Not in CI (it takes about twice as long as
// the CI job that runs the suites against ours: test/k8s/upstream-e2e.test.ts).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startCluster, type Cluster } from '../test/k8s/cluster.ts';
import { startHarness } from '../test/k8s/harness.ts';
import { installUpstreamCrds, startUpstreamController } from '../test/k8s/upstream.ts';
import {
  SUITES,
  ensureSuiteBinaries,
  labKwokStages,
  prepareLab,
  runSuitePackage,
  type Suite,
  type TestResult,
} from '../test/k8s/upstream-e2e.ts';

const { values } = parseArgs({
  options: {
    version: { type: 'string', multiple: true },
    run: { type: 'string' },
    only: { type: 'string' },
    json: { type: 'string' },
  },
});
const log = (m: string) => process.stderr.write(`${m}\n`);

async function runAll(suite: Suite, cluster: Cluster, who: string): Promise<TestResult[]> {
  const results: TestResult[] = [];
  for (const pkg of ensureSuiteBinaries(suite, log))
    results.push(
      ...(await runSuitePackage(cluster, pkg, {
        run: values.run,
        artifacts: join(cluster.dir, 'artifacts'),
        onResult: (r) => {
          log(`${suite.version} ${who.padEnd(8)} ${r.result.padEnd(4)} ${r.test} (${r.seconds}s)`);
          if (r.result === 'fail') log(r.output.replace(/^/gm, '    '));
        },
      })),
    );
  return results;
}

async function ours(suite: Suite): Promise<TestResult[]> {
  const h = await startHarness({ controllerArgs: ['--leader-elect=false'], kwokStages: labKwokStages() });
  try {
    prepareLab(h.cluster);
    return await runAll(suite, h.cluster, 'ours');
  } finally {
    await h.stop();
  }
}

async function theirs(suite: Suite): Promise<TestResult[]> {
  const cluster = await startCluster({ log, kwokStages: labKwokStages() });
  let controller: Awaited<ReturnType<typeof startUpstreamController>> | undefined;
  try {
    // Its CRDs first: its informers cannot start without them.
    installUpstreamCrds(cluster, suite.version);
    prepareLab(cluster);
    controller = await startUpstreamController(cluster, [], suite.version);
    return await runAll(suite, cluster, 'upstream');
  } finally {
    await controller?.stop();
    await cluster.stop();
  }
}

async function main(): Promise<void> {
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
