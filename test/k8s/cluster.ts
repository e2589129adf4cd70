// A real Kubernetes control plane on this machine, for the Kubernetes substrate's tests and
// benchmarks: etcd 3.6, kube-apiserver, kube-controller-manager (garbage collection, node
// lifecycle) and kube-scheduler v1.37.2, and KWOK simulating nodes and pods (Running and Ready
// without a kubelet). All built from the Go module proxy (tools/k8s/*: go.mod pins), cached in
// ~/.cache/asb-k8s/bin; certificates made with openssl; everything on loopback (but for
// `podNetwork`: an API server that a real node's pods reach, see startCluster).
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  rmSync,
  writeFileSync,
  readFileSync,
} from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import { waitFor as poll } from '../support/wait.ts';

const repo = new URL('../../', import.meta.url).pathname;
export const CACHE = process.env.ASB_K8S_CACHE ?? join(homedir(), '.cache', 'asb-k8s');
export const BIN = join(CACHE, 'bin');
export const VERSION = 'v1.37.2';

// `out` names a single package's binary when two pins build the same command; `tags` are build
// tags beside `tools`, `env` the build's environment beside this process's; `patches` are diffs
// (files in `dir`) laid over a module of the build (a vendored copy: the module cache is
// read-only, and `go build -overlay` refuses files beneath it).
const BUILDS: Array<{
  dir: string;
  bins: string[];
  pkgs: string[];
  ldflags?: string;
  out?: string;
  tags?: string[];
  env?: Record<string, string>;
  patches?: Array<{ module: string; file: string }>;
}> = [
  { dir: 'tools/k8s/etcd', bins: ['etcd'], pkgs: ['.'] },
  {
    dir: 'tools/k8s/kube',
    bins: ['kube-apiserver', 'kube-controller-manager', 'kube-scheduler'],
    pkgs: [
      'k8s.io/kubernetes/cmd/kube-apiserver',
      'k8s.io/kubernetes/cmd/kube-controller-manager',
      'k8s.io/kubernetes/cmd/kube-scheduler',
    ],
    // Clients parse the server's version: without these it would be v0.0.0-master.
    ldflags: `-s -w -X k8s.io/component-base/version.gitVersion=${VERSION} -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=37`,
  },
  { dir: 'tools/k8s/kwok', bins: ['kwok'], pkgs: ['sigs.k8s.io/kwok/cmd/kwok'], ldflags: '-s -w' },
  // Upstream's controller v0.5.6 (the side-by-side tests and bench:k8s).
  {
    dir: 'tools/k8s/upstream',
    bins: ['agent-sandbox-controller'],
    pkgs: ['sigs.k8s.io/agent-sandbox/cmd/agent-sandbox-controller'],
    ldflags: '-s -w',
  },
  // And v1.0.1 (the side-by-side run of upstream's v1.0.1 e2e suite).
  {
    dir: 'tools/k8s/upstream-v1',
    bins: ['agent-sandbox-controller-v1.0.1'],
    pkgs: ['sigs.k8s.io/agent-sandbox/cmd/agent-sandbox-controller'],
    ldflags: '-s -w',
    out: 'agent-sandbox-controller-v1.0.1',
  },
  // And its Go router (packages/k8s/test/router-upstream.test.ts compares ours with it).
  {
    dir: 'tools/k8s/upstream-v1',
    bins: ['sandbox-router-v1.0.1'],
    pkgs: ['sigs.k8s.io/agent-sandbox/sandbox-router/cmd'],
    ldflags: '-s -w',
    out: 'sandbox-router-v1.0.1',
  },
  // The real node (test/k8s/node.ts): the kubelet, from the API server's module.
  {
    dir: 'tools/k8s/kube',
    bins: ['kubelet'],
    pkgs: ['k8s.io/kubernetes/cmd/kubelet'],
    ldflags: `-s -w -X k8s.io/component-base/version.gitVersion=${VERSION} -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=37`,
  },
  // A real node's Services (kube-proxy, nftables mode) and cluster DNS (CoreDNS, a host process).
  {
    dir: 'tools/k8s/kube',
    bins: ['kube-proxy'],
    pkgs: ['k8s.io/kubernetes/cmd/kube-proxy'],
    ldflags: `-s -w -X k8s.io/component-base/version.gitVersion=${VERSION} -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=37`,
  },
  { dir: 'tools/k8s/coredns', bins: ['coredns'], pkgs: ['github.com/coredns/coredns'], ldflags: '-s -w' },
  // Its container runtime: containerd 2.4 (cgo only for btrfs, which the node does not use),
  // crictl (the harness stops a node's pods through CRI), and the CNI plugins. containerd
  // port-forwards to a gVisor pod at its address (upstream dials localhost in the pod's network
  // namespace, where gVisor's own network stack listens on nothing; containerd/containerd#6638).
  {
    dir: 'tools/k8s/node',
    bins: ['containerd', 'containerd-shim-runc-v2', 'ctr', 'crictl', 'bridge', 'host-local', 'loopback', 'portmap'],
    pkgs: [
      'github.com/containerd/containerd/v2/cmd/containerd',
      'github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2',
      'github.com/containerd/containerd/v2/cmd/ctr',
      'sigs.k8s.io/cri-tools/cmd/crictl',
      'github.com/containernetworking/plugins/plugins/main/bridge',
      'github.com/containernetworking/plugins/plugins/ipam/host-local',
      'github.com/containernetworking/plugins/plugins/main/loopback',
      'github.com/containernetworking/plugins/plugins/meta/portmap',
    ],
    ldflags:
      '-s -w -X github.com/containerd/containerd/v2/version.Version=v2.4.2 -X sigs.k8s.io/cri-tools/pkg/version.Version=v1.37.0',
    env: { CGO_ENABLED: '0' },
    patches: [{ module: 'github.com/containerd/containerd/v2', file: 'gvisor-port-forward.patch' }],
  },
  // runc v1.5 (what containerd 2.4 is tested with; Debian's is 1.1): cgo for its nsenter, and
  // libseccomp (Debian's libseccomp-dev) for pods that ask for a seccomp profile; without its
  // headers runc builds without seccomp, and such pods fail to start.
  {
    dir: 'tools/k8s/node',
    bins: ['runc'],
    pkgs: ['github.com/opencontainers/runc'],
    ldflags: '-s -w -X main.version=1.5.3',
    tags: existsSync('/usr/include/seccomp.h') ? ['seccomp'] : [],
    env: { CGO_ENABLED: '1' },
  },
  // gVisor's containerd shim, at gVisor's pin; static like runsc (scripts/build-runsc.sh). It
  // starts even where root may not lower an OOM score (no CAP_SYS_RESOURCE, as on this machine).
  {
    dir: 'tools/k8s/node/runsc-shim',
    bins: ['containerd-shim-runsc-v1'],
    pkgs: ['gvisor.dev/gvisor/shim'],
    ldflags: '-s -w',
    out: 'containerd-shim-runsc-v1',
    env: { CGO_ENABLED: '0' },
    patches: [{ module: 'gvisor.dev/gvisor', file: 'oom-score.patch' }],
  },
  // SIG Network's NetworkPolicy implementation for the real node (real-node-netpol.test.ts), a
  // host process; patched (see the patch's header): NFQUEUE through nf_tables' xtables compat
  // (this kernel has no nft queue), pods' traffic to the node itself, --kubeconfig.
  {
    dir: 'tools/k8s/netpol',
    bins: ['kube-network-policies'],
    pkgs: ['sigs.k8s.io/kube-network-policies/cmd'],
    ldflags: '-s -w',
    out: 'kube-network-policies',
    env: { CGO_ENABLED: '0' },
    patches: [{ module: 'sigs.k8s.io/kube-network-policies', file: 'kube-network-policies.patch' }],
  },
  // Traefik, a Gateway API implementation (gateway.test.ts: the router behind a real Gateway).
  {
    dir: 'tools/k8s/traefik',
    bins: ['traefik'],
    pkgs: ['github.com/traefik/traefik/v3/cmd/traefik'],
    ldflags: `-s -w -X github.com/traefik/traefik/v3/pkg/version.Version=${'v3.6.12'}`,
  },
];

