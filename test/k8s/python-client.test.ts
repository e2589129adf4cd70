// Upstream's Python client from PyPI (k8s-agent-sandbox 0.4.6, as in the seeds, and 1.0.8, the
// newest) against our controller and our router: it makes its claims, watches them Ready, runs a
// command and moves files through the router to our runtime agent (on loopback: KWOK's pods have
// no network, so the router is told where the agent is), and terminates.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import { configFromEnv, createAgent, requestHandler, serveHttp1 } from '@asb/runtime';
import { createRouter } from '../../packages/k8s/src/router/router.ts';
import { startHarness, waitFor, repo, type Harness } from './harness.ts';
import { PYTHON_CLIENT_VERSIONS, pythonClient } from './python.ts';

const run = promisify(execFile);
const TOKEN = 'python-client-router-token';

describe("upstream's Python client against our controller and router", { timeout: 600_000 }, () => {
  let h: Harness;
  const routers: Record<'open' | 'token', string> = { open: '', token: '' };
  const closers: Array<() => void> = [];
  const baseDir = mkdtempSync(join(tmpdir(), 'asb-pyclient-'));

  before(async () => {
    h = await startHarness({ controllerArgs: ['--leader-elect=false'] });
    const env = { PATH: process.env.PATH, SANDBOX_BASE_DIR: baseDir };
    const agent = await serveHttp1(
      await requestHandler(createAgent(configFromEnv(env), undefined, env).app),
      '127.0.0.1',
      0,
    );
    closers.push(() => {
      agent.server.closeAllConnections();
      agent.server.close();
    });
    // v0.4's router had no auth (its client sends no token); v0.5's wants a bearer token.
    for (const [kind, o] of [
      ['open', { allowUnauthenticated: true }],
      ['token', { token: TOKEN }],
    ] as const) {
      const router: http.Server = createRouter({ ...o, backend: { host: '127.0.0.1', port: agent.port } });
      await new Promise<void>((r) => router.listen(0, '127.0.0.1', r));
      closers.push(() => {
        router.closeAllConnections();
        router.close();
      });
      routers[kind] = `http://127.0.0.1:${(router.address() as AddressInfo).port}`;
    }
    h.apply(readFileSync(join(repo, 'packages/api/test/fixtures/seed001-template-and-pool.yaml'), 'utf8'));
    await waitFor(
      '2 ready pool members',
      () => h.get('sandboxwarmpools.extensions.agents.x-k8s.io', 'python-sandbox-warmpool').status?.readyReplicas === 2,
      120_000,
    );
  });
  after(async () => {
    for (const c of closers) c();
    await h?.stop();
    rmSync(baseDir, { recursive: true, force: true });
  });

  for (const version of PYTHON_CLIENT_VERSIONS) {
    it(`k8s-agent-sandbox ${version}: create_sandbox is Ready, commands and files reach our agent, terminate deletes the claim`, async () => {
      const python = pythonClient(version);
      const v05 = !version.startsWith('0.4');
      const env = {
        ...process.env,
        KUBECONFIG: h.cluster.kubeconfig,
        ROUTER_URL: v05 ? routers.token : routers.open,
        ...(v05 ? { ROUTER_TOKEN: TOKEN } : {}),
      };
      const { stdout } = await run(python, [join(repo, 'test/k8s/python/client_flow.py')], { env, timeout: 180_000 });
      const seen = JSON.parse(stdout.trim().split('\n').pop()!);
      assert.equal(seen.version, version);
      assert.match(seen.claim ?? '', /^sandbox-claim-[0-9a-f]{8}$|^$/);
      assert.ok(seen.sandbox, 'the client resolved its sandbox');
      assert.equal(seen.stdout, 'hello from the python client\n');
      assert.equal(seen.exit_code, 0);
      assert.deepEqual(seen.read, [...Buffer.from('bytes \x00\x01 from python', 'latin1')]);
      assert.equal(seen.exists, true);
      assert.equal(seen.missing, false);
      assert.ok(seen.names.includes('py.txt'), JSON.stringify(seen.names));
      assert.equal(seen.status[0], 'SandboxReady');
      // terminate() deleted the claim; its sandbox and pod are collected with it.
      await waitFor(
        "the claim's sandbox to be collected",
        () => !h.find('sandboxes.agents.x-k8s.io', seen.sandbox),
        60_000,
      );
    });
  }
});
