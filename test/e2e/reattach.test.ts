// Re-attaching to a gVisor sandbox whose engine connection is gone (the engine died): the driver
// and the agent client alone, as a restarted engine would use them, on a real runsc.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  chownSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { resolveImage } from '@asb/engine';
import { GvisorDriver } from '../../packages/engine/src/drivers/gvisor.ts';
import { AgentClient } from '../../packages/engine/src/agent-client.ts';
import { ExecuteResponse, HealthResponse, ProcessList, StartProcessResponse } from '@asb/runtime/replies';
import { AGENT_MOUNT, type SandboxRuntimeSpec } from '../../packages/engine/src/drivers/runtime-spec.ts';
import { prepareRootfs, SANDBOX_GID, SANDBOX_UID } from '../../packages/engine/src/rootfs.ts';
import { agentKind } from '../../packages/engine/src/config.ts';
import type { DriverHandle, DriverPaths } from '../../packages/engine/src/drivers/driver.ts';
import { sleep, waitFor } from '../support/wait.ts';

const dist = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '../../dist');

/** An agent client once the agent answers on it. */
async function connect(handle: DriverHandle): Promise<AgentClient> {
  const agent = new AgentClient(handle.socket);
  await waitFor(
    'the agent to answer',
    async () => (await agent.json('GET', '/', HealthResponse)).status === 200,
    30_000,
    50,
  );
  return agent;
}

async function sh(agent: AgentClient, command: string): Promise<string> {
  const res = await agent.json('POST', '/execute', ExecuteResponse, { command });
  assert.equal(res.status, 200);
  assert.ok(res.ok);
  const { body } = res;
  assert.equal(body.exit_code, 0, `${command}: exit code ${body.exit_code}`);
  return body.stdout;
}

/** Host processes whose command line names the container: runsc run/exec, the sandbox, the gofer. */
function hostProcessesOf(containerId: string, what?: string): string[] {
  const out: string[] = [];
  for (const pid of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    let args: string;
    try {
      args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
    } catch {
      continue;
    }
    if (args.includes(containerId) && (!what || args.includes(what))) out.push(`${pid}: ${args}`);
  }
  return out;
}

