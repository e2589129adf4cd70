// A real node in the test control plane (node.ts): pods that really run, under runc and under
// gVisor, with addresses from the node's bridge, reached the ways a user reaches them (`kubectl
// exec`, `logs`, `port-forward`, the pod's IP), and a node that leaves nothing behind when it
// stops. KWOK's nodes stay beside it for everything else.
import { describe, it, before, after, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { startCluster, waitFor, type Cluster } from './cluster.ts';
import { startRealNode, realNodeSkip, onRealNode, type RealNode } from './node.ts';
import { busybox } from '../support/images.ts';

const IMAGE = 'localhost/asb/busybox:test';
const PAGE = 'hello over the pod network\n';
const TOKEN_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/** The test images' busybox, with what these pods run besides: a web server, dmesg. */
const image = () =>
  busybox(
    { Env: ['PATH=/bin'] },
    { applets: ['dmesg', 'httpd', 'hostname', 'ip'], files: { 'srv/www/index.html': PAGE } },
  );

const pod = (name: string, runtimeClassName?: string) =>
  JSON.stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'default' },
    spec: {
      ...onRealNode,
      ...(runtimeClassName ? { runtimeClassName } : {}),
      // As deploy/'s GKE overlay asks: runc applies it with libseccomp.
      securityContext: { seccompProfile: { type: 'RuntimeDefault' } },
      terminationGracePeriodSeconds: 1,
      containers: [
        {
          name: 'main',
          image: IMAGE,
          imagePullPolicy: 'Never',
          command: ['sh', '-c', `echo hello from ${name}; exec httpd -f -p 8080 -h /srv/www`],
          ports: [{ containerPort: 8080 }],
        },
      ],
    },
  });

interface PodStatus {
  status: { phase?: string; podIP?: string; hostIP?: string };
  spec: { nodeName?: string };
}

