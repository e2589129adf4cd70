// A real node beside KWOK's in the control plane that cluster.ts starts: the kubelet (v1.37.2,
// the API server's own module), containerd 2.4 with runc for ordinary pods and gVisor's shim
// (dist/runsc) for `runtimeClassName: gvisor`, and the CNI plugins (a bridge with host-local
// addresses), so that pods really run on this machine. Everything the node makes lives in its
// own directory under the cluster's (state, mounts, logs, sockets), its own cgroup subtree
// (`/asbk8s-<id>` in every hierarchy: the kubelet's cgroupRoot, and where containerd and the
// kubelet run, so that every shim and sandbox of it is found there), and its own bridge
// (`asbk8s<id>`); stop() takes all of it away and touches nothing else.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  realpathSync,
  rmSync,
  rmdirSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { connect } from 'node:net';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { ociLayout, type ImageSpec } from '../../packages/oci/test/support/registry.ts';
import { BIN, CACHE, freePort, issueCert, kubeconfig, logTails, waitFor, type Cluster } from './cluster.ts';

const repo = new URL('../../', import.meta.url).pathname;

/** What the node runs, all built into BIN by ensureBinaries() (test/k8s/build.ts). */
export const NODE_BINS = [
  'kubelet',
  'containerd',
  'containerd-shim-runc-v2',
  'containerd-shim-runsc-v1',
  'ctr',
  'crictl',
  'runc',
  'bridge',
  'host-local',
  'loopback',
  'portmap',
];

/** What a node of a cluster started with `podNetwork` runs besides: Services and cluster DNS. */
export const NETWORK_BINS = ['kube-proxy', 'coredns'];

/** The real node's label and taint: only pods that tolerate it and select it run there. */
export const REAL_NODE_LABEL = 'asb.dev/real-node';
/** A pod's scheduling onto the real node (merge into its spec). */
export const onRealNode = {
  nodeSelector: { [REAL_NODE_LABEL]: 'true' },
  tolerations: [{ key: REAL_NODE_LABEL, operator: 'Exists', effect: 'NoSchedule' }],
};

/** The sandbox ("pause") image, built here (no registry outside is reachable). */
export const PAUSE_IMAGE = 'localhost/asb/pause:3.10';

const runscPath = () => join(repo, 'dist', 'runsc');

/** Why a real node cannot start here, or undefined when it can. */
export function realNodeSkip(): string | undefined {
  if (process.getuid?.() !== 0) return 'a real node needs root (cgroups, mounts, network namespaces)';
  if (process.platform !== 'linux') return 'a real node needs Linux';
  const missing = NODE_BINS.filter((b) => !existsSync(join(BIN, b)));
  if (missing.length) return `not built: ${missing.join(', ')} (node --import tsx test/k8s/build.ts)`;
  if (!existsSync(runscPath())) return 'no dist/runsc (scripts/build-runsc.sh)';
  if (!['/usr/bin/musl-gcc', '/usr/bin/gcc'].some((c) => existsSync(c))) return 'no C compiler for the pause image';
  for (const tool of ['ip', 'mount', 'umount', 'unshare'])
    if (!['/usr/sbin', '/usr/bin', '/sbin', '/bin'].some((d) => existsSync(join(d, tool)))) return `no ${tool}`;
  return undefined;
}

export interface RealNode {
  name: string;
  /** Everything of the node lives under here (removed by stop()). */
  dir: string;
  /** The pods' range (the bridge's subnet; also the Node's spec.podCIDR). */
  podCIDR: string;
  /** The pods' link on the host: their bridge. */
  bridge: string;
  containerdSocket: string;
  /** crictl against this node's containerd. */
  crictl(...args: string[]): string;
  /** ctr in the CRI's namespace (k8s.io) of this node's containerd. */
  ctr(...args: string[]): string;
  /** Builds an image (the test images' ImageSpec) and imports it as `ref` (pods use imagePullPolicy: Never). */
  importImage(ref: string, spec: ImageSpec): Promise<void>;
  /** Milliseconds: containerd up, and the node Ready since start. */
  timings: { containerdMs: number; readyMs: number };
  stop(): Promise<void>;
}

const run = (cmd: string, args: string[], opts: { timeout?: number; input?: string } = {}) =>
  execFileSync(cmd, args, { encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'], ...opts });

/** Best effort: what fails here is reported by what stop() checks afterwards. */
const tryRun = (cmd: string, args: string[], timeout = 60_000) => {
  try {
    return run(cmd, args, { timeout });
  } catch {
    return undefined;
  }
};

/** The mount points of this process's namespace (mountinfo's 5th field, octal escapes decoded). */
function mountPoints(): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split(' ')[4]!.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8))));
}

