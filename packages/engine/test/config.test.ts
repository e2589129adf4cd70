import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { agentKind, loadConfig } from '../src/config.ts';
import { runscNeedsStatxShim } from '../src/drivers/gvisor.ts';

describe('engine configuration (pure parts)', () => {
  it('runs the Go agent by default when it was built beside the bundle, node otherwise', () => {
    const dist = mkdtempSync(join(tmpdir(), 'asb-config-'));
    try {
      const bundle = join(dist, 'agent.cjs');
      assert.equal(agentKind(undefined, bundle), 'node');
      writeFileSync(join(dist, 'asb-agent'), '');
      assert.equal(agentKind(undefined, bundle), 'go');
      assert.equal(agentKind('', bundle), 'go');
      assert.equal(agentKind('node', bundle), 'node');
      assert.equal(loadConfig({}, { ASB_AGENT_PATH: bundle }).agent, 'go');
      assert.equal(loadConfig({}, { ASB_AGENT_PATH: bundle, ASB_AGENT: 'node' }).agent, 'node');
      assert.throws(() => agentKind('python', bundle), /ASB_AGENT must be "node" or "go", got "python"/);
    } finally {
      rmSync(dist, { recursive: true, force: true });
    }
  });

  it('takes ASB_RUNSC before any runsc it finds', () => {
    assert.equal(loadConfig({}, { ASB_RUNSC: '/opt/runsc' }).runscPath, '/opt/runsc');
  });

  it('preloads the statx shim only for runsc releases that refuse AT_NO_AUTOMOUNT', () => {
    assert.equal(runscNeedsStatxShim('runsc version 0.0~20221219.0'), true); // Debian 12's
    assert.equal(runscNeedsStatxShim('runsc version release-20260905.0-160fafc42237'), false);
    assert.equal(runscNeedsStatxShim('runsc version VERSION_MISSING'), true);
    assert.equal(runscNeedsStatxShim(undefined), true);
  });
});