/** `kubectl port-forward` to a pod's 8080 on a free local port; resolves with that port. */
async function portForward(
  cluster: Cluster,
  name: string,
): Promise<{ port: number; proc: ChildProcess; output: () => string }> {
  const proc = spawn('kubectl', ['--kubeconfig', cluster.kubeconfig, 'port-forward', `pod/${name}`, ':8080'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout.on('data', (b: Buffer) => (out += b.toString()));
  proc.stderr.on('data', (b: Buffer) => (out += b.toString()));
  const port = await waitFor(`kubectl port-forward to ${name}`, () => {
    if (proc.exitCode !== null) throw new Error(`kubectl port-forward exited: ${out}`);
    const m = /Forwarding from 127\.0\.0\.1:(\d+)/.exec(out);
    return m ? Number(m[1]) : undefined;
  });
  return { port, proc, output: () => out };
}

const get = async (url: string) => {
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  return { status: res.status, body: await res.text() };
};

describe(
  'a real node (kubelet, containerd, runc, gVisor, CNI) beside the KWOK nodes',
  { skip: realNodeSkip(), timeout: 900_000 },
  () => {
    let cluster: Cluster;
    let node: RealNode;
    const log = (m: string) => process.stderr.write(`${m}\n`);

    before(async () => {
      cluster = await startCluster({ log });
      node = await startRealNode(cluster, { log });
      await node.importImage(IMAGE, image());
    });

    after(async () => {
      await node?.stop();
      await cluster?.stop();
    });

    /** Creates a pod and waits for it to run; says how long from create to Running. */
    const runPod = async (t: TestContext, name: string, runtimeClassName?: string) => {
      const t0 = Date.now();
      execFileSync('kubectl', ['--kubeconfig', cluster.kubeconfig, 'create', '-f', '-'], {
        input: pod(name, runtimeClassName),
        stdio: ['pipe', 'ignore', 'pipe'],
      });
      const p = await waitFor(
        `pod ${name} to run`,
        () => {
          const p = JSON.parse(cluster.kubectl('get', 'pod', name, '-o', 'json')) as PodStatus;
          if (p.status.phase === 'Failed') throw new Error(`pod ${name} failed`);
          return p.status.phase === 'Running' && p.status.podIP ? p : undefined;
        },
        120_000,
      );
      t.diagnostic(`pod ${name} (${runtimeClassName ?? 'runc'}): create → Running in ${Date.now() - t0} ms`);
      return p;
    };

    it('comes Ready beside the KWOK node, labelled and tainted for the pods that ask for it', (t) => {
      t.diagnostic(`containerd up in ${node.timings.containerdMs} ms, node Ready in ${node.timings.readyMs} ms`);
      const nodes = JSON.parse(cluster.kubectl('get', 'nodes', '-o', 'json')) as {
        items: Array<{
          metadata: { name: string; labels: Record<string, string> };
          spec: { podCIDR?: string; taints?: Array<{ key: string; effect: string }> };
          status: {
            conditions: Array<{ type: string; status: string }>;
            nodeInfo: { containerRuntimeVersion: string };
          };
        }>;
      };
      const real = nodes.items.find((n) => n.metadata.name === node.name)!;
      assert.ok(nodes.items.some((n) => n.metadata.labels.type === 'kwok'));
      assert.equal(real.metadata.labels['asb.dev/real-node'], 'true');
      assert.deepEqual(
        real.spec.taints?.map((t) => `${t.key}:${t.effect}`),
        ['asb.dev/real-node:NoSchedule'],
      );
      assert.equal(real.spec.podCIDR, node.podCIDR);
      assert.match(real.status.nodeInfo.containerRuntimeVersion, /^containerd:\/\/v?2\.4\./);
    });

    it('runs a runc pod on the real node, with an address from its bridge', async (t) => {
      const p = await runPod(t, 'plain');
      assert.equal(p.spec.nodeName, node.name);
      const prefix = node.podCIDR.replace(/\.0\/24$/, '.');
      assert.ok(p.status.podIP!.startsWith(prefix), `${p.status.podIP} in ${node.podCIDR}`);
      // The host's kernel, under runc.
      assert.equal(
        cluster.kubectl('exec', 'plain', '--', 'uname', '-r').trim(),
        readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim(),
      );
      // Reached at its address from the host, over the bridge.
      assert.deepEqual(await get(`http://${p.status.podIP}:8080/`), { status: 200, body: PAGE });
      // Its service account token, a volume the kubelet mounted (in its own mount namespace).
      assert.equal(cluster.kubectl('exec', 'plain', '--', 'cat', `${TOKEN_DIR}/namespace`), 'default');
      // Its seccomp filter (runc built with libseccomp: Debian's libseccomp-dev at build time).
      assert.match(cluster.kubectl('exec', 'plain', '--', 'cat', '/proc/1/status'), /^Seccomp:\s+2$/m);
    });

    it('runs a gVisor pod (runtimeClassName: gvisor): its kernel is gVisor', async (t) => {
      const p = await runPod(t, 'sandboxed', 'gvisor');
      assert.equal(p.spec.nodeName, node.name);
      const dmesg = cluster.kubectl('exec', 'sandboxed', '--', 'dmesg');
      assert.match(dmesg, /Starting gVisor/);
      const uname = cluster.kubectl('exec', 'sandboxed', '--', 'uname', '-a');
      assert.notEqual(uname.split(' ')[2], readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim(), uname);
      // Its network stack is gVisor's own (netstack), on the pod's veth: reached at its address.
      assert.deepEqual(await get(`http://${p.status.podIP}:8080/`), { status: 200, body: PAGE });
      assert.equal(cluster.kubectl('exec', 'sandboxed', '--', 'cat', `${TOKEN_DIR}/namespace`), 'default');
    });

    for (const name of ['plain', 'sandboxed']) {
      it(`kubectl port-forward reaches the ${name === 'plain' ? 'runc' : 'gVisor'} pod`, async () => {
        const f = await portForward(cluster, name);
        try {
          assert.deepEqual(await get(`http://127.0.0.1:${f.port}/`), { status: 200, body: PAGE });
        } catch (err) {
          throw new Error(`${(err as Error).message}\n${f.output()}`, { cause: err });
        } finally {
          f.proc.kill();
        }
      });
    }

    it('kubectl logs reads what the pods wrote', () => {
      assert.match(cluster.kubectl('logs', 'plain'), /hello from plain/);
      assert.match(cluster.kubectl('logs', 'sandboxed'), /hello from sandboxed/);
    });

    it('stops leaving nothing behind: no processes, mounts, cgroups, bridge', async () => {
      const cgroups = readFileSync('/proc/self/mountinfo', 'utf8')
        .split('\n')
        .filter((l) => / - cgroup2? /.test(l))
        .map((l) => l.split(' ')[4]!);
      await node.stop();
      const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
        .split('\n')
        .filter((l) => l.split(' ')[4]?.startsWith(node.dir));
      assert.deepEqual(mounts, []);
      // No process of the node's: shims name its socket, runsc its root, the kubelet its directory.
      const procs = readdirSync('/proc')
        .filter((p) => /^\d+$/.test(p))
        .flatMap((p) => {
          try {
            const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8').replace(/\0/g, ' ');
            return cmd.includes(node.dir) ? [`${p}: ${cmd}`] : [];
          } catch {
            return [];
          }
        });
      assert.deepEqual(procs, []);
      assert.equal(existsSync(`/sys/class/net/${node.bridge}`), false, 'bridge left');
      const cgName = `asbk8s-${node.bridge.slice('asbk8s'.length)}`;
      // The kubelet's links to the containers' logs (in a directory of the machine's).
      const links = existsSync('/var/log/containers')
        ? readdirSync('/var/log/containers').filter((f) => {
            try {
              return readlinkSync(`/var/log/containers/${f}`).startsWith(node.dir);
            } catch {
              return false;
            }
          })
        : [];
      assert.deepEqual(links, []);
      assert.deepEqual(
        cgroups.filter((m) => existsSync(`${m}/${cgName}`)),
        [],
        'cgroups left',
      );
      assert.equal(existsSync(node.dir), process.env.ASB_K8S_KEEP === '1');
      // The pods' records stay with the control plane; the node is gone from it.
      assert.throws(() => cluster.kubectl('get', 'node', node.name));
    });
  },
);