export const UPSTREAM_VERSION = 'v0.5.6';

/** A Go module's source, downloaded through the Go module proxy (read-only, in the module cache). */
export function goModuleDir(module: string, version: string): string {
  const out = execFileSync('go', ['mod', 'download', '-json', `${module}@${version}`], {
    cwd: tmpdir(),
    encoding: 'utf8',
    env: { ...process.env, GOFLAGS: '-mod=mod' },
  });
  return (JSON.parse(out) as { Dir: string }).Dir;
}

/** Upstream's module source (its CRDs are under k8s/crds, its e2e suite under test/e2e). */
export const upstreamModuleDir = (version = UPSTREAM_VERSION) => goModuleDir('sigs.k8s.io/agent-sandbox', version);

/** The Gateway API's release whose standard CRDs the Gateway tests install (from the Go module proxy). */
export const GATEWAY_API_VERSION = 'v1.6.3';

/** The Gateway API's standard CRDs (config/crd/standard), downloaded through the Go module proxy. */
export const gatewayApiCrdDir = () =>
  join(goModuleDir('sigs.k8s.io/gateway-api', GATEWAY_API_VERSION), 'config/crd/standard');

/** Builds what is not cached yet (the API server takes ~3.5 min on 2 cores; the rest less). */
export function ensureBinaries(log: (m: string) => void = () => {}): void {
  mkdirSync(BIN, { recursive: true });
  for (const b of BUILDS) {
    // Build tags that depend on the machine (runc's seccomp: libseccomp's headers) are kept beside
    // the binaries: a runc cached before the headers were installed would be kept otherwise, and
    // every pod with a seccomp profile fails on it ("config provided but seccomp not supported").
    const tagsStamp = join(BIN, `.${b.bins[0]}.tags`);
    const tags = (b.tags ?? []).join(',');
    const stampOk = !b.tags || (existsSync(tagsStamp) && readFileSync(tagsStamp, 'utf8') === tags);
    if (stampOk && b.bins.every((n) => existsSync(join(BIN, n)))) continue;
    log(`building ${b.bins.join(', ')} from the Go module proxy (cached in ${BIN})`);
    const env = { ...process.env, GOFLAGS: '-mod=mod', ...b.env };
    let cwd = join(repo, b.dir);
    const work = b.patches ? mkdtempSync(join(tmpdir(), 'asb-k8s-build-')) : undefined;
    try {
      if (work) {
        for (const f of ['go.mod', 'go.sum', 'tools.go']) copyFileSync(join(cwd, f), join(work, f));
        execFileSync('go', ['mod', 'vendor'], { cwd: work, stdio: ['ignore', 'inherit', 'inherit'], env });
        for (const p of b.patches!)
          execFileSync('git', ['apply', '-p1', join(cwd, p.file)], {
            cwd: join(work, 'vendor', p.module),
            stdio: ['ignore', 'inherit', 'inherit'],
          });
        cwd = work;
        env.GOFLAGS = '-mod=vendor';
      }
      execFileSync(
        'go',
        [
          'build',
          '-tags',
          ['tools', ...(b.tags ?? [])].join(','),
          ...(b.ldflags ? ['-ldflags', b.ldflags] : []),
          '-o',
          b.out ? join(BIN, b.out) : BIN + '/',
          ...b.pkgs,
        ],
        { cwd, stdio: ['ignore', 'inherit', 'inherit'], env },
      );
      if (b.tags) writeFileSync(tagsStamp, tags);
    } finally {
      if (work) rmSync(work, { recursive: true, force: true });
    }
  }
}

