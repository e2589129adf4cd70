// The template's managed NetworkPolicy, enforced on the real node (node.ts) by SIG Network's
// kube-network-policies (tools/k8s/netpol, patched: see kube-network-policies.patch there), run
// as a host process: a sandbox pod under the default policy that our controller writes reaches
// a public address, and neither a private-range one nor the API server nor another namespace's
// pod, and only the router's pods reach it; a template whose rules allow one namespace reaches a
// server pod there and nothing else; a pod without a policy reaches everything.
//
// The public and private servers listen on this machine, on addresses of a link of the test's
// own: the pods' traffic to them goes by the host's INPUT hook. Pod to pod goes over the node's
// bridge (and through the host's FORWARD hook: br_netfilter).
import { describe, it, before, after, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { existsSync, openSync, closeSync, readFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createTcpServer, connect, type Server as TcpServer } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { BIN, freePort, startCluster, waitFor, type Cluster } from './cluster.ts';
import { startRealNode, realNodeSkip, onRealNode, type RealNode } from './node.ts';
import { busybox } from '../support/images.ts';
import { LABEL_SANDBOX_TEMPLATE_REF_HASH, nameHash } from '@asb/api';
import type { SandboxTemplate } from '@asb/api';
import {
  comparable,
  defaultNetworkPolicySpec,
  desiredNetworkPolicySpec,
} from '../../packages/k8s/src/controller/template-network-policy.ts';

const NETPOL = join(BIN, 'kube-network-policies');
/** kube-network-policies' nftables table (its default name). */
const TABLE = 'kube-network-policies';
const IMAGE = 'localhost/asb/busybox:netpol';
const TEMPLATE = 'netpol-template';
/** A template whose own rules replace the default: egress to one namespace of the test's only. */
const CUSTOM_TEMPLATE = 'netpol-one-namespace';
/** What every pod serves on :8080. */
const POD_PAGE = 'a pod\n';
const POD_PORT = 8080;

const skip = () =>
  realNodeSkip() ??
  (existsSync(NETPOL)
    ? undefined
    : 'not built: kube-network-policies (tools/k8s/netpol; node --import tsx test/k8s/build.ts)');

const image = () =>
  busybox(
    { Env: ['PATH=/bin'] },
    // (Every pod serves this page on :8080: the pod-to-pod checks fetch it.)
    { applets: ['nc', 'timeout', 'httpd', 'ssl_client'], files: { 'srv/index.html': 'a pod\n' } },
  );

const execFileAsync = promisify(execFile);
const run = (cmd: string, args: string[]) =>
  execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const tryRun = (cmd: string, args: string[]) => {
  try {
    return run(cmd, args);
  } catch {
    return undefined;
  }
};

describe(
  "the template's managed NetworkPolicy, enforced by kube-network-policies on the real node",
  { skip: skip(), timeout: 900_000 },
  () => {
    let cluster: Cluster;
    let node: RealNode;
    let netpol: ChildProcess | undefined;
    const log = (m: string) => process.stderr.write(`${m}\n`);
    const id = randomBytes(3).toString('hex');
    const ns = `np-${id}`;
    /** A namespace of the test's with a server pod, which one template's rules allow. */
    const serverNs = `np-srv-${id}`;
    /** Where upstream's install runs the router: the default policy lets its pods in. */
    const routerNs = 'agent-sandbox-system';
    // A link of the test's own holding the servers' addresses (no dummy driver in this kernel: a
    // bridge with no ports does as well).
    const link = `asbk8snp${id}`;
    const publicIP = `203.0.113.${randomInt(2, 250)}`;
    const privateIP = `192.168.${randomInt(1, 250)}.${randomInt(2, 250)}`;
    let gateway = '';
    let port = 0;
    let apiRelayPort = 0;
    const servers: Array<HttpServer | TcpServer> = [];
    const ip = new Map<string, string>();

    const kubectl = (...args: string[]) => cluster.kubectl(...args);
    const netpolLog = () => {
      try {
        return readFileSync(join(cluster.dir, 'logs', 'kube-network-policies.log'), 'utf8')
          .split('\n')
          .slice(-30)
          .join('\n');
      } catch {
        return '';
      }
    };

    before(async () => {
      for (const a of [publicIP, privateIP])
        if ((tryRun('ip', ['-4', '-o', 'addr']) ?? '').includes(` ${a}/`)) throw new Error(`${a} is in use here`);
      cluster = await startCluster({ log });
      node = await startRealNode(cluster, { log });
      await node.importImage(IMAGE, image());
      gateway = node.podCIDR.replace(/\.0\/24$/, '.1');

      run('ip', ['link', 'add', link, 'type', 'bridge']);
      for (const a of [publicIP, privateIP]) run('ip', ['addr', 'add', `${a}/32`, 'dev', link]);
      run('ip', ['link', 'set', link, 'up']);
      port = await freePort();
      for (const [addr, body] of [
        [publicIP, 'public server\n'],
        [privateIP, 'private server\n'],
      ] as const) {
        const s = createHttpServer((_req, res) => res.end(body));
        await new Promise<void>((r) => s.listen(port, addr, r));
        servers.push(s);
      }
      // The API server listens on loopback only (cluster.ts): pods reach it at their node's
      // address on their network (its gateway), as a pod reaches a host-network API server.
      const api = new URL(cluster.server);
      const relay = createTcpServer((c) => {
        const up = connect(Number(api.port), api.hostname);
        c.pipe(up).pipe(c);
        const end = () => (c.destroy(), up.destroy());
        c.on('error', end);
        up.on('error', end);
      });
      apiRelayPort = await freePort();
      await new Promise<void>((r) => relay.listen(apiRelayPort, gateway, r));
      servers.push(relay);

      const out = openSync(join(cluster.dir, 'logs', 'kube-network-policies.log'), 'a');
      netpol = spawn(
        NETPOL,
        [
          '--kubeconfig',
          cluster.kubeconfig,
          '--hostname-override',
          node.name,
          // containerd runs without NRI here (node.ts): pod IPs come from the API server.
          '--disable-nri=true',
          // A kernel with the conntrack fix (6.12+): no DNS workaround chain.
          '--netfilter-bug-1766-fix=false',
          '--nfqueue-id',
          String(randomInt(1000, 60000)),
          '--metrics-bind-address',
          `127.0.0.1:${await freePort()}`,
          '--v',
          '2',
        ],
        { stdio: ['ignore', out, out] },
      );
      closeSync(out);
      await waitFor(
        `kube-network-policies' table`,
        () => {
          if (netpol!.exitCode !== null) throw new Error(`kube-network-policies exited`);
          // (nft shows the compat NFQUEUE target as a queue statement.)
          return tryRun('nft', ['list', 'chain', 'inet', TABLE, 'input'])?.includes('queue num');
        },
        60_000,
      ).catch((err: Error) => {
        throw new Error(`${err.message}\n${netpolLog()}`, { cause: err });
      });
      for (const n of [ns, serverNs, routerNs]) kubectl('create', 'namespace', n);
    });

    after(async () => {
      if (netpol && netpol.exitCode === null && netpol.signalCode === null) {
        // It cleans its table up on SIGINT (not SIGTERM), after a grace of 5 s.
        await new Promise<void>((resolve) => {
          const t = setTimeout(() => netpol!.kill('SIGKILL'), 20_000);
          netpol!.once('exit', () => {
            clearTimeout(t);
            resolve();
          });
          netpol!.kill('SIGINT');
        });
      }
      tryRun('nft', ['delete', 'table', 'inet', TABLE]);
      for (const s of servers) s.close();
      if (existsSync(`/sys/class/net/${link}`)) tryRun('ip', ['link', 'del', link]);
      await node?.stop();
      await cluster?.stop();
    });

    const runPod = async (
      t: TestContext,
      name: string,
      labels: Record<string, string>,
      runtimeClassName?: string,
      namespace = ns,
    ) => {
      const t0 = Date.now();
      execFileSync('kubectl', ['--kubeconfig', cluster.kubeconfig, 'create', '-f', '-'], {
        input: JSON.stringify({
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: { name, namespace, labels },
          spec: {
            ...onRealNode,
            ...(runtimeClassName ? { runtimeClassName } : {}),
            terminationGracePeriodSeconds: 1,
            containers: [
              {
                name: 'main',
                image: IMAGE,
                imagePullPolicy: 'Never',
                command: ['httpd', '-f', '-p', '8080', '-h', '/srv'],
              },
            ],
          },
        }),
        stdio: ['pipe', 'ignore', 'pipe'],
      });
      const podIP = await waitFor(
        `pod ${name} to run`,
        () => {
          const p = JSON.parse(kubectl('get', 'pod', '-n', namespace, name, '-o', 'json')) as {
            status: { phase?: string; podIP?: string };
          };
          if (p.status.phase === 'Failed') throw new Error(`pod ${name} failed`);
          return p.status.phase === 'Running' && p.status.podIP;
        },
        120_000,
      );
      ip.set(name, podIP);
      t.diagnostic(`pod ${name} (${runtimeClassName ?? 'runc'}) at ${podIP} in ${Date.now() - t0} ms`);
    };

    /**
     * What a pod gets for a plain HTTP request to host:port (busybox's nc), or `failed: <why>`.
     * Asynchronous: the servers run in this process.
     */
    const request = async (pod: string, host: string, to: number, namespace = ns) => {
      try {
        const { stdout } = await execFileAsync('kubectl', [
          '--kubeconfig',
          cluster.kubeconfig,
          'exec',
          '-n',
          namespace,
          pod,
          '--',
          'sh',
          '-c',
          // (Not busybox's wget: with -T it crashes in these images.)
          `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | timeout 8 nc -w 4 ${host} ${to}`,
        ]);
        return stdout;
      } catch (err) {
        return `failed: ${(err as { stderr?: string }).stderr ?? (err as Error).message}`;
      }
    };
    /** The body a pod gets from one of the test's servers, or `failed: <why>`. */
    const fetchFrom = async (pod: string, host: string, to = port, namespace = ns) => {
      const out = await request(pod, host, to, namespace);
      return out.startsWith('failed: ') ? out : out.slice(out.indexOf('\r\n\r\n') + 4);
    };
    /** What a pod gets from the API server's /version through the relay (anonymous), or `failed: <why>`. */
    const fromApiServer = async (pod: string) => {
      try {
        const url = `https://${gateway}:${apiRelayPort}/version`;
        const args = [
          'exec',
          '-n',
          ns,
          pod,
          '--',
          'timeout',
          '8',
          'wget',
          '-q',
          '--no-check-certificate',
          '-O',
          '-',
          url,
        ];
        return (await execFileAsync('kubectl', ['--kubeconfig', cluster.kubeconfig, ...args])).stdout;
      } catch (err) {
        return `failed: ${(err as { stderr?: string }).stderr ?? (err as Error).message}`;
      }
    };
    // Its version, or its TLS alert: busybox's TLS and the API server share no cipher suite, and
    // the alert is the API server's answer all the same (a dropped SYN gets none).
    const API_ANSWER = /"gitVersion": "v1\.37\.|TLS error from peer/;

    it('runs the pods: two of the template (runc, gVisor) under its default policy, one without', async (t) => {
      const spec = JSON.parse(comparable(defaultNetworkPolicySpec(TEMPLATE))) as object;
      execFileSync('kubectl', ['--kubeconfig', cluster.kubeconfig, 'create', '-f', '-'], {
        input: JSON.stringify({
          apiVersion: 'networking.k8s.io/v1',
          kind: 'NetworkPolicy',
          metadata: { name: `${TEMPLATE}-network-policy`, namespace: ns },
          spec,
        }),
        stdio: ['pipe', 'ignore', 'pipe'],
      });
      const labels = { [LABEL_SANDBOX_TEMPLATE_REF_HASH]: nameHash(TEMPLATE) };
      await runPod(t, 'sandbox', labels);
      await runPod(t, 'sandbox-gvisor', labels, 'gvisor');
      await runPod(t, 'open', { app: 'open' });
      // The policy's pods' addresses in its set: their packets go to it from now on.
      const t0 = Date.now();
      await waitFor(
        'the sandbox pods in podips-v4',
        () => {
          const set = tryRun('nft', ['list', 'set', 'inet', TABLE, 'podips-v4']) ?? '';
          return ['sandbox', 'sandbox-gvisor'].every((p) => set.includes(ip.get(p)!)) && !set.includes(ip.get('open')!);
        },
        30_000,
      );
      t.diagnostic(`pods in kube-network-policies' set ${Date.now() - t0} ms after the last Running`);
    });

    it('a pod without a policy reaches the public, the private and the API server', async () => {
      assert.equal(await fetchFrom('open', publicIP), 'public server\n');
      assert.equal(await fetchFrom('open', privateIP), 'private server\n');
      assert.match(await fromApiServer('open'), API_ANSWER);
    });

    for (const pod of ['sandbox', 'sandbox-gvisor'])
      it(`${pod} reaches the public server, and neither the private one nor the API server`, async (t) => {
        const t0 = Date.now();
        assert.equal(await fetchFrom(pod, publicIP), 'public server\n', netpolLog());
        t.diagnostic(`allowed: ${Date.now() - t0} ms`);
        const t1 = Date.now();
        assert.match(await fetchFrom(pod, privateIP), /^failed: /);
        t.diagnostic(`private refused (dropped; nc gave up) in ${Date.now() - t1} ms`);
        const api = await fromApiServer(pod);
        assert.doesNotMatch(api, API_ANSWER);
        assert.match(api, /^failed: /);
        // kube-network-policies decided so (its log says each verdict at --v=2).
        assert.match(readFileSync(join(cluster.dir, 'logs', 'kube-network-policies.log'), 'utf8'), /verdict="drop"/);
      });

    it("runs a server pod in a namespace of the test's, a router pod, and a pod of a template whose rules allow that namespace only", async (t) => {
      const custom = {
        apiVersion: 'extensions.agents.x-k8s.io/v1beta1',
        kind: 'SandboxTemplate',
        metadata: { name: CUSTOM_TEMPLATE, namespace: ns },
        spec: {
          podTemplate: { spec: { containers: [] } },
          networkPolicy: {
            egress: [{ to: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': serverNs } } }] }],
          },
        },
      } as unknown as SandboxTemplate;
      execFileSync('kubectl', ['--kubeconfig', cluster.kubeconfig, 'create', '-f', '-'], {
        input: JSON.stringify({
          apiVersion: 'networking.k8s.io/v1',
          kind: 'NetworkPolicy',
          metadata: { name: `${CUSTOM_TEMPLATE}-network-policy`, namespace: ns },
          spec: JSON.parse(comparable(desiredNetworkPolicySpec(custom))) as object,
        }),
        stdio: ['pipe', 'ignore', 'pipe'],
      });
      await runPod(t, 'server', { app: 'server' }, undefined, serverNs);
      await runPod(t, 'router', { app: 'sandbox-router' }, undefined, routerNs);
      await runPod(t, 'custom', { [LABEL_SANDBOX_TEMPLATE_REF_HASH]: nameHash(CUSTOM_TEMPLATE) }, 'gvisor');
      await waitFor(
        'the custom pod in podips-v4',
        () => (tryRun('nft', ['list', 'set', 'inet', TABLE, 'podips-v4']) ?? '').includes(ip.get('custom')!),
        30_000,
      );
    });

    it("the template's own rules: its pod reaches the allowed namespace's server pod, and not the public server", async () => {
      assert.equal(await fetchFrom('custom', ip.get('server')!, POD_PORT), POD_PAGE, netpolLog());
      assert.match(await fetchFrom('custom', publicIP), /^failed: /);
    });

    it("the default policy: a sandbox does not reach another namespace's pod; only the router's pods reach it", async () => {
      // (The server is a pod like any: without a policy of its own, the open pod reaches it.)
      assert.equal(await fetchFrom('open', ip.get('server')!, POD_PORT), POD_PAGE);
      for (const pod of ['sandbox', 'sandbox-gvisor']) {
        assert.match(await fetchFrom(pod, ip.get('server')!, POD_PORT), /^failed: /, pod);
        assert.equal(await fetchFrom('router', ip.get(pod)!, POD_PORT, routerNs), POD_PAGE, `router → ${pod}`);
        assert.match(await fetchFrom('open', ip.get(pod)!, POD_PORT), /^failed: /, `open → ${pod}`);
      }
    });

    it('stops leaving nothing behind: its nftables table, the test link', async (t) => {
      const t0 = Date.now();
      assert.equal(netpol!.exitCode ?? netpol!.signalCode, null, `kube-network-policies exited\n${netpolLog()}`);
      const how = await new Promise<string>((resolve) => {
        netpol!.once('exit', (code, signal) => resolve(`${code ?? signal}`));
        netpol!.kill('SIGINT');
      });
      t.diagnostic(`kube-network-policies exited (${how}) ${Date.now() - t0} ms after SIGINT`);
      assert.equal(tryRun('nft', ['list', 'table', 'inet', TABLE]), undefined, `table left\n${netpolLog()}`);
      tryRun('ip', ['link', 'del', link]);
      assert.equal(existsSync(`/sys/class/net/${link}`), false);
    });
  },
);
