// The seeds' client flows on a real node (issue 23), nothing on loopback standing in: deploy/install
// and deploy/router run as pods, the sandboxes are gVisor pods pulled through the mirror, and
//   - seed 000's demo (examples/go/demo.ts --flow=all) runs on the Go runtime template, through the
//     SDK's default connection (kubectl port-forward to the router Service: the API server and the
//     kubelet's real port-forward into the router pod) and through the router's Service address;
//     the router reaches the sandbox by its headless Service's DNS name, the pod's own IP;
//   - upstream's Python client (0.4.6 and 1.0.8) runs seed 004's SDK tests in seed 004's namespace,
//     on seed 004's template and warm pool, through `kubectl port-forward svc/sandbox-router-svc`
//     (both clients send the Sandbox's status.podIPs as X-Sandbox-Pod-IP: the router dials that).
import { describe, it, before, after, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { waitFor, type Cluster } from './cluster.ts';
import type { RealNode } from './node.ts';
import {
  deploymentAvailable,
  isReady as ready,
  realClusterSkip,
  startRealCluster,
  type RealCluster,
} from './real-cluster.ts';
import { PYTHON_CLIENT_VERSIONS, pythonClient } from './python.ts';
import { CLUSTER_IMAGES, RUNTIME_IMAGES } from '../../scripts/runtime-images.ts';

const run = promisify(execFile);
const repo = new URL('../../', import.meta.url).pathname;
const fixture = (name: string) => readFileSync(`${repo}packages/api/test/fixtures/${name}`, 'utf8');
const PYTHON_RUNTIME = 'registry.k8s.io/agent-sandbox/python-runtime-sandbox:v0.1.0';
const GO_RUNTIME = 'ghcr.io/gke-demos/go-runtime-sandbox:latest';
const ROUTER_TOKEN = 'real-node-flows-token';
/** Seed 004's namespace, template and pool (packages/api/test/fixtures/seed004-*.yaml). */
const DEMO_NS = 'agent-sandbox-demo';

interface Pod {
  metadata: { name: string; deletionTimestamp?: string };
  spec: { nodeName?: string; runtimeClassName?: string };
  status: { podIP?: string; conditions?: Array<{ type: string; status: string }> };
}

describe(
  "the seeds' client flows on a real node: seed 000's demo and seed 004's Python SDK tests",
  {
    skip: realClusterSkip(),
    timeout: 3_600_000,
  },
  () => {
    let rc: RealCluster;
    let cluster: Cluster;
    let node: RealNode;
    const log = (m: string) => process.stderr.write(`${m}\n`);
    const get = <T>(...args: string[]) => rc.get<T>(...args);
    const apply = (yaml: string, ...args: string[]) => rc.apply(yaml, ...args);
    const pods = (ns: string, selector: string) => get<{ items: Pod[] }>('pods', '-n', ns, '-l', selector).items;
    /** The router's two pods Ready, none of an older ReplicaSet left (kubectl port-forward picks any). */
    const routerAvailable = (ns: string) =>
      waitFor(
        `the router in ${ns} to be available`,
        () => {
          const p = pods(ns, 'app=sandbox-router');
          return p.length === 2 && p.every((x) => ready(x) && !x.metadata.deletionTimestamp);
        },
        300_000,
      );
    const readyMembers = (ns: string, selector: string, n: number) =>
      waitFor(
        `${n} Ready pods ${selector} in ${ns}`,
        () => {
          const p = pods(ns, selector).filter((x) => ready(x) && !x.metadata.deletionTimestamp);
          return p.length >= n ? p : undefined;
        },
        600_000,
      );
    const gvisorOnNode = (ns: string, p: Pod) => {
      assert.equal(p.spec.runtimeClassName, 'gvisor', p.metadata.name);
      assert.equal(p.spec.nodeName, node.name, p.metadata.name);
      assert.match(cluster.kubectl('exec', '-n', ns, p.metadata.name, '--', 'dmesg'), /Starting gVisor/);
    };

    before(async () => {
      rc = await startRealCluster({ log, images: [...RUNTIME_IMAGES, ...CLUSTER_IMAGES] });
      ({ cluster, node } = rc);
      cluster.kubectl('apply', '-k', `${repo}deploy/install`);
      // Seed 000: "Deploy the router in the namespace you'll use" (default here).
      cluster.kubectl('create', 'secret', 'generic', 'sandbox-router-token', '--from-literal', `token=${ROUTER_TOKEN}`);
      cluster.kubectl('apply', '-k', `${repo}deploy/router`);
      await deploymentAvailable(rc, 'agent-sandbox-system', 'agent-sandbox-controller', 2);
      await routerAvailable('default');
    });

    after(() => rc?.stop());

    /** Seed 000's demo; its output, with when each line came (ms from the start). */
    const demo = async (t: TestContext, ...args: string[]) => {
      const t0 = Date.now();
      const lines: Array<{ ms: number; line: string }> = [];
      const child = spawn(
        process.execPath,
        [
          '--import',
          'tsx',
          join(repo, 'examples/go/demo.ts'),
          '--kubeconfig',
          cluster.kubeconfig,
          '--namespace',
          'default',
          '--template=go-runtime-template',
          '--flow=all',
          ...args,
        ],
        { cwd: repo, env: { ...process.env, ASB_ROUTER_TOKEN: ROUTER_TOKEN }, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let stderr = '';
      let rest = '';
      child.stdout.on('data', (d: Buffer) => {
        const parts = (rest + d.toString()).split('\n');
        rest = parts.pop()!;
        for (const line of parts) lines.push({ ms: Date.now() - t0, line });
      });
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const timer = setTimeout(() => child.kill(), 900_000);
      const code = await new Promise<number | null>((r) => child.once('close', r));
      clearTimeout(timer);
      const out = lines.map((l) => l.line).join('\n') + '\n';
      assert.equal(code, 0, `demo ${args.join(' ')} exited ${code}\n${out}\n${stderr}`);
      const at = (re: RegExp) => lines.find((l) => re.test(l.line))?.ms;
      const created = at(/^==> created claim /);
      const firstRun = at(/^-- go run main\.go /);
      t.diagnostic(
        `demo ${args.join(' ') || '(port-forward)'}: start → claim Ready and the router reaching it ${created} ms; ` +
          `first command (go run main.go, compiling) ${firstRun! - created!} ms after; whole demo ${Date.now() - t0} ms`,
      );
      return out;
    };

    /** The Go template's pods seen while `body` runs (a claim's pod may be gone when it ends). */
    const podsDuring = async <T>(body: () => Promise<T>): Promise<[T, Map<string, Pod>]> => {
      const seen = new Map<string, Pod>();
      let done = false;
      const watcher = (async () => {
        while (!done) {
          try {
            const { stdout } = await run('kubectl', [
              '--kubeconfig',
              cluster.kubeconfig,
              'get',
              'pods',
              '-l',
              'app=go-runtime-sandbox',
              '-o',
              'json',
            ]);
            for (const p of (JSON.parse(stdout) as { items: Pod[] }).items) seen.set(p.metadata.name, p);
          } catch {
            // (Next round.)
          }
          await new Promise((r) => setTimeout(r, 500));
        }
      })();
      try {
        return [await body(), seen];
      } finally {
        done = true;
        await watcher;
      }
    };

    const claims = () =>
      get<{ items: Array<{ metadata: { name: string } }> }>('sandboxclaims.extensions.agents.x-k8s.io').items.map(
        (c) => c.metadata.name,
      );

    /** The demo's output as sdk.test.ts asserts it, its claim deleted, its sandbox a gVisor pod here. */
    const assertDemo = (out: string, seen: Map<string, Pod>, before: string[]) => {
      assert.match(out, /^-- go run main\.go \[exit=0\] -- hello from the sandbox! sum\(1\.\.100\)=5050, go=go1\.\d+/m);
      assert.match(
        out,
        /^-- \.\/app \(re-runs the binary without recompiling\) \[exit=0\] -- hello from the sandbox!/m,
      );
      assert.match(out, /^-- \.\/app \[exit=0\] -- hello, Alice/m);
      assert.match(out, /^-- go test \.\/\.\.\. \[exit=0\] -- ok\s+example\.com\/multifile\/greet/m);
      assert.match(out, /^==> PoC complete$/m);
      const [, claim, sandbox] = /^==> created claim (\S+) \(sandbox (\S+)\)/m.exec(out) ?? [];
      assert.match(out, new RegExp(`^==> deleted ${claim}$`, 'm'));
      assert.deepEqual(claims(), before, 'the demo deleted its claim');
      const pod = seen.get(sandbox!);
      assert.ok(pod, `the sandbox ${sandbox} was one of the pods ${[...seen.keys()].join(', ')}`);
      assert.equal(pod.spec.runtimeClassName, 'gvisor');
      assert.equal(pod.spec.nodeName, node.name);
    };

    it("seed 000: the Go runtime template's warm pool (the gVisor overlay, the image through the mirror) runs as gVisor pods", async (t) => {
      const t0 = Date.now();
      // Seed 000 step 5, "if you pushed a custom image": the overlay with the image's name replaced.
      const yaml = cluster
        .kubectl('kustomize', `${repo}deploy/sandbox/overlays/gvisor`)
        .replaceAll('agent-sandbox-ts/runtime-go:0.1.0', GO_RUNTIME);
      assert.match(yaml, /runtimeClassName: gvisor/);
      await waitFor('the conversion webhook', () => apply(yaml), 120_000);
      const members = await readyMembers('default', 'app=go-runtime-sandbox', 2);
      t.diagnostic(`Go warm pool: 2 members Ready ${Date.now() - t0} ms after kubectl apply (pull included)`);
      for (const p of members) gvisorOnNode('default', p);
      const uname = cluster.kubectl('exec', members[0]!.metadata.name, '--', 'uname', '-r').trim();
      assert.notEqual(uname, readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim());
    });

    it("seed 000's demo --flow=all through the SDK's default connection: kubectl port-forward to the router Service", async (t) => {
      // The router is only where seed 000 puts it, beside the sandboxes: the SDK finds it there.
      assert.throws(() => cluster.kubectl('get', 'service', '-n', 'agent-sandbox-system', 'sandbox-router-svc'));
      const before = claims();
      const [out, seen] = await podsDuring(() => demo(t));
      assertDemo(out, seen, before);
    });

    it("seed 000's demo --flow=all through the router's Service address (the router pod reaches the sandbox pod's IP)", async (t) => {
      const before = claims();
      const ip = get<{ spec: { clusterIP: string } }>('service', 'sandbox-router-svc').spec.clusterIP;
      const [out, seen] = await podsDuring(() => demo(t, '--router-url', `http://${ip}:8080`));
      assertDemo(out, seen, before);
    });

    it("the sandbox's headless Service resolves to its pod's IP (what the router dials)", async () => {
      // A warm member's Service, as the claims' were: its endpoints are the pod's own address.
      const [member] = await readyMembers('default', 'app=go-runtime-sandbox', 1);
      const svc = get<{ spec: { clusterIP: string } }>('service', member!.metadata.name);
      assert.equal(svc.spec.clusterIP, 'None');
      const slices = get<{ items: Array<{ endpoints: Array<{ addresses: string[] }> }> }>(
        'endpointslices',
        '-l',
        `kubernetes.io/service-name=${member!.metadata.name}`,
      ).items;
      assert.deepEqual(
        slices.flatMap((s) => s.endpoints.flatMap((e) => e.addresses)),
        [member!.status.podIP],
      );
      // And the router, told only the sandbox's name (as the TypeScript SDK tells it), gets there.
      const ip = get<{ spec: { clusterIP: string } }>('service', 'sandbox-router-svc').spec.clusterIP;
      const res = await fetch(`http://${ip}:8080/`, {
        headers: {
          authorization: `Bearer ${ROUTER_TOKEN}`,
          'x-sandbox-id': member!.metadata.name,
          'x-sandbox-namespace': 'default',
        },
        signal: AbortSignal.timeout(30_000),
      });
      assert.equal(res.status, 200, await res.text());
      // Not needed below: the Go pods make room (CPU) for seed 004's.
      cluster.kubectl('delete', 'sandboxwarmpools.extensions.agents.x-k8s.io', 'go-runtime-warmpool', '--wait=false');
    });

    describe("seed 004's SDK tests with upstream's Python client, in seed 004's namespace", () => {
      before(async () => {
        cluster.kubectl('create', 'namespace', DEMO_NS);
        cluster.kubectl(
          'create',
          'secret',
          'generic',
          'sandbox-router-token',
          '-n',
          DEMO_NS,
          '--from-literal',
          `token=${ROUTER_TOKEN}`,
        );
        cluster.kubectl('apply', '-k', `${repo}deploy/router`, '-n', DEMO_NS);
        // Seed 004's template names the image its step 1 built and loaded into the node
        // (`python-runtime-sandbox:latest`, imagePullPolicy Never): ours, pulled through the mirror
        // and tagged so, as `kind load docker-image` would leave it.
        node.crictl('pull', PYTHON_RUNTIME);
        node.ctr('images', 'tag', '--force', PYTHON_RUNTIME, 'docker.io/library/python-runtime-sandbox:latest');
        apply(fixture('seed004-template.yaml'));
        apply(fixture('seed004-warmpool.yaml'));
        await routerAvailable(DEMO_NS);
        for (const p of await readyMembers(DEMO_NS, 'sandbox=python-sandbox', 2)) gvisorOnNode(DEMO_NS, p);
      });

      for (const version of PYTHON_CLIENT_VERSIONS) {
        const v05 = !version.startsWith('0.4');
        it(`k8s-agent-sandbox ${version}: Tests 1–4 through kubectl port-forward svc/sandbox-router-svc (${v05 ? 'v1beta1 on the warm pool, the router token' : 'v1alpha1 on the template, no token'})`, async (t) => {
          const deployment = ['deployment/sandbox-router-deployment', '-n', DEMO_NS];
          if (v05) {
            // The router as deploy/router has it: its token required.
            cluster.kubectl('set', 'env', ...deployment, 'ALLOW_UNAUTHENTICATED_ROUTER-');
            cluster.kubectl('apply', '-k', `${repo}deploy/router`, '-n', DEMO_NS);
          } else {
            // 0.4's client sends no token: the router as upstream's manifest ships it, unauthenticated.
            cluster.kubectl('set', 'env', ...deployment, 'ROUTER_AUTH_TOKEN-', 'ALLOW_UNAUTHENTICATED_ROUTER=true');
          }
          cluster.kubectl('rollout', 'status', ...deployment, '--timeout=300s');
          await routerAvailable(DEMO_NS);
          const routerIp = get<{ spec: { clusterIP: string } }>('service', '-n', DEMO_NS, 'sandbox-router-svc').spec
            .clusterIP;
          const anonymous = await fetch(`http://${routerIp}:8080/`, {
            headers: { 'x-sandbox-id': 'nobody', 'x-sandbox-namespace': DEMO_NS },
            signal: AbortSignal.timeout(30_000),
          });
          await anonymous.body?.cancel();
          assert.equal(anonymous.status, v05 ? 401 : 502, 'without a token: refused, or passed to no sandbox');

          const python = pythonClient(version, log);
          const { stdout } = await run(python, [join(repo, 'test/k8s/python/seed004_sdk.py')], {
            env: {
              ...process.env,
              KUBECONFIG: cluster.kubeconfig,
              NAMESPACE: DEMO_NS,
              TEMPLATE: 'python-runtime-template',
              WARMPOOL: 'python-warmpool',
              ...(v05 ? { ROUTER_TOKEN } : {}),
            },
            timeout: 600_000,
          });
          const seen = JSON.parse(stdout.trim().split('\n').pop()!) as {
            version: string;
            claim: string;
            sandbox: string;
            pod: string;
            allocation_s: number;
            first_command_s: number;
            test1: { stdout: string; exit_code: number };
            test2: string;
            test3: { prewarmed: boolean };
            test4: { sandbox_kernel: string; host_kernel: string; gvisor: boolean };
            pod_spec: { runtimeClassName: string; nodeName: string };
          };
          t.diagnostic(
            `${version}: create_sandbox → Ready ${Math.round(seen.allocation_s * 1000)} ms; ` +
              `first command ${Math.round(seen.first_command_s * 1000)} ms`,
          );
          assert.equal(seen.version, version);
          assert.match(stdout, /^Test 1: Running Python command\n {2}stdout: Hello from SDK!\n {2}exit_code: 0$/m);
          assert.deepEqual(seen.test1, { stdout: 'Hello from SDK!\n', exit_code: 0 });
          assert.match(stdout, /^ {2}Content: SDK test content$/m);
          assert.equal(seen.test2, 'SDK test content');
          assert.match(stdout, /^Pod was PRE-WARMED from WarmPool!$/m);
          assert.equal(seen.test3.prewarmed, true);
          assert.match(stdout, /^Running with userspace isolation \(gVisor\)!$/m);
          assert.notEqual(seen.test4.sandbox_kernel, seen.test4.host_kernel);
          assert.equal(seen.test4.host_kernel, readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim());
          assert.equal(seen.pod_spec.runtimeClassName, 'gvisor');
          assert.equal(seen.pod_spec.nodeName, node.name);
          assert.match(stdout, /^Core tests \(1-3\) passed!$/m);
          // terminate() deleted the claim; its sandbox and pod are collected with it.
          await waitFor(
            "the claim's sandbox and pod to be collected",
            () =>
              !cluster
                .kubectl('get', 'sandboxclaims.extensions.agents.x-k8s.io', '-n', DEMO_NS, '-o', 'name')
                .includes(seen.claim) &&
              !pods(DEMO_NS, 'sandbox=python-sandbox').some((p) => p.metadata.name === seen.pod),
            120_000,
          );
        });
      }
    });
  },
);
