// Upstream's own e2e suites (upstream-e2e.ts) against our controller, on the control plane: every
// test upstream's controller passes in this lab must pass with ours. What upstream's controller
// itself fails here, and what ours does not pass yet, are listed with their reasons; a listed test
// that passes fails this test, so the lists only shrink. `npm run upstream:e2e` prints both
// controllers' results side by side.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startHarness, type Harness } from './harness.ts';
import {
  SUITES,
  ensureSuiteBinaries,
  labKwokStages,
  prepareLab,
  runSuitePackage,
  type TestResult,
} from './upstream-e2e.ts';

/** Tests upstream's own controller fails in this lab too (measured with `npm run upstream:e2e`). */
const FAILS_WITH_UPSTREAM: Record<string, string> = {};

/** Tests upstream's controller passes and ours does not yet, each with what is missing. */
const NOT_YET: Record<string, string> = {};

for (const suite of SUITES)
  describe(`upstream's ${suite.version} e2e suite against our controller`, () => {
    let h: Harness;
    before(async () => {
      h = await startHarness({ controllerArgs: ['--leader-elect=false'], kwokStages: labKwokStages() });
      prepareLab(h.cluster);
    });
    after(() => h?.stop());

    for (const pkg of ensureSuiteBinaries(suite))
      it(`${pkg.pkg}: every test upstream's controller passes here passes with ours`, async (t) => {
        const results: TestResult[] = await runSuitePackage(h.cluster, pkg, {
          artifacts: join(h.cluster.dir, 'artifacts'),
          onResult: (r) => t.diagnostic(`${r.result} ${r.test} (${r.seconds} s)`),
        });
        assert.ok(results.filter((r) => r.result !== 'skip').length >= 5, `too few tests ran: ${results.length}`);
        const failed = results.filter(
          (r) => r.result === 'fail' && !(r.test in FAILS_WITH_UPSTREAM) && !(r.test in NOT_YET),
        );
        const closed = results.filter(
          (r) => r.result === 'pass' && (r.test in FAILS_WITH_UPSTREAM || r.test in NOT_YET),
        );
        assert.deepEqual(
          failed.map((r) => `${r.test}\n${r.output}`),
          [],
          "tests that fail with our controller (the end of each one's output follows)",
        );
        assert.deepEqual(
          closed.map((r) => r.test),
          [],
          'listed as failing, and passing now: remove them from the lists',
        );
      });
  });