describe(
  're-attaching to a running gVisor sandbox',
  { skip: existsSync(join(dist, 'asb-spawn')) ? undefined : 'run npm run build (dist/asb-spawn)' },
  () => {
    const home = mkdtempSync(join(tmpdir(), 'asb-reattach-'));
    // The engine that started the sandbox, then dies; and the one that comes after it (same state
    // directory, nothing else in common), which attaches and destroys.
    const dead = new GvisorDriver('runsc', join(home, 'runsc'));
    const driver = new GvisorDriver('runsc', join(home, 'runsc'));
    const id = `asb-test-${randomBytes(4).toString('hex')}`;
    const paths: DriverPaths = { dir: join(home, 'sandbox'), logFile: join(home, 'sandbox', 'sandbox.log') };
    const runscState = () =>
      JSON.parse(execFileSync('runsc', ['--root', join(home, 'runsc'), 'state', id], { encoding: 'utf8' })) as {
        status: string;
        pid: number;
      };
    let first: DriverHandle;
    let bg: { id: string; pid: number };
    // The agent client, the sandbox and its watch keep no event loop alive (an engine has its
    // server for that): without this, node would end the test while it waits on the agent.
    const keepAlive = setInterval(() => undefined, 60_000);

    before(async () => {
      // What the engine's installAgent and workloads prepare, reduced to what this test needs.
      const agentDir = join(home, 'agent');
      mkdirSync(agentDir);
      for (const f of ['agent.cjs', 'asb-agent', 'asb-spawn', 'statx-shim.so'])
        if (existsSync(join(dist, f))) copyFileSync(join(dist, f), join(agentDir, f));
      const workspaceDir = join(paths.dir, 'workspace');
      mkdirSync(workspaceDir, { recursive: true });
      chownSync(workspaceDir, SANDBOX_UID, SANDBOX_GID);
      const spec: SandboxRuntimeSpec = {
        hostname: 'reattach',
        rootfs: prepareRootfs(home),
        workspaceDir,
        agentDir,
        image: resolveImage('python:3.12'),
        env: {},
        workingDir: '/app',
        limits: { memoryBytes: 512 * 1024 * 1024, cpuMillis: 1000, pidsLimit: 256 },
        tmpfsBytes: 64 * 1024 * 1024,
        preload: existsSync(join(agentDir, 'statx-shim.so')) ? `${AGENT_MOUNT}/statx-shim.so` : undefined,
        spawner: `${AGENT_MOUNT}/asb-spawn`,
        agent: agentKind(process.env.ASB_AGENT),
      };
      first = await dead.start(id, spec, paths);
      const agent = await connect(first);
      const started = await agent.json('POST', '/v1/processes', StartProcessResponse, { command: 'sleep 300' });
      assert.ok(started.ok);
      bg = started.body;
      await sh(agent, 'echo survives > state.txt');
      // The engine dies: its end of the socketpair goes, nothing else.
      agent.close();
      first.socket.destroy();
    });

    after(async () => {
      clearInterval(keepAlive);
      await driver.destroy(id).catch(() => undefined);
      rmSync(home, { recursive: true, force: true });
    });

    it('keeps the sandbox running when the connection goes', async () => {
      await sleep(500);
      assert.equal(runscState().status, 'running');
      const settled = await Promise.race([first.exited.then(() => true), sleep(100).then(() => false)]);
      assert.equal(settled, false, 'the sandbox exited with its connection');
    });

    it('reaches the same agent again: its processes and files, and new commands', async () => {
      const handle = await driver.attach(id, paths);
      assert.ok(handle, 'attach found the sandbox');
      assert.equal(handle.pid, runscState().pid);
      const agent = await connect(handle);
      const listed = await agent.json('GET', '/v1/processes', ProcessList);
      assert.ok(listed.ok);
      const procs = listed.body;
      assert.ok(
        procs.some((p) => p.id === bg.id && p.pid === bg.pid && p.running),
        `background process still running: ${JSON.stringify(procs)}`,
      );
      assert.equal(await sh(agent, 'cat state.txt'), 'survives\n');
      assert.equal(await sh(agent, 'echo again; ps -eo args | grep -c "^sleep 300"'), 'again\n1\n');
      // A closed connection ends its relay (the EOF goes through to the agent and back).
      agent.close();
      handle.socket.destroy();
      await waitFor('the relay to end', () => hostProcessesOf(id, ' exec ').length === 0, 10_000, 50);
    });

    it('attaches again after that, and again when the relay alone dies', async () => {
      const handle = await driver.attach(id, paths);
      assert.ok(handle);
      const agent = await connect(handle);
      assert.equal(await sh(agent, 'cat state.txt'), 'survives\n');
      // One relay in the sandbox: this one (the last one ended with its connection).
      assert.equal(await sh(agent, "pgrep -fc '[a]sb-spawn --relay'"), '1\n');
      // The relay is killed from inside ([a] so that the shell running pkill does not match itself).
      const closed = new Promise<void>((r) => handle.socket.once('close', () => r()));
      await agent.json('POST', '/v1/processes', StartProcessResponse, {
        command: "sleep 0.2; pkill -f '[a]sb-spawn --relay'",
      });
      await closed;
      // The sandbox lives on: its exit is not reported (the watch looks once a second).
      await sleep(1500);
      assert.equal(await Promise.race([handle.exited.then(() => true), sleep(10).then(() => false)]), false);
      assert.equal(runscState().status, 'running');
      const again = await driver.attach(id, paths);
      assert.ok(again);
      const agent2 = await connect(again);
      assert.equal(await sh(agent2, 'cat state.txt'), 'survives\n');
      agent2.close();
    });

    it('resumes a sandbox left paused (an engine that died during a snapshot in place) and attaches', async () => {
      execFileSync('runsc', ['--root', join(home, 'runsc'), 'pause', id]);
      assert.equal(runscState().status, 'paused');
      const handle = await driver.attach(id, paths);
      assert.ok(handle, 'attach found the sandbox');
      assert.equal(runscState().status, 'running');
      const agent = await connect(handle);
      assert.equal(await sh(agent, 'cat state.txt'), 'survives\n');
      agent.close();
      handle.socket.destroy();
      await waitFor('the relay to end', () => hostProcessesOf(id, ' exec ').length === 0, 10_000, 50);
    });

    it('finds nothing to attach to under an unknown id', async () => {
      assert.equal(await driver.attach('asb-no-such-sandbox', paths), undefined);
    });

    it('after destroy: nothing to attach to, no relay or runsc process left, every handle settled', async () => {
      const handle = await driver.attach(id, paths);
      assert.ok(handle);
      const agent = await connect(handle);
      await driver.destroy(id);
      assert.equal(await driver.attach(id, paths), undefined);
      await waitFor(
        'the host processes of the sandbox to end',
        () => hostProcessesOf(id).length === 0,
        10_000,
        50,
      ).catch(() => assert.fail(`left: ${hostProcessesOf(id).join('\n')}`));
      await Promise.all([first.exited, handle.exited]);
      await waitFor('the connection to close', () => agent.closed, 5_000, 50);
    });
  },
);
