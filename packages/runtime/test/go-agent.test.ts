// The Go agent (packages/runtime/agent-go), a static binary, run as the local engine runs it with
// ASB_AGENT=go: the same behaviour suite as the node agent, over HTTP/2 on fd 0, alone and under
// asb-spawn (the local sandbox's PID 1).
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runtimeSuite } from './support/suite.ts';
import { buildAsbSpawn, buildGoAgent, hasProc, startChildOverFd, waitFor } from './support/harness.ts';

const dir = mkdtempSync(join(tmpdir(), 'asb-go-agent-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const goAgent = buildGoAgent(dir);
const asbSpawn = buildAsbSpawn(dir);
const skip =
  typeof goAgent !== 'string'
    ? goAgent.skip
    : typeof asbSpawn !== 'string'
      ? asbSpawn.skip
      : hasProc
        ? undefined
        : 'needs /proc to check that process trees are gone';

runtimeSuite('the Go agent as a child over HTTP/2 on fd 0', () => startChildOverFd({ agent: goAgent as string }), {
  skip,
});
runtimeSuite(
  'the Go agent under asb-spawn over HTTP/2 on fd 0',
  () => startChildOverFd({ agent: goAgent as string, asbSpawn: asbSpawn as string }),
  { skip },
);

describe('the Go agent over fd 0 when the connection ends', { skip }, () => {
  it('keeps running with nothing else to wait for', async () => {
    const agent = await startChildOverFd({ agent: goAgent as string, env: { ASB_DEBUG: '1' } });
    try {
      agent.closeConnection();
      await waitFor(
        () => agent.stderr().includes('connection closed'),
        () => `the agent did not see the connection close: ${agent.stderr()}`,
      );
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(agent.child!.exitCode, null, `the agent exited: ${agent.stderr()}`);
      assert.equal(agent.child!.signalCode, null);
    } finally {
      await agent.stop();
    }
  });
});
