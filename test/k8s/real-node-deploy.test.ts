// The install as a user applies it, on a real node (node.ts): images pulled through a registry
// mirror (the loopback registry that serves this repository's images under their published
// names), pods that reach the API server through the `kubernetes` Service and resolve names by
// cluster DNS, and deploy/install + deploy/router running as pods: the controller serves the
// CRDs' conversion webhook and turns seed 001's template and warm pool into gVisor pods that a
// claim adopts. No KWOK node: everything runs.
import { describe, it, before, after, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { waitFor, type Cluster } from './cluster.ts';
import type { RealNode } from './node.ts';
import {
  deploymentAvailable,
  isReady as ready,
  realClusterSkip,
  startRealCluster,
  type RealCluster,
} from './real-cluster.ts';
import { CLUSTER_IMAGES, RUNTIME_IMAGES } from '../../scripts/runtime-images.ts';

const repo = new URL('../../', import.meta.url).pathname;
const RUNTIME = 'registry.k8s.io/agent-sandbox/python-runtime-sandbox:v0.1.0';
const SEED_001 = readFileSync(`${repo}packages/api/test/fixtures/seed001-template-and-pool.yaml`, 'utf8');
const TOKEN_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/** What a pod in the cluster does with its service account: resolve the API server's Service name,
 *  and call it with its token and the cluster's CA. */
const IN_POD = `
import json, socket, ssl, urllib.request
d = "${TOKEN_DIR}"
addr = socket.gethostbyname("kubernetes.default.svc.cluster.local")
ctx = ssl.create_default_context(cafile=d + "/ca.crt")
req = urllib.request.Request("https://kubernetes.default.svc/version",
    headers={"Authorization": "Bearer " + open(d + "/token").read()})
print(json.dumps({"addr": addr, "version": json.load(urllib.request.urlopen(req, context=ctx))}))
`;

interface Pod {
  metadata: { name: string; annotations?: Record<string, string> };
  spec: { nodeName?: string };
  status: {
    phase?: string;
    podIP?: string;
    conditions?: Array<{ type: string; status: string }>;
    containerStatuses?: Array<{ restartCount: number }>;
  };
}

describe(
  'deploy/ on a real node: images from a mirror, Services, cluster DNS, the controller as a pod',
  {
    skip: realClusterSkip(),
    timeout: 1_800_000,
  },
  () => {
    let rc: RealCluster;
    let cluster: Cluster;
    let node: RealNode;
    const log = (m: string) => process.stderr.write(`${m}\n`);
    const get = <T>(...args: string[]) => rc.get<T>(...args);
    const apply = (yaml: string, ...args: string[]) => rc.apply(yaml, ...args);

    before(async () => {
      rc = await startRealCluster({ log, images: [...RUNTIME_IMAGES, ...CLUSTER_IMAGES] });
      ({ cluster, node } = rc);
    });

    after(() => rc?.stop());

    it("pulls the runtime image through the mirror and runs it under gVisor; its API answers at the pod's IP", async (t) => {
      const t0 = Date.now();
      apply(
        JSON.stringify({
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: { name: 'runtime', namespace: 'default' },
          spec: {
            runtimeClassName: 'gvisor',
            terminationGracePeriodSeconds: 1,
            containers: [
              {
                name: 'runtime',
                image: RUNTIME,
                ports: [{ containerPort: 8888 }],
                readinessProbe: { httpGet: { path: '/', port: 8888 }, periodSeconds: 1 },
              },
            ],
          },
        }),
      );
      const p = await waitFor(
        'the runtime pod to be Ready',
        () => {
          const p = get<Pod>('pod', 'runtime');
          if (p.status.phase === 'Failed') throw new Error('pod failed');
          return ready(p) ? p : undefined;
        },
        300_000,
      );
      const pulled = get<{ items: Array<{ reason: string; message: string }> }>(
        'events',
        '--field-selector',
        'involvedObject.name=runtime',
      ).items.find((e) => e.reason === 'Pulled');
      t.diagnostic(`runtime pod: create → Ready ${Date.now() - t0} ms; ${pulled?.message}`);
      assert.equal(p.spec.nodeName, node.name);
      const res = await fetch(`http://${p.status.podIP}:8888/`, { signal: AbortSignal.timeout(10_000) });
      assert.equal(res.status, 200, await res.text());
      assert.match(cluster.kubectl('exec', 'runtime', '--', 'dmesg'), /Starting gVisor/);
    });

    it('a pod resolves the API server by cluster DNS and calls it through its Service with its token', async () => {
      const eps = get<{ subsets?: Array<{ addresses: Array<{ ip: string }> }> }>('endpoints', 'kubernetes');
      assert.equal(eps.subsets?.[0]?.addresses[0]?.ip, cluster.podNetwork!.address);
      // The default service account's token is authenticated; it may read /version (every user may).
      const out = JSON.parse(cluster.kubectl('exec', 'runtime', '--', 'python3', '-c', IN_POD)) as {
        addr: string;
        version: { gitVersion: string };
      };
      assert.equal(out.addr, '10.96.0.1');
      assert.equal(out.version.gitVersion, 'v1.37.2');
      cluster.kubectl('delete', 'pod', 'runtime', '--wait=false');
    });

    it('deploy/install and deploy/router run as pods; the controller serves the conversion webhook', async (t) => {
      const t0 = Date.now();
      cluster.kubectl('apply', '-k', `${repo}deploy/install`);
      cluster.kubectl(
        'create',
        'secret',
        'generic',
        'sandbox-router-token',
        '--from-literal',
        'token=real-node-test-token',
      );
      cluster.kubectl('apply', '-k', `${repo}deploy/router`);
      // Both replicas Ready: the standby serves the webhook too, and waits to lead.
      for (const [ns, name] of [
        ['agent-sandbox-system', 'agent-sandbox-controller'],
        ['default', 'sandbox-router-deployment'],
      ] as const)
        await deploymentAvailable(rc, ns, name, 2);
      t.diagnostic(`controller and router available ${Date.now() - t0} ms after kubectl apply`);
      // A controller that lists its kinds while the API server still sets up their storage (429)
      // tries again rather than exiting.
      const restarts = controllerPods().map((p) => p.status.containerStatuses?.[0]?.restartCount ?? 0);
      assert.deepEqual(restarts, [0, 0], 'no controller restarted');
      // Seed 001 is v1alpha1; stored as v1beta1: the API server converts through the webhook,
      // reaching either replica (one certificate for both, from their Secret).
      await waitFor('both replicas to patch the CRDs', () => controllerPods().every(patched), 120_000);
      await waitFor('the conversion webhook', () => apply(SEED_001), 30_000);
      const tpl = get<{ apiVersion: string; spec: { podTemplate: { spec: { runtimeClassName: string } } } }>(
        'sandboxtemplates.v1beta1.extensions.agents.x-k8s.io',
        'python-runtime-template',
      );
      assert.equal(tpl.apiVersion, 'extensions.agents.x-k8s.io/v1beta1');
      assert.equal(tpl.spec.podTemplate.spec.runtimeClassName, 'gvisor');
    });

    let claimed: Pod | undefined;
    const controllerPods = () =>
      get<{ items: Pod[] }>('pods', '-n', 'agent-sandbox-system', '-l', 'app=agent-sandbox-controller').items;
    const patched = (p: Pod) =>
      /CRDs patched/.test(cluster.kubectl('logs', '-n', 'agent-sandbox-system', p.metadata.name));
    const claimPod = (claim: string) => {
      const c = get<{ status?: { sandbox?: { name?: string } } }>('sandboxclaims.extensions.agents.x-k8s.io', claim);
      const sb = get<{ metadata: { name: string; annotations?: Record<string, string> } }>(
        'sandboxes.agents.x-k8s.io',
        c.status!.sandbox!.name!,
      );
      return get<Pod>('pod', sb.metadata.annotations?.['agents.x-k8s.io/pod-name'] ?? sb.metadata.name);
    };

    const claim = async (t: TestContext, name: string, spec: object, version = 'v1beta1') => {
      const t0 = Date.now();
      apply(
        JSON.stringify({
          apiVersion: `extensions.agents.x-k8s.io/${version}`,
          kind: 'SandboxClaim',
          metadata: { name, namespace: 'default' },
          spec,
        }),
      );
      await waitFor(
        `claim ${name} to be Ready`,
        () => ready(get('sandboxclaims.extensions.agents.x-k8s.io', name)),
        300_000,
      );
      const ms = Date.now() - t0;
      t.diagnostic(`claim ${name}: create → Ready ${ms} ms`);
      return claimPod(name);
    };

    it("the warm pool's members become Ready gVisor pods; a claim adopts one; inside is gVisor", async (t) => {
      const t0 = Date.now();
      const members = await waitFor(
        'two Ready warm pool pods',
        () => {
          const pods = get<{ items: Pod[] }>('pods', '-l', 'sandbox=python-sandbox-example').items.filter(ready);
          return pods.length >= 2 ? pods : undefined;
        },
        300_000,
      );
      t.diagnostic(`warm pool: 2 members Ready ${Date.now() - t0} ms after the seed was applied`);
      const names = new Set(members.map((p) => p.metadata.name));
      const p = await claim(t, 'warm', { warmPoolRef: { name: 'python-sandbox-warmpool' } });
      assert.ok(names.has(p.metadata.name), `${p.metadata.name} is one of ${[...names].join(', ')}`);
      claimed = p;
      assert.equal(p.spec.nodeName, node.name);
      const uname = cluster.kubectl('exec', p.metadata.name, '--', 'uname', '-a');
      assert.notEqual(uname.split(' ')[2], readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim(), uname);
      assert.match(cluster.kubectl('exec', p.metadata.name, '--', 'dmesg'), /Starting gVisor/);
      const res = await fetch(`http://${p.status.podIP}:8888/`, { signal: AbortSignal.timeout(10_000) });
      assert.equal(res.status, 200);
    });

    // (v1alpha1's way to say it, converted by the webhook.)
    it('a claim with no warm pool gets a new gVisor pod (cold)', async (t) => {
      const p = await claim(
        t,
        'cold',
        { sandboxTemplateRef: { name: 'python-runtime-template' }, warmpool: 'none' },
        'v1alpha1',
      );
      assert.equal(p.spec.nodeName, node.name);
      assert.match(cluster.kubectl('exec', p.metadata.name, '--', 'dmesg'), /Starting gVisor/);
    });

    // The router's pod reaches the sandbox's over the node's bridge (and the host's FORWARD hook).
    it('the router (deploy/router, behind its Service) reaches the claimed sandbox at its pod IP', async () => {
      const ip = get<{ spec: { clusterIP: string } }>('service', 'sandbox-router-svc').spec.clusterIP;
      const res = await fetch(`http://${ip}:8080/`, {
        headers: {
          authorization: 'Bearer real-node-test-token',
          'x-sandbox-id': claimed!.metadata.name,
          'x-sandbox-pod-ip': claimed!.status.podIP!,
        },
        signal: AbortSignal.timeout(30_000),
      });
      assert.equal(res.status, 200, await res.text());
    });

    // The API server sends each conversion to either replica, whichever started last.
    it('conversions still work after the standby controller restarts', async () => {
      const sys = ['-n', 'agent-sandbox-system'];
      const lease = get<{ spec: { holderIdentity: string } }>('lease', ...sys, 'a3317529.agent-sandbox.x-k8s.io').spec
        .holderIdentity;
      const standby = controllerPods().find((p) => !lease.startsWith(`${p.metadata.name}_`));
      assert.ok(standby, `a standby beside the leader ${lease}`);
      cluster.kubectl('delete', 'pod', ...sys, standby.metadata.name);
      await waitFor(
        'the new standby to patch the CRDs, Ready',
        () => controllerPods().some((p) => p.metadata.name !== standby.metadata.name && ready(p) && patched(p)),
        120_000,
      );
      // Every conversion, whichever replica the Service picks.
      for (let i = 0; i < 10; i++)
        apply(
          JSON.stringify({
            apiVersion: 'extensions.agents.x-k8s.io/v1alpha1',
            kind: 'SandboxTemplate',
            metadata: { name: `after-restart-${i}`, namespace: 'default' },
            spec: { podTemplate: { spec: { containers: [{ name: 'main', image: 'busybox' }] } } },
          }),
        );
    });

    // maxUnavailable 0 for two replicas: each new pod must be Ready before an old one goes.
    it("a rolling update of the controller's Deployment completes, and a new replica leads", async (t) => {
      const sys = ['-n', 'agent-sandbox-system'];
      const old = new Set(controllerPods().map((p) => p.metadata.name));
      cluster.kubectl(...sys, 'rollout', 'restart', 'deployment', 'agent-sandbox-controller');
      cluster.kubectl(...sys, 'rollout', 'status', 'deployment', 'agent-sandbox-controller', '--timeout=180s');
      // The old pods go (the leader hands its lease over as it stops); the new ones take over.
      await waitFor('the old controller pods to go', () => controllerPods().every((p) => !old.has(p.metadata.name)));
      assert.equal(controllerPods().filter(ready).length, 2);
      await waitFor('a new replica to lead', () => {
        const holder = get<{ spec: { holderIdentity?: string } }>('lease', ...sys, 'a3317529.agent-sandbox.x-k8s.io')
          .spec.holderIdentity;
        return controllerPods().some((p) => holder?.startsWith(`${p.metadata.name}_`));
      });
      // And it reconciles (and converts): a v1alpha1 claim made now gets its sandbox.
      const p = await claim(
        t,
        'after-rollout',
        { sandboxTemplateRef: { name: 'python-runtime-template' }, warmpool: 'none' },
        'v1alpha1',
      );
      assert.equal(p.spec.nodeName, node.name);
    });
  },
);