export async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: 'ignore' });
}

/** CA, API server serving certificate, service-account keys, and an admin client certificate;
 *  with `podNetwork`, the serving certificate also names the addresses pods reach it at, and the
 *  API server gets a client certificate for kubelets. */
function makeCerts(dir: string, podNetwork?: { address: string }): void {
  openssl(
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      'ca.key',
      '-out',
      'ca.crt',
      '-days',
      '30',
      '-subj',
      '/CN=asb-test-ca',
    ],
    dir,
  );
  const serverNames = podNetwork
    ? `,IP:${podNetwork.address},IP:${KUBERNETES_SERVICE_IP},DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc.cluster.local`
    : '';
  const ca = { crt: join(dir, 'ca.crt'), key: join(dir, 'ca.key') };
  issueCert(ca, dir, 'server', '/CN=kube-apiserver', {
    serverAuth: `IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc${serverNames}`,
  });
  issueCert(ca, dir, 'admin', '/O=system:masters/CN=admin');
  if (podNetwork) issueCert(ca, dir, 'kubelet-client', '/O=system:masters/CN=kube-apiserver-kubelet-client');
  openssl(['genrsa', '-out', 'sa.key', '2048'], dir);
  openssl(['rsa', '-in', 'sa.key', '-pubout', '-out', 'sa.pub'], dir);
}

/**
 * `<outDir>/<name>.key` and `.crt`: a P-256 key and a 30-day certificate for `subj`, signed by
 * `ca`; a client certificate, or a serving one for the subjectAltName `serverAuth` gives.
 */