const under = (path: string, dir: string) => path === dir || path.startsWith(dir + '/');

/** The cgroup hierarchies mounted here (v1 controllers, and v2's unified one in hybrid mode). */
function cgroupMounts(): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((l) => / - cgroup2? /.test(l))
    .map((l) => l.split(' ')[4]!);
}

/** Every cgroup directory under `root`, deepest first. */
function cgroupTree(root: string): string[] {
  if (!existsSync(root)) return [];
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) walk(join(d, e.name));
    out.push(d);
  };
  walk(root);
  return out;
}

const procsIn = (cg: string) => {
  try {
    return readFileSync(join(cg, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
};

/** A /24 in 10.88.0.0/16 that no route or address of this machine overlaps (KWOK's pods use 10.244/16). */
function freePodSubnet(): number {
  const used = new Set<number>();
  const text =
    (tryRun('ip', ['-4', 'route', 'show', 'table', 'all']) ?? '') + (tryRun('ip', ['-4', '-o', 'addr']) ?? '');
  for (const m of text.matchAll(/\b10\.88\.(\d+)\.\d+/g)) used.add(Number(m[1]));
  // 10.88.0.0/16 as a whole (or a bigger prefix) in a route would cover all of them.
  if (/\b10\.(88\.0\.0\/1[0-6]|0\.0\.0\/[0-8])\b/.test(text)) throw new Error('10.88.0.0/16 is routed here already');
  const start = randomBytes(1)[0]!;
  for (let i = 0; i < 256; i++) {
    const n = (start + i) % 256;
    if (!used.has(n)) return n;
  }
  throw new Error('no free /24 in 10.88.0.0/16');
}

/** The node's name: the machine's own (as kubeadm would), when it resolves to loopback. */
async function defaultNodeName(): Promise<string> {
  const host = hostname().toLowerCase();
  try {
    const addrs = await lookup(host, { all: true });
    if (addrs.length && addrs.every((a) => a.address.startsWith('127.') || a.address === '::1')) return host;
  } catch {
    // (Unresolvable: below.)
  }
  return 'localhost';
}

const PAUSE_C = `#include <signal.h>
#include <unistd.h>
#include <sys/wait.h>
/* The pod's sandbox process: holds the namespaces, reaps orphans, leaves on SIGINT/SIGTERM. */
static void down(int s) { (void)s; _exit(0); }
static void reap(int s) { (void)s; while (waitpid(-1, 0, WNOHANG) > 0) {} }
int main(void) {
  struct sigaction d = {0}, r = {0};
  d.sa_handler = down;
  r.sa_handler = reap;
  r.sa_flags = SA_NOCLDSTOP;
  sigaction(SIGINT, &d, 0);
  sigaction(SIGTERM, &d, 0);
  sigaction(SIGCHLD, &r, 0);
  for (;;) pause();
}
`;

/** A static pause program (musl when there is musl-gcc), built once per source into the cache. */
function pauseBinary(): string {
  const key = createHash('sha256').update(PAUSE_C).digest('hex').slice(0, 12);
  const dir = join(CACHE, 'pause', key);
  const bin = join(dir, 'pause');
  if (existsSync(bin)) return bin;
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'pause.c'), PAUSE_C);
  const cc = existsSync('/usr/bin/musl-gcc') ? '/usr/bin/musl-gcc' : '/usr/bin/gcc';
  run(cc, ['-static', '-Os', '-s', '-o', bin + '.tmp', join(dir, 'pause.c')]);
  run('mv', [bin + '.tmp', bin]);
  return bin;
}

/**
 * Starts containerd and a kubelet registered as a node of `cluster`; resolves when the node is
 * Ready (with the pause image in place; other images come by importImage). The node carries the
 * label `asb.dev/real-node=true` and the taint `asb.dev/real-node=true:NoSchedule`: the other
 * suites' pods (and bench:k8s's thousands) stay on KWOK's nodes, and a pod that wants real
 * containers says so (`onRealNode`).
 *
 * The API server's kubelet client has no certificate of its own (cluster.ts gives it none), so
 * the kubelet serves anonymous requests, and only on 127.0.0.1, which pods cannot reach; the API
 * server finds it there by the node's name, which resolves to loopback (the machine's host name
 * when /etc/hosts says so, else `localhost`). A cluster started with `portForwards` prefers
 * InternalIP (KWOK's address), which this kubelet does not serve: logs, exec and port-forward
 * of its pods would fail there. (The API server's node proxy refuses loopback addresses, so
 * /nodes/<name>/proxy cannot tell beforehand.)
 *
 * In a cluster started with `podNetwork` the API server has a kubelet client certificate: the
 * kubelet authenticates it (x509) and asks the API server what others may do (webhook), and the
 * node runs kube-proxy (nftables mode, its own `kube-proxy` tables; one such node per machine)
 * and CoreDNS on the pods' gateway (the kubelet's clusterDNS).
 */
export async function startRealNode(
  cluster: Cluster,
  opts: {
    name?: string;
    log?: (m: string) => void;
    taint?: boolean;
    /** Registries by host (`registry.k8s.io`, `docker.io`) and the loopback registry that mirrors
     *  each (serveRuntimeImages' `mirrors`): the node pulls their images from there. */
    mirrors?: Array<{ host: string; mirror: string }>;
  } = {},
): Promise<RealNode> {
  const skip = realNodeSkip();
  if (skip) throw new Error(skip);
  const missing = (cluster.podNetwork ? NETWORK_BINS : []).filter((b) => !existsSync(join(BIN, b)));
  if (missing.length) throw new Error(`not built: ${missing.join(', ')} (node --import tsx test/k8s/build.ts)`);
  // gVisor's shim and runsc from one gVisor commit (two go.mod files name it).
  const pins = ['tools/gvisor/go.mod', 'tools/k8s/node/runsc-shim/go.mod'].map(
    (f) => /^require gvisor\.dev\/gvisor (\S+)$/m.exec(readFileSync(join(repo, f), 'utf8'))?.[1],
  );
  if (pins[0] !== pins[1]) throw new Error(`gVisor pins differ: runsc ${pins[0]}, its containerd shim ${pins[1]}`);
  const log = opts.log ?? (() => {});
  const t0 = Date.now();
  const name = opts.name ?? (await defaultNodeName());
  const id = randomBytes(3).toString('hex');
  const bridge = `asbk8s${id}`;
  const cgName = `asbk8s-${id}`;
  const subnet = freePodSubnet();
  const podCIDR = `10.88.${subnet}.0/24`;
  const d = join(cluster.dir, `node-${id}`);
  for (const sub of ['logs', 'cni/net.d', 'cni/bin', 'cni/ipam', 'pki', 'sysctl', 'pod-logs', 'kubelet'])
    mkdirSync(join(d, sub), { recursive: true });
  const sock = join(d, 'containerd.sock');
  let containerdProc: ChildProcess | undefined;
  let kubeletProc: ChildProcess | undefined;
  // With the cluster's podNetwork: Services (kube-proxy) and cluster DNS (CoreDNS) for the pods.
  const podNetwork = cluster.podNetwork;
  const gateway = `10.88.${subnet}.1`;
  let proxyProc: ChildProcess | undefined;
  let dnsProc: ChildProcess | undefined;
  const cgroupRoots = cgroupMounts().map((m) => join(m, cgName));
  const sandboxIds = new Set<string>();
  const varLogContainers = '/var/log/containers';
  const hadVarLogContainers = existsSync(varLogContainers);
  const runscShimSockets = '/run/containerd/s';
  const hadRunscShimSockets = existsSync(runscShimSockets);
  const hadRunContainerd = existsSync(dirname(runscShimSockets));
  const shimSocketsBefore = new Set(hadRunscShimSockets ? readdirSync(runscShimSockets) : []);
  let stopped = false;

  const crictl = (...args: string[]) =>
    run(join(BIN, 'crictl'), ['--runtime-endpoint', `unix://${sock}`, '--image-endpoint', `unix://${sock}`, ...args], {
      timeout: 120_000,
    });
  const ctr = (...args: string[]) => run(join(BIN, 'ctr'), ['--address', sock, '--namespace', 'k8s.io', ...args]);

  // Shared, so that what the kubelet mounts in its own mount namespace (below) under here
  // (volumes) shows in the host's, where containerd and runc look for it; one mount to take
  // away at the end, under which all the others are.
  run('mount', ['--bind', d, d]);
  run('mount', ['--make-shared', d]);

  const stop = async () => {
    if (stopped) return;
    stopped = true;
    const problems: string[] = [];
    await stopProcess(kubeletProc, 10_000);
    await stopProcess(proxyProc, 10_000);
    await stopProcess(dnsProc, 10_000);
    // kube-proxy leaves its tables when it stops: these two are its own, no one else's.
    if (proxyProc)
      for (const family of ['ip', 'ip6'])
        if (tryRun('nft', ['list', 'table', family, 'kube-proxy']) !== undefined)
          if (tryRun('nft', ['delete', 'table', family, 'kube-proxy']) === undefined)
            problems.push(`nft delete table ${family} kube-proxy failed`);
    // The CRI's own way first: each pod's containers, its shim and sandbox, its network
    // (CNI DEL) and its network namespace.
    if (containerdProc && containerdProc.exitCode === null) {
      for (const p of (tryRun(join(BIN, 'crictl'), ['--runtime-endpoint', `unix://${sock}`, 'pods', '-q']) ?? '')
        .split('\n')
        .filter(Boolean))
        sandboxIds.add(p);
      if (
        tryRun(
          join(BIN, 'crictl'),
          ['--runtime-endpoint', `unix://${sock}`, '--timeout', '60s', 'rmp', '--all', '--force'],
          120_000,
        ) === undefined
      )
        problems.push('crictl rmp --all --force failed');
    }
    await stopProcess(containerdProc, 10_000);
    // Then whatever is left in the node's cgroups (a shim or a sandbox that did not stop).
    for (let i = 0; i < 50; i++) {
      const left = cgroupRoots.flatMap(cgroupTree).flatMap(procsIn);
      if (!left.length) break;
      for (const pid of new Set(left)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // (Gone already.)
        }
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    // Mounts under the node's directory, deepest first (rootfs overlays, volumes, netns files).
    for (let i = 0; i < 5; i++) {
      const mine = mountPoints()
        .filter((m) => under(m, d))
        .reverse();
      if (!mine.length) break;
      for (const m of mine) if (tryRun('umount', [m]) === undefined) tryRun('umount', ['-l', m]);
    }
    // The bridge (veths on it die with their network namespaces; any left go with it).
    if (existsSync(`/sys/class/net/${bridge}`)) {
      if (existsSync(`/sys/class/net/${bridge}/brif`))
        for (const l of readdirSync(`/sys/class/net/${bridge}/brif`, { withFileTypes: true }))
          tryRun('ip', ['link', 'del', l.name]);
      tryRun('ip', ['link', 'del', bridge]);
    }
    for (const cg of cgroupRoots.flatMap(cgroupTree)) {
      try {
        rmdirSync(cg);
      } catch (err) {
        problems.push(`cgroup ${cg}: ${(err as Error).message}`);
      }
    }
    // The kubelet's links to its containers' logs (a fixed directory), those into ours only.
    if (existsSync(varLogContainers)) {
      for (const f of readdirSync(varLogContainers)) {
        try {
          if (under(readlinkSync(join(varLogContainers, f)), d)) rmSync(join(varLogContainers, f));
        } catch {
          // (Not a link.)
        }
      }
      if (!hadVarLogContainers) tryRun('rmdir', [varLogContainers]);
    }
    // gVisor's shim keeps its socket in containerd's default place whatever the configuration
    // says (its containerd library predates socket_dir): the name is a hash of ours and the
    // pod's; a failed start leaves one of a pod that never was, so also any that appeared since
    // the node started and that nothing serves any more.
    const stale = new Set<string>();
    for (const sb of sandboxIds)
      for (const suffix of ['', '/debug'])
        stale.add(createHash('sha256').update(`${sock}/k8s.io/${sb}${suffix}`).digest('hex'));
    for (const f of existsSync(runscShimSockets) ? readdirSync(runscShimSockets) : [])
      if (!shimSocketsBefore.has(f) && !(await serving(join(runscShimSockets, f)))) stale.add(f);
    for (const f of stale) rmSync(join(runscShimSockets, f), { force: true });
    if (!hadRunscShimSockets) tryRun('rmdir', [runscShimSockets]);
    if (!hadRunContainerd) tryRun('rmdir', [dirname(runscShimSockets)]);
    tryRun('kubectl', ['--kubeconfig', cluster.kubeconfig, 'delete', 'node', name, '--wait=false'], 20_000);
    const mountsLeft = mountPoints().filter((m) => under(m, d));
    if (mountsLeft.length) problems.push(`still mounted: ${mountsLeft.join(', ')}`);
    // ASB_K8S_KEEP=1 keeps the logs (cluster.ts keeps its directory too).
    else if (process.env.ASB_K8S_KEEP !== '1') rmSync(d, { recursive: true, force: true });
    if (problems.length) throw new Error(`the real node ${name} did not stop cleanly: ${problems.join('; ')}`);
  };

  // The node's directory is in the cluster's, which cluster.stop() removes: the node goes first
  // (its mounts, processes and bridge with it), whoever forgets to stop it.
  const stopCluster = cluster.stop.bind(cluster);
  cluster.stop = async () => {
    try {
      await stop();
    } finally {
      await stopCluster();
    }
  };

  try {
    // The node's cgroups, in every hierarchy; containerd and the kubelet run in `runtime`.
    for (const root of cgroupRoots) {
      for (const cg of [root, join(root, 'runtime')]) {
        mkdirSync(cg, { recursive: true });
        // (cgroup v2 alone, untried here: the pods' cgroups below the root get its controllers.)
        if (cg === root && existsSync(join(cg, 'cgroup.subtree_control'))) {
          const controllers = readFileSync(join(cg, 'cgroup.controllers'), 'utf8').trim().split(/\s+/);
          if (controllers[0])
            writeFileSync(join(cg, 'cgroup.subtree_control'), controllers.map((c) => `+${c}`).join(' '));
        }
        // A new cpuset takes no task before it has CPUs and memory nodes: its parent's.
        if (existsSync(join(cg, 'cpuset.cpus')))
          for (const f of ['cpuset.cpus', 'cpuset.mems'])
            if (!readFileSync(join(cg, f), 'utf8').trim())
              writeFileSync(join(cg, f), readFileSync(join(dirname(cg), f), 'utf8'));
      }
    }
    const procsFiles = cgroupRoots.map((r) => join(r, 'runtime', 'cgroup.procs'));
    // The bridge now, with the gateway's address (the plugin takes it as it finds it): the
    // subnet is claimed before a second node on this machine could pick it too.
    run('ip', ['link', 'add', 'name', bridge, 'type', 'bridge']);
    run('ip', ['addr', 'add', `${gateway}/24`, 'dev', bridge]);
    run('ip', ['link', 'set', bridge, 'up']);
    const start = (what: string, argv: string[]) => {
      const out = openSync(join(d, 'logs', `${what}.log`), 'a');
      // The shell joins the node's cgroups and then becomes the program: all it starts stays there.
      const p = spawn(
        '/bin/sh',
        ['-c', 'for f in $ASBK8S_CGROUPS; do echo $$ > "$f"; done; unset ASBK8S_CGROUPS; exec "$@"', what, ...argv],
        {
          stdio: ['ignore', out, out],
          env: {
            ...process.env,
            ASBK8S_CGROUPS: procsFiles.join(' '),
            PATH: `${BIN}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`,
          },
        },
      );
      closeSync(out);
      return p;
    };

    // CNI: the four plugins (and only those) where containerd looks, and one network.
    for (const p of ['bridge', 'host-local', 'loopback', 'portmap']) symlinkSync(join(BIN, p), join(d, 'cni/bin', p));
    const ipam = {
      type: 'host-local',
      ranges: [[{ subnet: podCIDR, gateway }]],
      routes: [{ dst: '0.0.0.0/0' }],
      dataDir: join(d, 'cni/ipam'),
    };
    writeFileSync(
      join(d, 'cni/net.d/10-asbk8s.conflist'),
      JSON.stringify(
        {
          cniVersion: '1.0.0',
          name: 'asbk8s',
          plugins: [
            {
              type: 'bridge',
              bridge,
              isGateway: true,
              // Nothing outside this machine is reachable: no masquerading, no iptables rules.
              ipMasq: false,
              hairpinMode: true,
              ipam,
            },
            // hostPort pods only (nftables, its own table); a no-op for the others.
            { type: 'portmap', backend: 'nftables', capabilities: { portMappings: true } },
          ],
        },
        null,
        2,
      ),
    );

    // gVisor's shim reads its options here: our runsc, its state under the node's directory.
    writeFileSync(
      join(d, 'runsc.toml'),
      `binary_name = ${JSON.stringify(realpathSync(runscPath()))}\nroot = ${JSON.stringify(join(d, 'runsc'))}\n`,
    );
    const q = JSON.stringify;
    // Registry mirrors (containerd's hosts.toml): the loopback registry, over plain HTTP, in
    // place of the real one, which nothing here reaches.
    for (const { host, mirror } of opts.mirrors ?? []) {
      mkdirSync(join(d, 'certs.d', host), { recursive: true });
      const server = host === 'docker.io' ? 'https://registry-1.docker.io' : `https://${host}`;
      writeFileSync(
        join(d, 'certs.d', host, 'hosts.toml'),
        `server = ${q(server)}\n\n[host.${q(`http://${mirror}`)}]\n  capabilities = ["pull", "resolve"]\n  skip_verify = true\n`,
      );
    }
    writeFileSync(
      join(d, 'containerd.toml'),
      `version = 3
root = ${q(join(d, 'containerd/root'))}
state = ${q(join(d, 'containerd/state'))}
temp = ${q(join(d, 'containerd/tmp'))}
# Nothing of this node outside its directory: no NRI socket, no snapshotters it does not use.
disabled_plugins = ['io.containerd.nri.v1.nri', 'io.containerd.snapshotter.v1.btrfs', 'io.containerd.snapshotter.v1.zfs', 'io.containerd.snapshotter.v1.devmapper', 'io.containerd.snapshotter.v1.blockfile', 'io.containerd.snapshotter.v1.erofs']

[grpc]
  address = ${q(sock)}
[ttrpc]
  address = ${q(sock + '.ttrpc')}

[plugins]
  [plugins.'io.containerd.internal.v1.opt']
    path = ${q(join(d, 'containerd/opt'))}
  [plugins.'io.containerd.shim.v1.manager']
    socket_dir = ${q(join(d, 's'))}
  [plugins.'io.containerd.grpc.v1.cri']
    stream_server_address = '127.0.0.1'
    stream_server_port = '0'
  [plugins.'io.containerd.cri.v1.images']
    snapshotter = 'overlayfs'
    [plugins.'io.containerd.cri.v1.images'.pinned_images]
      sandbox = ${q(PAUSE_IMAGE)}
    [plugins.'io.containerd.cri.v1.images'.registry]
      config_path = ${q(join(d, 'certs.d'))}
  [plugins.'io.containerd.cri.v1.runtime']
    netns_mounts_under_state_dir = true
    # Not below containerd's own (0 here): lowering it needs CAP_SYS_RESOURCE, which this
    # machine's root may lack (and the pods' -998 and -997 would be refused).
    restrict_oom_score_adj = true
    cdi_spec_dirs = []
    [plugins.'io.containerd.cri.v1.runtime'.containerd]
      default_runtime_name = 'runc'
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
        runtime_type = 'io.containerd.runc.v2'
        [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
          BinaryName = ${q(join(BIN, 'runc'))}
          Root = ${q(join(d, 'runc'))}
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runsc]
        runtime_type = 'io.containerd.runsc.v1'
        [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runsc.options]
          TypeUrl = 'io.containerd.runsc.v1.options'
          ConfigPath = ${q(join(d, 'runsc.toml'))}
    [plugins.'io.containerd.cri.v1.runtime'.cni]
      bin_dirs = [${q(join(d, 'cni/bin'))}]
      conf_dir = ${q(join(d, 'cni/net.d'))}
      max_conf_num = 1
`,
    );
    log(`real node ${name}: containerd (${d})`);
    const containerd = (containerdProc = start('containerd', [
      join(BIN, 'containerd'),
      '--config',
      join(d, 'containerd.toml'),
    ]));
    await waitFor(
      'containerd',
      () => {
        if (containerd.exitCode !== null) throw new Error(`containerd exited (${containerd.exitCode})`);
        return crictl('info').includes('"lastCNILoadStatus"');
      },
      30_000,
    );
    const containerdMs = Date.now() - t0;

    const pauseImage = ociImage(PAUSE_IMAGE, {
      layers: [{ files: { pause: readFileSync(pauseBinary()) }, modes: { pause: 0o755 } }],
      config: { Entrypoint: ['/pause'], User: '65535:65535' },
    });
    await pauseImage(ctr, d);

    // The kubelet's certificates, from the cluster's CA: a client one as system:node:<name>
    // (the Node authorizer's user) and its serving one.
    const pki = join(d, 'pki');
    const ca = { crt: join(cluster.dir, 'ca.crt'), key: join(cluster.dir, 'ca.key') };
    issueCert(ca, pki, 'kubelet-client', `/O=system:nodes/CN=system:node:${name}`);
    issueCert(ca, pki, 'kubelet-server', `/CN=${name}`, { serverAuth: `IP:127.0.0.1,DNS:${name},DNS:localhost` });
    writeFileSync(
      join(d, 'kubelet.kubeconfig'),
      kubeconfig(cluster.server, ca.crt, {
        name: 'node',
        crt: join(pki, 'kubelet-client.crt'),
        key: join(pki, 'kubelet-client.key'),
      }),
    );
    const [port, healthzPort] = await Promise.all([freePort(), freePort()]);
    writeFileSync(
      join(d, 'kubelet.yaml'),
      JSON.stringify(
        {
          apiVersion: 'kubelet.config.k8s.io/v1beta1',
          kind: 'KubeletConfiguration',
          // This machine has cgroup v1, which 1.37 refuses unless told.
          failCgroupV1: false,
          cgroupDriver: 'cgroupfs',
          cgroupRoot: `/${cgName}`,
          containerRuntimeEndpoint: `unix://${sock}`,
          address: '127.0.0.1',
          port,
          readOnlyPort: 0,
          healthzBindAddress: '127.0.0.1',
          healthzPort,
          tlsCertFile: join(pki, 'kubelet-server.crt'),
          tlsPrivateKeyFile: join(pki, 'kubelet-server.key'),
          // Without the cluster's podNetwork the API server calls with no client certificate (see
          // above): anonymous, on loopback. With it, as a kubeadm node: its certificate, and the
          // API server says who may do what.
          ...(podNetwork
            ? {
                authentication: {
                  anonymous: { enabled: false },
                  webhook: { enabled: true },
                  x509: { clientCAFile: ca.crt },
                },
                authorization: { mode: 'Webhook' },
                clusterDNS: [gateway],
                clusterDomain: 'cluster.local',
              }
            : {
                authentication: {
                  anonymous: { enabled: true },
                  webhook: { enabled: false },
                  x509: { clientCAFile: ca.crt },
                },
                authorization: { mode: 'AlwaysAllow' },
              }),
          failSwapOn: false,
          resolvConf: '/etc/resolv.conf',
          podLogsDir: join(d, 'pod-logs'),
          // No iptables chains of the kubelet's on this machine.
          makeIPTablesUtilChains: false,
          registerWithTaints:
            opts.taint === false ? [] : [{ key: REAL_NODE_LABEL, value: 'true', effect: 'NoSchedule' }],
          // A test machine's disk is what it is: no evictions, no image GC of the imported images.
          evictionHard: { 'memory.available': '100Mi', 'nodefs.available': '1%', 'imagefs.available': '1%' },
          imageGCHighThresholdPercent: 100,
          imageGCLowThresholdPercent: 99,
          serializeImagePulls: false,
          // Not the kubelet's choice to change the machine's kernel settings (see below).
          protectKernelDefaults: false,
        },
        null,
        2,
      ),
    );
    // The kubelet sets six kernel tunables to its liking as it starts (vm.overcommit_memory=1,
    // kernel.panic_on_oops=1, ...), for the whole machine. It runs in a mount namespace of its
    // own where those files read as it wants them, so it leaves the machine's alone; the node's
    // directory is a shared mount, so its volume mounts still reach the host's namespace.
    const tunables: Record<string, string> = {
      'vm/overcommit_memory': '1',
      'vm/panic_on_oom': '0',
      'kernel/panic': '10',
      'kernel/panic_on_oops': '1',
      'kernel/keys/root_maxkeys': '1000000',
      'kernel/keys/root_maxbytes': '25000000',
    };
    const binds: string[] = [];
    for (const [k, v] of Object.entries(tunables)) {
      const path = `/proc/sys/${k}`;
      if (!existsSync(path) || readFileSync(path, 'utf8').trim() === v) continue;
      const f = join(d, 'sysctl', k.replace(/\//g, '.'));
      writeFileSync(f, `${v}\n`);
      binds.push(`mount --bind ${f} ${path}`);
    }
    if (podNetwork) {
      // Cluster DNS on the pods' gateway (a host process; pods reach it as their next hop).
      writeFileSync(
        join(d, 'Corefile'),
        `.:53 {
  bind ${gateway}
  errors
  kubernetes cluster.local in-addr.arpa ip6.arpa {
    kubeconfig ${cluster.kubeconfig} asb
    pods insecure
    fallthrough in-addr.arpa ip6.arpa
  }
  forward . /etc/resolv.conf
  cache 30
}
`,
      );
      dnsProc = start('coredns', [join(BIN, 'coredns'), '-conf', join(d, 'Corefile')]);
      // Services: kube-proxy's nftables mode (its own tables, ip/ip6 kube-proxy); the machine's
      // conntrack settings left as they are; NodePorts only on the gateway.
      const [proxyHealthz, proxyMetrics] = await Promise.all([freePort(), freePort()]);
      proxyProc = start('kube-proxy', [
        join(BIN, 'kube-proxy'),
        '--kubeconfig',
        cluster.kubeconfig,
        '--proxy-mode',
        'nftables',
        '--hostname-override',
        name,
        '--cluster-cidr',
        podCIDR,
        '--detect-local-mode',
        'ClusterCIDR',
        '--nodeport-addresses',
        `${gateway}/32`,
        '--healthz-bind-address',
        `127.0.0.1:${proxyHealthz}`,
        '--metrics-bind-address',
        `127.0.0.1:${proxyMetrics}`,
        '--conntrack-max-per-core',
        '0',
        '--conntrack-tcp-timeout-established',
        '0',
        '--conntrack-tcp-timeout-close-wait',
        '0',
        '--v',
        '2',
      ]);
    }
    log(`real node ${name}: kubelet`);
    const kubelet = (kubeletProc = start('kubelet', [
      'unshare',
      '--mount',
      '--propagation',
      'unchanged',
      '/bin/sh',
      '-c',
      `${binds.map((b) => `${b} && `).join('')}exec "$@"`,
      'kubelet',
      join(BIN, 'kubelet'),
      '--config',
      join(d, 'kubelet.yaml'),
      '--kubeconfig',
      join(d, 'kubelet.kubeconfig'),
      '--root-dir',
      join(d, 'kubelet'),
      '--cert-dir',
      pki,
      '--hostname-override',
      name,
      '--node-labels',
      `${REAL_NODE_LABEL}=true`,
      '--v',
      '2',
    ]));
    const node = await waitFor(
      `the real node ${name} to be Ready`,
      () => {
        if (kubelet.exitCode !== null) throw new Error(`the kubelet exited (${kubelet.exitCode})`);
        const n = JSON.parse(cluster.kubectl('get', 'node', name, '-o', 'json')) as {
          spec: { podCIDR?: string };
          status: { conditions?: Array<{ type: string; status: string; message?: string }> };
        };
        const ready = n.status.conditions?.find((c) => c.type === 'Ready');
        if (ready?.status !== 'True') throw new Error(ready?.message ?? 'not Ready');
        return n;
      },
      120_000,
    );
    const readyMs = Date.now() - t0;
    // The range is the bridge's (no controller allocates ranges here); said on the Node for
    // whoever reads it (a NetworkPolicy implementation, a proxy).
    if (!node.spec.podCIDR)
      cluster.kubectl(
        'patch',
        'node',
        name,
        '--type',
        'merge',
        '-p',
        JSON.stringify({ spec: { podCIDR, podCIDRs: [podCIDR] } }),
      );
    log(`real node ${name} Ready in ${(readyMs / 1000).toFixed(1)} s (pods ${podCIDR} on ${bridge})`);
    return {
      name,
      dir: d,
      podCIDR,
      bridge,
      containerdSocket: sock,
      crictl,
      ctr,
      importImage: (ref, spec) => ociImage(ref, spec)(ctr, d),
      timings: { containerdMs, readyMs },
      stop,
    };
  } catch (err) {
    const tails = logTails(join(d, 'logs'), ['containerd', 'kubelet'], 15);
    await stop().catch((e: Error) => log(e.message));
    throw new Error(`${(err as Error).message}\n${tails}`, { cause: err });
  }
}

/** Builds `spec` as an OCI layout and imports it into the node's containerd as `ref`. */
function ociImage(ref: string, spec: ImageSpec) {
  return async (ctr: (...args: string[]) => string, dir: string) => {
    const at = ref.lastIndexOf(':');
    const layout = await ociLayout([spec], ref.slice(at + 1));
    const tar = join(dir, `image-${randomBytes(4).toString('hex')}.tar`);
    try {
      run('tar', ['-C', layout.dir, '-cf', tar, '.']);
      ctr('images', 'import', '--base-name', ref.slice(0, at), tar);
    } finally {
      layout.remove();
      rmSync(tar, { force: true });
    }
  };
}

/** Whether something accepts connections on the unix socket `path`. */
const serving = (path: string) =>
  new Promise<boolean>((resolve) => {
    const c = connect(path);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });

async function stopProcess(p: ChildProcess | undefined, graceMs: number): Promise<void> {
  if (!p || p.exitCode !== null || p.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    const t = setTimeout(() => {
      p.kill('SIGKILL');
    }, graceMs);
    p.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    p.kill('SIGTERM');
  });
}
