// The agent as the local engine runs it: a child process serving HTTP/2 with prior knowledge on
// fd 0, one end of a socketpair; then the same under asb-spawn, the local sandbox's PID 1.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runtimeSuite } from './support/suite.ts';
import { buildAsbSpawn, hasProc, startChildOverFd, waitFor } from './support/harness.ts';

const needsProc = hasProc ? undefined : 'needs /proc to check that process trees are gone';
runtimeSuite('the agent as a child over HTTP/2 on fd 0', () => startChildOverFd(), { skip: needsProc });

const spawnerDir = mkdtempSync(join(tmpdir(), 'asb-spawn-'));
after(() => rmSync(spawnerDir, { recursive: true, force: true }));
const asbSpawn = buildAsbSpawn(spawnerDir);
runtimeSuite(
  'the agent under asb-spawn over HTTP/2 on fd 0',
  () => startChildOverFd({ asbSpawn: asbSpawn as string }),
  { skip: typeof asbSpawn === 'string' ? needsProc : asbSpawn.skip },
);

describe('the agent over fd 0 when the connection ends', () => {
  it('keeps running with nothing else to wait for', async () => {
    const agent = await startChildOverFd({ env: { ASB_DEBUG: '1' } });
    try {
      agent.closeConnection();
      await waitFor(
        () => agent.stderr().includes('connection closed'),
        () => `the agent did not see the connection close: ${agent.stderr()}`,
      );
      // Node exits right after the close when nothing keeps its event loop alive: give it the chance.
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(agent.child!.exitCode, null, `the agent exited: ${agent.stderr()}`);
      assert.equal(agent.child!.signalCode, null);
    } finally {
      await agent.stop();
    }
  });
});
