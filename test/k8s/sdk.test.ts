// The TypeScript SDK against a cluster: Sandbox.create with a Kubernetes connection makes a
// SandboxClaim on the real API server, our controller (its own process) serves it, the SDK sees
// Ready by a watch, and the runtime calls go through our router to our runtime agent. KWOK's pods
// have no network, so the agent runs on loopback and the router is told so (ROUTER_BACKEND).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import { configFromEnv, createAgent, requestHandler, serveHttp1 } from '@asb/runtime';
import { Sandbox, kubernetes, NotFoundError, AuthError, InvalidError, type KubernetesConnection } from '@asb/sdk';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { serveHttp } from '@asb/mcp';
import { createRouter } from '../../packages/k8s/src/router/router.ts';
import { startHarness, waitFor, repo, type Harness } from './harness.ts';
import { startGkeStandIn } from './gke-standin.ts';
import { freePort } from './cluster.ts';

const ROUTER_TOKEN = 'sdk-test-router-token';
const execFileAsync = promisify(execFile);

describe(
  'the SDK on Kubernetes (claims on a real API server, runtime through our router)',
  { timeout: 600_000 },
  () => {
    let h: Harness;
    let connection: KubernetesConnection;
    let routerUrl: string;
    let metricsUrl: string;
    const closers: Array<() => void> = [];
    const baseDir = mkdtempSync(join(tmpdir(), 'asb-sdk-k8s-'));

    before(async () => {
      const metricsPort = await freePort();
      metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`;
      h = await startHarness({
        controllerArgs: ['--leader-elect=false', '--metrics-bind-address', `127.0.0.1:${metricsPort}`],
      });
      // (HOME and GOCACHE for the Go toolchain that seed 000's flows run through the agent.)
      const env = {
        PATH: process.env.PATH,
        SANDBOX_BASE_DIR: baseDir,
        HOME: baseDir,
        GOCACHE: join(baseDir, '.cache/go-build'),
        GOFLAGS: '-mod=mod',
        GOTOOLCHAIN: 'local',
      };
      const agent = await serveHttp1(
        await requestHandler(createAgent(configFromEnv(env), undefined, env).app),
        '127.0.0.1',
        0,
      );
      closers.push(() => {
        agent.server.closeAllConnections();
        agent.server.close();
      });
      const router: http.Server = createRouter({
        token: ROUTER_TOKEN,
        backend: { host: '127.0.0.1', port: agent.port },
      });
      await new Promise<void>((r) => router.listen(0, '127.0.0.1', r));
      closers.push(() => {
        router.closeAllConnections();
        router.close();
      });
      routerUrl = `http://127.0.0.1:${(router.address() as AddressInfo).port}`;
      connection = kubernetes({
        kubeconfig: h.cluster.kubeconfig,
        router: { url: routerUrl },
        routerToken: ROUTER_TOKEN,
      });
      h.apply(readFileSync(join(repo, 'packages/api/test/fixtures/seed001-template-and-pool.yaml'), 'utf8'));
      await waitFor(
        '2 ready pool members',
        () =>
          h.get('sandboxwarmpools.extensions.agents.x-k8s.io', 'python-sandbox-warmpool').status?.readyReplicas === 2,
        120_000,
      );
    });
    after(async () => {
      for (const c of closers) c();
      await h?.stop();
      rmSync(baseDir, { recursive: true, force: true });
    });

    it('creates a sandbox from a template (a claim, Ready by watch), runs a command and files through the router, and kill deletes the claim and what it owns', async () => {
      const sb = await Sandbox.create({
        connection,
        template: 'python-runtime-template',
        labels: { test: 'sdk' },
        timeoutMs: 60_000,
      });
      assert.ok(sb.info.ready);
      assert.equal(sb.info.phase, 'Running');
      assert.match(sb.info.claim ?? '', /^sandbox-claim-[0-9a-f]{8}$/);
      const claim = h.get('sandboxclaims.extensions.agents.x-k8s.io', sb.info.claim!);
      assert.equal(claim.metadata.labels.test, 'sdk');
      assert.equal(claim.metadata.labels['agents.x-k8s.io/created-by'], 'asb-sdk');
      assert.equal(claim.status.sandbox.name, sb.id);
      assert.equal(h.get('pod', sb.id).status.phase, 'Running');

      const r = await sb.run('echo "$((6 * 7))" && echo err >&2; exit 3');
      assert.deepEqual(r, { stdout: '42\n', stderr: 'err\n', exitCode: 3 });
      let streamed = '';
      await sb.run('for i in 1 2 3; do echo $i; done', {
        onStdout: (d) => {
          streamed += d;
        },
      });
      assert.equal(streamed, '1\n2\n3\n');
      await sb.files.write('dir/hello.txt', 'through the router');
      assert.equal(await sb.files.read('dir/hello.txt'), 'through the router');
      assert.deepEqual(
        (await sb.files.list('dir')).map((e) => e.name),
        ['hello.txt'],
      );
      assert.equal((await sb.refresh()).ready, true);

      await sb.kill();
      assert.equal(h.find('sandboxclaims.extensions.agents.x-k8s.io', sb.info.claim!), undefined);
      await waitFor(
        'the sandbox and its pod to be collected',
        () => !h.find('sandboxes.agents.x-k8s.io', sb.id) && !h.find('pod', sb.id),
        60_000,
      );
      await sb.kill(); // already gone: not an error
    });

    it('claims from a warm pool (v1beta1 warmPoolRef): a pre-started member is adopted', async () => {
      const members = h
        .get('sandboxes.agents.x-k8s.io', '-l', 'agents.x-k8s.io/warm-pool-sandbox')
        .items.map((s: any) => s.metadata.name);
      await using sb = await Sandbox.create({ connection, warmPool: 'python-sandbox-warmpool' });
      assert.ok(members.includes(sb.id), `${sb.id} is one of ${members.join(', ')}`);
      assert.equal(h.get('sandboxes.agents.x-k8s.io', sb.id).metadata.ownerReferences[0].name, sb.info.claim);
      assert.equal((await sb.run('echo warm')).stdout, 'warm\n');

      // Upstream's metrics, by name and labels: this claim was served warm.
      const text = await (await fetch(metricsUrl)).text();
      const count = (re: RegExp) => Number(re.exec(text)?.[1] ?? 0);
      assert.ok(
        count(
          /^agent_sandbox_claim_startup_latency_ms_count\{launch_type="warm",sandbox_template="python-runtime-template"\} (\d+)$/m,
        ) >= 1,
        text.slice(0, 2000),
      );
      assert.ok(
        count(
          /^agent_sandbox_claim_controller_startup_latency_ms_count\{launch_type="warm",sandbox_template="python-runtime-template"\} (\d+)$/m,
        ) >= 1,
      );
      // The SDK stamps client-first-requested-at on its claim, as upstream's clients do, and the
      // controller times the claim from that moment.
      assert.ok(
        h.get('sandboxclaims.extensions.agents.x-k8s.io', sb.info.claim!).metadata.annotations[
          'agents.x-k8s.io/client-first-requested-at'
        ],
      );
      assert.ok(
        count(
          /^agent_sandbox_client_claim_startup_latency_ms_count\{launch_type="warm",sandbox_template="python-runtime-template"\} (\d+)$/m,
        ) >= 1,
      );
      assert.ok(
        count(
          /^agent_sandbox_claim_creation_total\{namespace="default",sandbox_template="python-runtime-template",launch_type="warm",warmpool_name="python-sandbox-warmpool",pod_condition="ready",created_by="unknown"\} (\d+)$/m,
        ) >= 1,
      );
      assert.ok(
        count(
          /^agent_sandboxes\{namespace="default",ready_condition="true",expired="false",launch_type="warm",sandbox_template="python-runtime-template",owned_by="SandboxClaim",created_by="unknown"\} (\d+)$/m,
        ) >= 1,
      );
      assert.ok(
        count(
          /^agent_sandbox_creation_latency_ms_count\{namespace="default",launch_type="warm",sandbox_template="python-runtime-template"\} (\d+)$/m,
        ) >= 2,
        'the pool members were timed',
      );
    });

    it('connects again by claim name, and suspends and resumes through operatingMode (the pod goes and comes back)', async () => {
      const sb = await Sandbox.create({ connection, template: 'python-runtime-template', name: 'sdk-suspend' });
      try {
        const again = await Sandbox.connect('sdk-suspend', { connection });
        assert.equal(again.id, sb.id);
        assert.equal(again.info.claim, 'sdk-suspend');
        await again.suspend();
        assert.equal(h.get('sandboxes.v1beta1.agents.x-k8s.io', sb.id).spec.operatingMode, 'Suspended');
        assert.equal(h.get('sandboxes.v1alpha1.agents.x-k8s.io', sb.id).spec.replicas, 0);
        await waitFor('the pod to go', () => !h.find('pod', sb.id));
        assert.equal((await sb.refresh()).phase, 'Suspended');
        await sb.resume();
        assert.equal((await sb.refresh()).ready, true);
        assert.equal(h.get('pod', sb.id).status.phase, 'Running');
        await assert.rejects(sb.suspend({ snapshot: true }), /GKE Pod snapshots/);
      } finally {
        await sb.kill();
      }
    });

    it('fails fast and cleans up: an unknown template is NotFound and leaves no claim; a wrong router token is refused', async () => {
      const before = h.get('sandboxclaims.extensions.agents.x-k8s.io').items.length;
      await assert.rejects(
        Sandbox.create({ connection, template: 'no-such-template', timeoutMs: 30_000 }),
        (err: Error) => err instanceof NotFoundError && /TemplateNotFound/.test(err.message),
      );
      assert.equal(h.get('sandboxclaims.extensions.agents.x-k8s.io').items.length, before);
      await assert.rejects(Sandbox.connect('no-such-claim', { connection, waitReadyMs: 2_000 }), NotFoundError);

      // A router in front of no runtime (its backend port closed: an image without the runtime
      // API): create says so after its bounded wait (15 s), and leaves no claim.
      const deaf: http.Server = createRouter({
        token: ROUTER_TOKEN,
        backend: { host: '127.0.0.1', port: await freePort() },
      });
      await new Promise<void>((r) => deaf.listen(0, '127.0.0.1', r));
      try {
        const noRuntime = kubernetes({
          kubeconfig: h.cluster.kubeconfig,
          router: { url: `http://127.0.0.1:${(deaf.address() as AddressInfo).port}` },
          routerToken: ROUTER_TOKEN,
        });
        await assert.rejects(
          Sandbox.create({
            connection: noRuntime,
            warmPool: 'python-sandbox-warmpool',
            labels: { test: 'no-runtime' },
          }),
          (err: Error) =>
            err.name === 'UnavailableError' && /runtime did not answer through the router for 15 s/.test(err.message),
        );
        assert.deepEqual(h.get('sandboxclaims.extensions.agents.x-k8s.io', '-l', 'test=no-runtime').items, []);
      } finally {
        deaf.closeAllConnections();
        deaf.close();
      }

      // Refused when create reaches the sandbox through the router, and the claim is not left behind.
      const wrong = kubernetes({ kubeconfig: h.cluster.kubeconfig, router: { url: routerUrl }, routerToken: 'wrong' });
      await assert.rejects(
        Sandbox.create({ connection: wrong, warmPool: 'python-sandbox-warmpool', labels: { test: 'wrong-token' } }),
        AuthError,
      );
      assert.deepEqual(h.get('sandboxclaims.extensions.agents.x-k8s.io', '-l', 'test=wrong-token').items, []);
    });

    it("serves MCP on the cluster: a conversation's sandbox is a claim, kept across tool calls and deleted when the session ends", async () => {
      const server = await serveHttp({
        conn: {},
        connection,
        warmPool: 'python-sandbox-warmpool',
        host: '127.0.0.1',
        port: 0,
        token: 'mcp-token',
      });
      try {
        const client = new Client({ name: 'k8s-e2e', version: '1.0.0' });
        const transport = new StreamableHTTPClientTransport(new URL(server.url), {
          requestInit: { headers: { authorization: 'Bearer mcp-token' } },
        });
        await client.connect(transport);
        const call = async (name: string, args: Record<string, unknown>) =>
          (await client.callTool({ name, arguments: args })) as {
            structuredContent?: Record<string, unknown>;
            content: Array<{ text?: string }>;
            isError?: boolean;
          };
        const mine = () =>
          h.get('sandboxclaims.extensions.agents.x-k8s.io', '-l', 'agents.x-k8s.io/created-by=asb-sdk').items;
        const before = mine().length;
        await call('write_file', { path: 'notes/plan.txt', content: 'step 1' });
        assert.equal(mine().length, before + 1, 'the first tool call made one claim');
        const r = await call('run_command', { command: 'cat notes/plan.txt; exit 4' });
        assert.deepEqual([r.structuredContent?.stdout, r.structuredContent?.exit_code], ['step 1', 4]);
        assert.equal(mine().length, before + 1, 'later calls use the same sandbox');
        const reset = await call('reset_sandbox', {});
        assert.ok(reset.isError && /local-engine operation/.test(reset.content[0]?.text ?? ''), JSON.stringify(reset));
        await transport.terminateSession();
        await client.close();
        await waitFor("the session's claim to be deleted", () => mine().length === before, 30_000);
      } finally {
        await server.close();
      }
    });

    it("runs seed 000's demo on the cluster: --flow=all creates and deletes a claim; --keep, then --claim reattaches, and no --keep deletes it", async () => {
      h.cluster.kubectl('apply', '-k', join(repo, 'deploy/sandbox/base'));
      // (Not spawnSync: the router and the agent the demo talks to run in this process.)
      const demo = async (...args: string[]) => {
        try {
          const r = await execFileAsync(
            process.execPath,
            [
              '--import',
              'tsx',
              join(repo, 'examples/go/demo.ts'),
              '--kubeconfig',
              h.cluster.kubeconfig,
              '--router-url',
              routerUrl,
              ...args,
            ],
            { cwd: repo, encoding: 'utf8', env: { ...process.env, ASB_ROUTER_TOKEN: ROUTER_TOKEN }, timeout: 300_000 },
          );
          return r.stdout;
        } catch (err) {
          const e = err as { stdout?: string; stderr?: string; message: string };
          throw new Error(`demo ${args.join(' ')} failed: ${e.message}\n${e.stdout}\n${e.stderr}`, { cause: err });
        }
      };
      const claims = () =>
        h.get('sandboxclaims.extensions.agents.x-k8s.io').items.map((c: any) => c.metadata.name as string);
      const before = claims();

      const all = await demo('--template=go-runtime-template', '--flow=all');
      assert.match(all, /^-- go run main\.go \[exit=0\] -- hello from the sandbox! sum\(1\.\.100\)=5050, go=go1\.\d+/m);
      assert.match(
        all,
        /^-- \.\/app \(re-runs the binary without recompiling\) \[exit=0\] -- hello from the sandbox!/m,
      );
      assert.match(all, /^-- \.\/app \[exit=0\] -- hello, Alice/m);
      assert.match(all, /^-- go test \.\/\.\.\. \[exit=0\] -- ok\s+example\.com\/multifile\/greet/m);
      assert.match(all, /^==> PoC complete$/m);
      assert.deepEqual(claims(), before, 'the demo deleted its claim');

      const kept = await demo('--flow=smoke', '--keep');
      const claim = /^==> created claim (\S+) /m.exec(kept)?.[1];
      assert.ok(claim && claims().includes(claim), kept);
      const again = await demo('--flow=multi', `--claim=${claim}`, '--keep');
      assert.match(again, new RegExp(`^==> reattached to claim ${claim} `, 'm'));
      assert.match(again, /^-- \.\/app \[exit=0\] -- hello, Alice/m);
      assert.ok(claims().includes(claim));
      await demo('--flow=smoke', `--claim=${claim}`);
      assert.ok(!claims().includes(claim), 'without --keep the claim is deleted');
    });

    it('takes GKE Pod snapshots (podsnapshot.gke.io): a clear error without the API; with it, snapshots.create, suspend({ snapshot }) and a resume that GKE restores from the newest', async () => {
      await using sb = await Sandbox.create({ connection, template: 'python-runtime-template' });
      await assert.rejects(
        sb.snapshots.create(),
        (err: Error) =>
          err instanceof InvalidError && /no Pod snapshot API \(podsnapshot\.gke\.io\/v1\)/.test(err.message),
      );
      await assert.rejects(sb.suspend({ snapshot: true }), InvalidError);
      assert.equal(
        h.get('sandboxes.agents.x-k8s.io', sb.id).spec.operatingMode,
        'Running',
        'a refused snapshot does not suspend',
      );

      h.cluster.kubectl('apply', '-f', join(repo, 'test/k8s/fixtures/podsnapshot-crds.yaml'));
      h.cluster.kubectl(
        'wait',
        '--for=condition=Established',
        'crd/podsnapshots.podsnapshot.gke.io',
        'crd/podsnapshotmanualtriggers.podsnapshot.gke.io',
      );
      const gke = await startGkeStandIn(h.cluster.kubeconfig);
      try {
        const manual = await sb.snapshots.create();
        assert.match(manual.id, /^[0-9a-f-]{36}$/);
        const trigger = h
          .get('podsnapshotmanualtriggers.podsnapshot.gke.io')
          .items.find((t: any) => t.status?.snapshotCreated?.name === manual.id);
        assert.match(trigger.metadata.name, /^snap-\d{8}-\d{6}-[0-9a-f]{8}$/);
        assert.equal(
          trigger.spec.targetPod,
          h.get('sandboxes.agents.x-k8s.io', sb.id).metadata.annotations['agents.x-k8s.io/pod-name'],
        );

        // (Snapshots are ordered by creationTimestamp, which counts whole seconds.)
        await new Promise((r) => setTimeout(r, 1100));
        const suspended = await sb.suspend({ snapshot: true });
        assert.equal(suspended.snapshot?.reason, 'suspend');
        assert.equal(h.find('pod', sb.id), undefined, 'the pod is gone');
        assert.ok(
          h
            .get('podsnapshotmanualtriggers.podsnapshot.gke.io')
            .items.some((t: any) => t.metadata.name.startsWith(`suspend-${sb.id}`.slice(0, 38))),
        );
        assert.deepEqual(
          (await sb.snapshots.list()).map((x) => x.id),
          [suspended.snapshotId, manual.id],
          'newest first',
        );

        const resumed = await sb.resume();
        assert.deepEqual(
          resumed,
          { resumed: true, restoredFromSnapshot: true, snapshotId: suspended.snapshotId },
          JSON.stringify(h.get('pod', sb.id).status.conditions),
        );
        assert.equal((await sb.run('echo back')).stdout, 'back\n');

        await (await sb.snapshots.get(manual.id)).delete();
        assert.deepEqual(
          (await sb.snapshots.list()).map((x) => x.id),
          [suspended.snapshotId],
        );
        await assert.rejects(sb.snapshots.get(manual.id), NotFoundError);
      } finally {
        gke.stop();
      }
      await sb.kill();
      assert.deepEqual(
        h.get('podsnapshotmanualtriggers.podsnapshot.gke.io').items,
        [],
        'kill deletes the triggers it made',
      );
    });
  },
);
