// The controller's command line: upstream's flag names and value formats (pure parsing).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseControllerFlags, parseGoDuration } from '../src/controller/main.ts';

describe('controller flags', () => {
  it("reads Go durations as upstream's duration flags take them", () => {
    assert.equal(parseGoDuration('0'), 0);
    assert.equal(parseGoDuration('500ms'), 500);
    assert.equal(parseGoDuration('2s'), 2000);
    assert.equal(parseGoDuration('1m30s'), 90_000);
    assert.equal(parseGoDuration('1.5s'), 1500);
    for (const bad of ['', '2', 'two seconds', '2s junk', '-1s'])
      assert.throws(() => parseGoDuration(bad), /not a duration/, bad);
  });

  it("takes upstream v0.5's refill shaping and claim-event flags, with upstream's defaults", () => {
    const defaults = parseControllerFlags([]);
    assert.deepEqual(
      [defaults.sandboxWarmPoolReplenishDelayMs, defaults.sandboxWarmPoolMaxRefillRate, defaults.disableClaimEvents],
      [0, 0, false],
    );
    const set = parseControllerFlags([
      '--sandbox-warm-pool-replenish-delay=2s',
      '--sandbox-warm-pool-max-refill-rate',
      '20',
      '--disable-claim-events',
    ]);
    assert.deepEqual(
      [set.sandboxWarmPoolReplenishDelayMs, set.sandboxWarmPoolMaxRefillRate, set.disableClaimEvents],
      [2000, 20, true],
    );
    assert.throws(() => parseControllerFlags(['--sandbox-warm-pool-max-refill-rate=NaN']), /finite number/);
    // Ours, not upstream's: claims first, 30 s at most; 0 turns it off.
    assert.equal(defaults.claimsFirstMaxDeferMs, 30_000);
    assert.equal(parseControllerFlags(['--claims-first-max-defer=0']).claimsFirstMaxDeferMs, 0);
    // A refill while claims are still busy: 20 a second by default; 0 for no limit.
    assert.equal(defaults.claimsFirstRefillRate, 20);
    assert.equal(parseControllerFlags(['--claims-first-refill-rate', '0']).claimsFirstRefillRate, 0);
    assert.throws(() => parseControllerFlags(['--claims-first-refill-rate=-1']), /claims-first-refill-rate/);
  });

  it("takes upstream's warm-pool readiness grace period and unschedulable recheck interval, positive only", () => {
    const defaults = parseControllerFlags([]);
    assert.deepEqual(
      [defaults.sandboxWarmPoolReadinessGracePeriodMs, defaults.sandboxWarmPoolUnschedulableRecheckIntervalMs],
      [300_000, 60_000],
    );
    const set = parseControllerFlags([
      '--sandbox-warm-pool-readiness-grace-period=10m',
      '--sandbox-warm-pool-unschedulable-recheck-interval',
      '15s',
    ]);
    assert.deepEqual(
      [set.sandboxWarmPoolReadinessGracePeriodMs, set.sandboxWarmPoolUnschedulableRecheckIntervalMs],
      [600_000, 15_000],
    );
    assert.throws(
      () => parseControllerFlags(['--sandbox-warm-pool-readiness-grace-period=0']),
      /must be a positive duration/,
    );
  });
});
