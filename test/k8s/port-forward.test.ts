// The SDK's default way to the runtime on a cluster, upstream's "developer mode": `kubectl
// port-forward` to the router Service, which the API server carries to the router pod's kubelet.
// KWOK stands in for the node: its kubelet server (on loopback, the nodes' address here) tunnels
// the router pod's forwards to our router, which reaches our runtime agent (both on loopback:
// KWOK's pods run nothing). Everything else on the path is real: kubectl choosing a pod behind
// the Service, the API server's port-forward upgrade and its call to the kubelet, the router.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Sandbox, kubernetes } from '@asb/sdk';
import { startRouterToAgent, type RouterToAgent } from './router-to-agent.ts';
import { startHarness, waitFor, repo, type Harness } from './harness.ts';
import { freePort } from './cluster.ts';

const ROUTER_TOKEN = 'port-forward-test-token';
const NS = 'agent-sandbox-system';

/** The router's Pod and Service as deploy/ names them (what the SDK forwards to by default). */
const routerObjects = (pod: string) => `
apiVersion: v1
kind: Pod
metadata: { name: ${pod}, namespace: ${NS}, labels: { app: sandbox-router } }
spec:
  automountServiceAccountToken: false
  containers: [{ name: router, image: sandbox-router:test, ports: [{ name: http, containerPort: 8080 }] }]
---
apiVersion: v1
kind: Service
metadata: { name: sandbox-router-svc, namespace: ${NS} }
spec:
  selector: { app: sandbox-router }
  ports: [{ name: http, port: 8080, targetPort: http }]
`;

/** kubectl port-forward processes still running for the router Service. */
const forwards = () => {
  try {
    return execFileSync('pgrep', ['-f', 'kubectl port-forward svc/sandbox-router-svc'], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .filter(Boolean).length;
  } catch {
    return 0;
  }
};

/** Port-forward connections the API server has carried and closed (CONNECT pods/portforward), from its metrics. */
let portForwardsServed: () => number;

describe(
  'the SDK through kubectl port-forward to the router Service (its default on a cluster)',
  { timeout: 600_000 },
  () => {
    let h: Harness;
    let router: RouterToAgent | undefined;

    before(async () => {
      const routerPort = await freePort();
      router = await startRouterToAgent({ token: ROUTER_TOKEN, port: routerPort });
      h = await startHarness({
        controllerArgs: ['--leader-elect=false'],
        portForwards: [{ namespace: NS, pod: 'sandbox-router-0', target: { host: '127.0.0.1', port: routerPort } }],
      });
      portForwardsServed = () =>
        execFileSync('kubectl', ['--kubeconfig', h.cluster.kubeconfig, 'get', '--raw', '/metrics'], {
          encoding: 'utf8',
          maxBuffer: 1 << 28,
        })
          .split('\n')
          .filter(
            (l) =>
              l.startsWith('apiserver_request_total{') &&
              l.includes('verb="CONNECT"') &&
              l.includes('resource="pods"') &&
              l.includes('subresource="portforward"'),
          )
          .reduce((n, l) => n + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
      h.apply(routerObjects('sandbox-router-0'));
      await waitFor(
        'the router pod to run',
        () => h.get('pod', 'sandbox-router-0', '-n', NS).status?.phase === 'Running',
        60_000,
      );
      h.apply(readFileSync(join(repo, 'packages/api/test/fixtures/seed001-template-and-pool.yaml'), 'utf8'));
      await waitFor(
        '2 ready pool members',
        () =>
          h.get('sandboxwarmpools.extensions.agents.x-k8s.io', 'python-sandbox-warmpool').status?.readyReplicas === 2,
        120_000,
      );
    });
    after(async () => {
      router?.close();
      await h?.stop();
    });

    it('claims a sandbox, runs commands and moves files through the forward, and stops the forward when done', async () => {
      // No router address given: the SDK forwards to svc/sandbox-router-svc:8080 in agent-sandbox-system.
      const connection = kubernetes({ kubeconfig: h.cluster.kubeconfig, routerToken: ROUTER_TOKEN });
      const before = forwards();
      const sb = await Sandbox.create({ connection, warmPool: 'python-sandbox-warmpool', timeoutMs: 60_000 });
      assert.equal(forwards(), before + 1, 'one kubectl port-forward for this sandbox');
      const r = await sb.run('echo "$((6 * 7))" && echo err >&2; exit 3');
      assert.deepEqual(r, { stdout: '42\n', stderr: 'err\n', exitCode: 3 });
      await sb.files.write('through/forward.txt', 'API server → kubelet → router → agent');
      assert.equal(await sb.files.read('through/forward.txt'), 'API server → kubelet → router → agent');
      assert.ok(router!.requests() >= 3, `the calls went through the router (${router!.requests()} requests)`);
      await sb.kill();
      assert.equal(h.find('sandboxclaims.extensions.agents.x-k8s.io', sb.info.claim!), undefined);
      await waitFor('the port-forward to stop', () => forwards() === before, 10_000);
      // (Counted by the API server once the connection ends.)
      await waitFor(
        'the API server to count the port-forward it carried to the router pod',
        () => portForwardsServed() >= 1,
        10_000,
      );
    });

    it('a forward to a Service with no pod behind it fails, naming the router and the forward', async () => {
      h.apply(
        `apiVersion: v1\nkind: Service\nmetadata: { name: no-router, namespace: ${NS} }\nspec: { selector: { app: none }, ports: [{ port: 8080 }] }\n`,
      );
      const connection = kubernetes({
        kubeconfig: h.cluster.kubeconfig,
        routerToken: ROUTER_TOKEN,
        router: { portForward: { service: 'no-router' } },
      });
      await assert.rejects(
        Sandbox.create({
          connection,
          warmPool: 'python-sandbox-warmpool',
          labels: { test: 'no-router' },
          timeoutMs: 60_000,
        }),
        (err: Error) => {
          assert.ok(['TimeoutError', 'UnavailableError'].includes(err.name), err.name);
          assert.match(err.message, /kubectl port-forward to svc\/no-router in agent-sandbox-system/);
          return true;
        },
      );
      assert.deepEqual(
        h.get('sandboxclaims.extensions.agents.x-k8s.io', '-l', 'test=no-router').items,
        [],
        'the claim made for it is deleted',
      );
    });

    it('a wrong token is refused by the router behind the forward', async () => {
      const connection = kubernetes({ kubeconfig: h.cluster.kubeconfig, routerToken: 'wrong' });
      await assert.rejects(
        Sandbox.create({
          connection,
          warmPool: 'python-sandbox-warmpool',
          labels: { test: 'wrong-token' },
          timeoutMs: 60_000,
        }),
        { name: 'AuthError' },
      );
      assert.deepEqual(
        h.get('sandboxclaims.extensions.agents.x-k8s.io', '-l', 'test=wrong-token').items,
        [],
        'the claim made for it is deleted',
      );
    });
  },
);