export function issueCert(
  ca: { crt: string; key: string },
  outDir: string,
  name: string,
  subj: string,
  opts: { serverAuth?: string } = {},
): void {
  const ext = opts.serverAuth
    ? `subjectAltName=${opts.serverAuth}\nextendedKeyUsage=serverAuth\n`
    : 'extendedKeyUsage=clientAuth\n';
  writeFileSync(join(outDir, `${name}.ext`), ext);
  const key = ['-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`];
  openssl(['req', '-newkey', 'ec', ...key, '-out', `${name}.csr`, '-subj', subj], outDir);
  openssl(
    [
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      ca.crt,
      '-CAkey',
      ca.key,
      '-CAcreateserial',
      '-CAserial',
      join(outDir, 'ca.srl'),
      '-out',
      `${name}.crt`,
      '-days',
      '30',
      '-extfile',
      `${name}.ext`,
    ],
    outDir,
  );
}

/** The `kubernetes` Service's ClusterIP (the first of --service-cluster-ip-range). */
export const KUBERNETES_SERVICE_IP = '10.96.0.1';

/** This machine's address on its default route (what a pod reaches through its node's gateway). */
function hostAddress(): string {
  const route = execFileSync('ip', ['-4', 'route', 'get', '1.1.1.1'], { encoding: 'utf8' });
  const m = / src (\d+\.\d+\.\d+\.\d+)/.exec(route);
  if (!m) throw new Error(`no source address in: ${route}`);
  return m[1]!;
}

/** The last `lines` lines of each `<name>.log` in `logDir`, for an error that says why. */
export function logTails(logDir: string, names: string[], lines: number): string {
  return names
    .map((n) => {
      try {
        return `--- ${n}\n${readFileSync(join(logDir, `${n}.log`), 'utf8')
          .split('\n')
          .slice(-lines)
          .join('\n')}`;
      } catch {
        return '';
      }
    })
    .join('\n');
}

/** A kubeconfig for `server` (trusting `caFile`) as the user of a client certificate. */
export function kubeconfig(server: string, caFile: string, user: { name: string; crt: string; key: string }): string {
  const b64 = (f: string) => readFileSync(f).toString('base64');
  return `apiVersion: v1
kind: Config
clusters: [{ name: asb, cluster: { server: "${server}", certificate-authority-data: ${b64(caFile)} } }]
users: [{ name: ${user.name}, user: { client-certificate-data: ${b64(user.crt)}, client-key-data: ${b64(user.key)} } }]
contexts: [{ name: asb, context: { cluster: asb, user: ${user.name} } }]
current-context: asb
`;
}

export interface Cluster {
  dir: string;
  kubeconfig: string;
  server: string;
  /** With startCluster's `podNetwork`: the API server's address for pods (its `kubernetes`
   *  Service's endpoint), and its client certificate for kubelets (ca.crt signs both). */
  podNetwork?: { address: string; port: number };
  kubectl(...args: string[]): string;
  stop(): Promise<void>;
}

/** Polls `fn` every 200 ms (most polls here run kubectl, a process each) until it returns something
 *  truthy (a throw counts as "not yet"). */
export const waitFor = <T>(
  what: string,
  fn: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 60_000,
) => poll(what, fn, timeoutMs, 200);

/**
 * A pod whose port-forwards (`kubectl port-forward`, through the API server to its node's
 * kubelet) reach `target` on this machine: KWOK's kubelet server tunnels them (its PortForward
 * rules), since KWOK's pods run nothing themselves.
 */
export interface PodPortForward {
  namespace: string;
  pod: string;
  target: { host: string; port: number };
}

/**
 * Starts the control plane in a fresh directory; resolves when a KWOK node is Ready. With
 * `portForwards`, KWOK serves its nodes' kubelet API on loopback (the nodes' address) so that the
 * API server can reach it for port-forwards, and tunnels those of the listed pods.
 */
export async function startCluster(
  opts: {
    nodes?: number;
    log?: (m: string) => void;
    portForwards?: PodPortForward[];
    /** KWOK Stage documents (YAML or JSON). Pod stages given here replace KWOK's default ones. */
    kwokStages?: string[];
    /**
     * For real nodes' pods (node.ts): the API server listens on every address and advertises
     * this machine's own (a pod reaches it through its node's gateway), the `kubernetes` Service
     * gets that endpoint (the lease reconciler), its certificate names the Service's IP, and it
     * calls kubelets with a client certificate (so that they authenticate it, not anonymous).
     */
    podNetwork?: boolean;
  } = {},
): Promise<Cluster> {
  ensureBinaries(opts.log);
  const dir = mkdtempSync(join(tmpdir(), 'asb-k8s-'));
  mkdirSync(join(dir, 'logs'));
  const podNetwork = opts.podNetwork ? { address: hostAddress() } : undefined;
  makeCerts(dir, podNetwork);
  const procs: ChildProcess[] = [];
  const run = (name: string, args: string[]) => {
    const out = openSync(join(dir, 'logs', `${name}.log`), 'a');
    const p = spawn(join(BIN, name), args, { stdio: ['ignore', out, out] });
    procs.push(p);
    return p;
  };
  const [etcdClient, etcdPeer, apiPort, kubeletPort] = await Promise.all([
    freePort(),
    freePort(),
    freePort(),
    freePort(),
  ]);
  const kubelet = opts.portForwards !== undefined;
  run('etcd', [
    '--data-dir',
    join(dir, 'etcd'),
    '--listen-client-urls',
    `http://127.0.0.1:${etcdClient}`,
    '--advertise-client-urls',
    `http://127.0.0.1:${etcdClient}`,
    '--listen-peer-urls',
    `http://127.0.0.1:${etcdPeer}`,
    '--initial-advertise-peer-urls',
    `http://127.0.0.1:${etcdPeer}`,
    '--initial-cluster',
    `default=http://127.0.0.1:${etcdPeer}`,
    '--unsafe-no-fsync',
    '--log-level',
    'warn',
  ]);
  const server = `https://127.0.0.1:${apiPort}`;
  run('kube-apiserver', [
    '--etcd-servers',
    `http://127.0.0.1:${etcdClient}`,
    '--bind-address',
    podNetwork ? '0.0.0.0' : '127.0.0.1',
    '--secure-port',
    String(apiPort),
    '--advertise-address',
    podNetwork?.address ?? '127.0.0.1',
    '--tls-cert-file',
    join(dir, 'server.crt'),
    '--tls-private-key-file',
    join(dir, 'server.key'),
    '--client-ca-file',
    join(dir, 'ca.crt'),
    '--service-account-issuer',
    'https://kubernetes.default.svc',
    '--service-account-key-file',
    join(dir, 'sa.pub'),
    '--service-account-signing-key-file',
    join(dir, 'sa.key'),
    '--authorization-mode',
    'Node,RBAC',
    '--service-cluster-ip-range',
    '10.96.0.0/16',
    '--allow-privileged',
    '--enable-priority-and-fairness=false',
    // The kubernetes Service's endpoint would be the advertise address, which may not be loopback.
    '--endpoint-reconciler-type',
    podNetwork ? 'lease' : 'none',
    ...(podNetwork
      ? [
          '--kubelet-client-certificate',
          join(dir, 'kubelet-client.crt'),
          '--kubelet-client-key',
          join(dir, 'kubelet-client.key'),
        ]
      : []),
    // KWOK's nodes name themselves by a host name nothing resolves: reach kubelets by address.
    ...(kubelet ? ['--kubelet-preferred-address-types', 'InternalIP'] : []),
  ]);
  const kc = join(dir, 'kubeconfig');
  writeFileSync(
    kc,
    kubeconfig(server, join(dir, 'ca.crt'), {
      name: 'admin',
      crt: join(dir, 'admin.crt'),
      key: join(dir, 'admin.key'),
    }),
  );
  const kubectl = (...args: string[]) =>
    execFileSync('kubectl', ['--kubeconfig', kc, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const cluster: Cluster = {
    dir,
    kubeconfig: kc,
    server,
    ...(podNetwork ? { podNetwork: { ...podNetwork, port: apiPort } } : {}),
    kubectl,
    async stop() {
      for (const p of procs.reverse()) p.kill('SIGTERM');
      await Promise.all(
        procs
          .filter((p) => p.exitCode === null)
          .map(
            (p) =>
              new Promise((r) => {
                const t = setTimeout(() => {
                  p.kill('SIGKILL');
                  r(null);
                }, 5000);
                p.once('exit', () => {
                  clearTimeout(t);
                  r(null);
                });
              }),
          ),
      );
      // ASB_K8S_KEEP=1 keeps the directory (logs, kubeconfig) for a look after a failure.
      if (process.env.ASB_K8S_KEEP !== '1') rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await waitFor('the API server', () => kubectl('get', '--raw', '/readyz') === 'ok', 60_000);
    run('kube-controller-manager', [
      '--kubeconfig',
      kc,
      '--authentication-kubeconfig',
      kc,
      '--authorization-kubeconfig',
      kc,
      '--leader-elect=false',
      '--bind-address',
      '127.0.0.1',
      '--secure-port',
      '0',
      '--service-account-private-key-file',
      join(dir, 'sa.key'),
      '--root-ca-file',
      join(dir, 'ca.crt'),
      '--use-service-account-credentials=false',
      '--controllers',
      '*',
      // KWOK renews its nodes' heartbeats late when the machine is busy (a 1,000-claim bench on 2
      // cores): without slack the node lifecycle controller would mark every pod NotReady.
      '--node-monitor-grace-period',
      '10m',
    ]);
    run('kube-scheduler', [
      '--kubeconfig',
      kc,
      '--authentication-kubeconfig',
      kc,
      '--authorization-kubeconfig',
      kc,
      '--leader-elect=false',
      '--bind-address',
      '127.0.0.1',
      '--secure-port',
      '0',
    ]);
    const kwokArgs = [
      '--kubeconfig',
      kc,
      '--manage-all-nodes=false',
      '--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake',
      '--cidr',
      '10.244.0.0/16',
    ];
    // (A node's kubelet endpoint is its address and port: KWOK's server, here, for every node.)
    const rules = (opts.portForwards ?? []).map((f) =>
      JSON.stringify({
        apiVersion: 'kwok.x-k8s.io/v1alpha1',
        kind: 'PortForward',
        metadata: { name: f.pod, namespace: f.namespace },
        spec: { forwards: [{ target: { address: f.target.host, port: f.target.port } }] },
      }),
    );
    const config = [...rules, ...(opts.kwokStages ?? [])];
    if (config.length) {
      writeFileSync(join(dir, 'kwok.yaml'), config.join('\n---\n'));
      kwokArgs.push('--config', join(dir, 'kwok.yaml'));
    }
    if (kubelet) {
      kwokArgs.push(
        '--node-ip',
        '127.0.0.1',
        '--node-port',
        String(kubeletPort),
        '--server-address',
        `127.0.0.1:${kubeletPort}`,
        '--tls-cert-file',
        join(dir, 'server.crt'),
        '--tls-private-key-file',
        join(dir, 'server.key'),
      );
    } else kwokArgs.push('--node-ip', '10.0.0.1', '--server-address', '127.0.0.1:0');
    run('kwok', kwokArgs);
    // The seeds' templates ask for runtimeClassName: gvisor; KWOK runs any class.
    writeFileSync(
      join(dir, 'runtimeclass.yaml'),
      'apiVersion: node.k8s.io/v1\nkind: RuntimeClass\nmetadata: { name: gvisor }\nhandler: runsc\n',
    );
    kubectl('apply', '-f', join(dir, 'runtimeclass.yaml'));
    for (let i = 0; i < (opts.nodes ?? 1); i++) {
      const node = {
        apiVersion: 'v1',
        kind: 'Node',
        metadata: {
          name: `kwok-node-${i}`,
          annotations: { 'kwok.x-k8s.io/node': 'fake', 'node.alpha.kubernetes.io/ttl': '0' },
          labels: {
            type: 'kwok',
            'kubernetes.io/os': 'linux',
            'kubernetes.io/arch': 'amd64',
            'kubernetes.io/hostname': `kwok-node-${i}`,
          },
        },
        status: {
          allocatable: { cpu: '1000', memory: '4Ti', pods: '10000', 'ephemeral-storage': '100Ti' },
          capacity: { cpu: '1000', memory: '4Ti', pods: '10000', 'ephemeral-storage': '100Ti' },
        },
      };
      const f = join(dir, `node-${i}.json`);
      writeFileSync(f, JSON.stringify(node));
      kubectl('apply', '-f', f);
    }
    await waitFor(
      'the KWOK nodes to be Ready',
      () => {
        const nodes = JSON.parse(kubectl('get', 'nodes', '-o', 'json')) as {
          items: Array<{
            status: { conditions?: Array<{ type: string; status: string }> };
            spec: { taints?: unknown[] };
          }>;
        };
        return (
          nodes.items.length === (opts.nodes ?? 1) &&
          nodes.items.every(
            (n) =>
              n.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') && !n.spec.taints?.length,
          )
        );
      },
      60_000,
    );
    return cluster;
  } catch (err) {
    const logs = logTails(join(dir, 'logs'), ['kube-apiserver', 'kube-controller-manager', 'kwok'], 8);
    await cluster.stop();
    throw new Error(`${(err as Error).message}\n${logs}`, { cause: err });
  }
}
