// bench:k8s's `real-node` scenario (BENCH_K8S_SCENARIOS=real-node): sandboxes that really run,
// on one cluster with a pod network and a real node (test/k8s/node.ts: kubelet, containerd,
// gVisor), the runtime images built here and pulled through the loopback mirror
// (scripts/runtime-images.ts). Measured, in one run on this machine:
// - the pull of each runtime image (python, go) from the loopback registry, by `crictl pull` on
//   the node, each after the image was removed (and its content with it);
// - cold claims (a warm pool of 0: v1beta1 claims always name a pool), one at a time: from the
//   start of the create call to the watch event that shows the claim Ready, and to the result of
//   the first command, POST /execute at the pod's IP (the runtime API, 8888) from this host;
// - warm claims the same way, each from a full warm pool; for both, when the controller made the
//   claim's pod (cold) or the pool's replacement (warm), and when a cold claim's pod was Ready,
//   from a pod watch;
// - the idle memory of one sandbox pod (each idle member of the warm pool): the PSS of every
//   process the pod costs the host (its cgroup's: gVisor's sentry, gofers and the runtime's
//   processes; and gVisor's containerd shims, one per container, with their `runsc wait`).
// Both controllers run as host processes, one after the other on the same cluster and node: the
// same node, its image store and page cache are what both are measured on (a second node would
// pull and cache anew). Between them everything of the first goes: its objects (deleted while it
// runs, so that its finalizers are honoured), its pods, then its CRDs, replaced by the other's.
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { loadKubeConfig } from '@asb/kube';
import { type Cluster } from '../test/k8s/cluster.ts';
import { startHarness, waitFor } from '../test/k8s/harness.ts';
import { realNodeSkip, startRealNode, type RealNode } from '../test/k8s/node.ts';
import { installUpstreamCrds, startUpstreamController } from '../test/k8s/upstream.ts';
import { RUNTIME_IMAGES, serveRuntimeImages } from '../scripts/runtime-images.ts';
import { childrenOf, pssBytes, treeOf } from './procmem.ts';
import { percentile, table } from './stats.ts';
import { watchBenchClaims } from './claim-watch.ts';

/** Claims measured per series (cold, warm), one at a time. */
const N = Number(process.env.BENCH_K8S_REAL_N ?? 20);
/** The warm pool's size in the warm series. */
const POOL = Number(process.env.BENCH_K8S_REAL_POOL ?? 2);
/** Pulls of each runtime image. */
const PULL_N = Number(process.env.BENCH_K8S_REAL_PULL_N ?? 3);
/** How long a pod stays Ready and idle before its memory is read. */
const IDLE_S = Number(process.env.BENCH_K8S_REAL_IDLE_S ?? 5);
/** The first command, as the runtime API takes it (shlex-split, no shell). */
const COMMAND = process.env.BENCH_K8S_REAL_COMMAND ?? 'python3 -c "print(2 + 2)"';

const GROUP = 'extensions.agents.x-k8s.io';
const NS = 'default';
const POD_LABEL = 'bench-real-node';
const RUNTIME = 'registry.k8s.io/agent-sandbox/python-runtime-sandbox:v0.1.0';
const OUR_CRDS = [
  'sandboxes.agents.x-k8s.io',
  'sandboxclaims.extensions.agents.x-k8s.io',
  'sandboxtemplates.extensions.agents.x-k8s.io',
  'sandboxwarmpools.extensions.agents.x-k8s.io',
];

/** Seed 001's template (v1beta1), its pods labelled for the benchmark. */
const TEMPLATE = {
  apiVersion: `${GROUP}/v1beta1`,
  kind: 'SandboxTemplate',
  metadata: { name: 'python-runtime-template', namespace: NS },
  spec: {
    podTemplate: {
      metadata: { labels: { sandbox: POD_LABEL } },
      spec: {
        runtimeClassName: 'gvisor',
        // (Not seed 001's: a deleted claim's pod goes in a second, before the next claim starts.
        // Deletion is not measured.)
        terminationGracePeriodSeconds: 1,
        containers: [
          {
            name: 'python-runtime',
            image: RUNTIME,
            ports: [{ containerPort: 8888 }],
            readinessProbe: { httpGet: { path: '/', port: 8888 }, initialDelaySeconds: 0, periodSeconds: 1 },
            resources: { requests: { cpu: '250m', memory: '512Mi', 'ephemeral-storage': '512Mi' } },
          },
        ],
        restartPolicy: 'OnFailure',
      },
    },
  },
};
const pool = (name: string, replicas: number) => ({
  apiVersion: `${GROUP}/v1beta1`,
  kind: 'SandboxWarmPool',
  metadata: { name, namespace: NS },
  spec: { replicas, sandboxTemplateRef: { name: 'python-runtime-template' } },
});

interface ClaimTimes {
  /** Create call start → the watch event that shows the claim Ready. */
  readyMs: number;
  /** Create call start → the first command's result. */
  firstResultMs: number;
  /** Create call start → the first pod the controller made after it (seen by a pod watch): a cold
   *  claim's own pod, or the warm pool's replacement for the pod the claim took. */
  podCreatedMs?: number;
  /** Create call start → a pod watch event that shows the claim's pod Ready (cold claims): what
   *  the kubelet and gVisor took; the rest of claim → Ready is the controller's. */
  podReadyMs?: number;
}
interface Memory {
  pssBytes: number;
  /** PSS by part (shim, sentry, gofer, the rest: the runtime's processes). */
  parts: Record<string, number>;
  /** PSS by kind of page (smaps_rollup's Pss_Anon, Pss_File, Pss_Shmem). */
  kinds: Record<string, number>;
  /** The pod cgroup's own charge (page cache included), for comparison. */
  cgroupBytes: number;
}
interface ControllerResult {
  cold: ClaimTimes[];
  warm: ClaimTimes[];
  memory: Memory[];
}

const log = (m: string) => process.stderr.write(`${m}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const isReady = (o: any) =>
  (o?.status?.conditions ?? []).some((c: any) => c.type === 'Ready' && c.status === 'True') as boolean;

/**
 * One watch on the claims labelled `bench=<label>`: resolves each claim's wait at the event
 * that shows it Ready (timed there). If the server ends the watch, a list catches up and a new
 * watch goes on from it.
 */
async function watchClaims(kc: k8s.KubeConfig, label: string) {
  const waiting = new Map<string, (r: { at: number; obj: any }) => void>();
  const watcher = await watchBenchClaims(kc, NS, label, (obj, at) => {
    if (isReady(obj)) waiting.get(obj.metadata.name)?.({ at, obj });
  });
  return {
    /** Set up before the create call: the Ready event may come before its answer. */
    ready(name: string): Promise<{ at: number; obj: any }> {
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`claim ${name} not Ready in 300 s`)), 300_000);
        waiting.set(name, (r) => {
          clearTimeout(t);
          waiting.delete(name);
          resolve(r);
        });
      });
    },
    stop: () => watcher.stop(),
  };
}

/** What a claimed sandbox is reached at: the claim's podIPs, else its Sandbox's, else its pod's. */
async function podIP(kc: k8s.KubeConfig, claim: any): Promise<string> {
  const fromClaim = claim.status?.sandbox?.podIPs?.[0];
  if (fromClaim) return fromClaim;
  const api = kc.makeApiClient(k8s.CustomObjectsApi);
  const sb: any = await api.getNamespacedCustomObject({
    group: 'agents.x-k8s.io',
    version: 'v1beta1',
    plural: 'sandboxes',
    namespace: NS,
    name: claim.status.sandbox.name,
  });
  if (sb.status?.podIPs?.[0]) return sb.status.podIPs[0];
  const pod = await kc.makeApiClient(k8s.CoreV1Api).readNamespacedPod({
    namespace: NS,
    name: sb.metadata.annotations?.['agents.x-k8s.io/pod-name'] ?? sb.metadata.name,
  });
  if (!pod.status?.podIP) throw new Error(`no pod IP for claim ${claim.metadata.name}`);
  return pod.status.podIP;
}

/** POST /execute on the runtime API at the pod's IP; throws unless the command succeeded. */
async function firstCommand(ip: string): Promise<void> {
  const res = await fetch(`http://${ip}:8888/execute`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ command: COMMAND }),
    signal: AbortSignal.timeout(60_000),
  });
  const body = (await res.json()) as { stdout?: string; stderr?: string; exit_code?: number };
  if (!res.ok || body.exit_code !== 0) throw new Error(`${COMMAND} at ${ip}: ${res.status} ${JSON.stringify(body)}`);
}

/** The benchmark's pods (any state), and whether each is Ready and not going. */
async function benchPods(core: k8s.CoreV1Api): Promise<k8s.V1Pod[]> {
  return (await core.listNamespacedPod({ namespace: NS, labelSelector: `sandbox=${POD_LABEL}` })).items;
}
const podServing = (p: k8s.V1Pod) =>
  !p.metadata?.deletionTimestamp && (p.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');

/**
 * `n` claims on `poolName`, one at a time: each is created once the one before has answered its
 * command, been deleted and its pod is gone, and (for a warm pool) the pool is full again, so
 * that each claim is measured alone.
 */
async function claimSeries(
  kc: k8s.KubeConfig,
  label: string,
  poolName: string,
  n: number,
  before: () => Promise<void>,
): Promise<ClaimTimes[]> {
  const api = kc.makeApiClient(k8s.CustomObjectsApi);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const watch = await watchClaims(kc, label);
  // When the controller makes each pod (a diagnostic: a lost watch only loses these times).
  const podsAdded: number[] = [];
  const podsReady = new Map<string, number>();
  const podWatch = await new k8s.Watch(kc).watch(
    `/api/v1/namespaces/${NS}/pods`,
    { labelSelector: `sandbox=${POD_LABEL}` },
    (type: string, pod: k8s.V1Pod) => {
      const at = performance.now();
      if (type === 'ADDED') podsAdded.push(at);
      if (podServing(pod) && !podsReady.has(pod.metadata!.name!)) podsReady.set(pod.metadata!.name!, at);
    },
    () => {},
  );
  const claimPods: Array<string | undefined> = [];
  const out: ClaimTimes[] = [];
  const starts: number[] = [];
  try {
    for (let i = 0; i < n; i++) {
      await before();
      const name = `${label}-${i}`;
      const ready = watch.ready(name);
      const t0 = performance.now();
      starts.push(t0);
      await api.createNamespacedCustomObject({
        group: GROUP,
        version: 'v1beta1',
        plural: 'sandboxclaims',
        namespace: NS,
        body: {
          apiVersion: `${GROUP}/v1beta1`,
          kind: 'SandboxClaim',
          metadata: { name, labels: { bench: label } },
          spec: { warmPoolRef: { name: poolName } },
        },
      });
      const { at, obj } = await ready;
      await firstCommand(await podIP(kc, obj));
      out.push({ readyMs: at - t0, firstResultMs: performance.now() - t0 });
      const podName = (await podOfClaim(kc, obj))?.metadata?.name;
      claimPods.push(podName);
      await api.deleteNamespacedCustomObject({
        group: GROUP,
        version: 'v1beta1',
        plural: 'sandboxclaims',
        namespace: NS,
        name,
      });
      await waitFor(
        `the pod of claim ${name} to go`,
        async () => !(await benchPods(core)).some((p) => p.metadata?.name === podName),
        120_000,
      );
    }
  } finally {
    watch.stop();
    podWatch.abort();
  }
  for (const [i, t0] of starts.entries()) {
    const added = podsAdded.find((t) => t >= t0 && t < (starts[i + 1] ?? Infinity));
    if (added !== undefined && out[i]) out[i].podCreatedMs = added - t0;
    const ready = podsReady.get(claimPods[i] ?? '');
    // (A warm claim's pod was Ready before the claim: only pods Ready after it count.)
    if (ready !== undefined && ready >= t0 && out[i]) out[i].podReadyMs = ready - t0;
  }
  return out;
}

async function podOfClaim(kc: k8s.KubeConfig, claim: any): Promise<k8s.V1Pod | undefined> {
  const ip = await podIP(kc, claim);
  return (await benchPods(kc.makeApiClient(k8s.CoreV1Api))).find((p) => p.status?.podIP === ip);
}

/** The cgroup hierarchies mounted here (v1 controllers, v2's unified one). */
const cgroupMounts = () =>
  readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((l) => / - cgroup2? /.test(l))
    .map((l) => l.split(' ')[4]!);

function cgroupDirs(root: string): string[] {
  if (!existsSync(root)) return [];
  const out = [root];
  for (const e of readdirSync(root, { withFileTypes: true }))
    if (e.isDirectory()) out.push(...cgroupDirs(join(root, e.name)));
  return out;
}

const cmdline = (pid: number) => {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  } catch {
    return [];
  }
};

/**
 * What one sandbox pod costs the host: the processes of its cgroup (kubelet's `pod<uid>`, in the
 * node's subtree of every hierarchy: gVisor's sentry and gofers), those that name its pod sandbox
 * or one of its containers (gVisor's containerd shims and their `runsc wait`, which stay in
 * containerd's cgroup), and all their descendants (systrap's stubs, where the runtime's
 * processes run); each one's PSS, summed.
 */
function podMemory(node: RealNode, pod: k8s.V1Pod): Memory {
  const uid = pod.metadata!.uid!;
  const cgName = `asbk8s-${node.bridge.slice('asbk8s'.length)}`;
  const podCgroups = cgroupMounts()
    .flatMap((m) => cgroupDirs(join(m, cgName)))
    .filter((d) => d.split('/').includes(`pod${uid}`));
  if (!podCgroups.length) throw new Error(`no cgroup pod${uid} under /${cgName}`);
  const pids = new Set<number>();
  for (const cg of podCgroups)
    for (const p of readFileSync(join(cg, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)) pids.add(Number(p));
  // The pod sandbox's id and its containers': gVisor's shim (one per container here) and the
  // `runsc wait` it starts name them, and stay in containerd's cgroup.
  const sandboxId = node.crictl('pods', '--label', `io.kubernetes.pod.uid=${uid}`, '-q', '--no-trunc').trim();
  if (!sandboxId || sandboxId.includes('\n')) throw new Error(`not one pod sandbox for ${pod.metadata!.name}`);
  const ids = [sandboxId, ...node.crictl('ps', '-a', '--pod', sandboxId, '-q', '--no-trunc').split('\n')]
    .map((x) => x.trim())
    .filter(Boolean);
  for (const d of readdirSync('/proc'))
    if (/^\d+$/.test(d) && cmdline(Number(d)).some((a) => ids.some((id) => a.includes(id)))) pids.add(Number(d));
  const kids = childrenOf();
  const all = new Set([...pids].flatMap((p) => treeOf(p, kids)));
  const parts: Record<string, number> = {};
  const kinds: Record<string, number> = { anon: 0, file: 0, shmem: 0 };
  let total = 0;
  for (const pid of all) {
    const args = cmdline(pid);
    const part = args[0]?.includes('containerd-shim')
      ? 'shims'
      : args[0] === 'runsc-sandbox' || args.includes('boot')
        ? 'sentry'
        : args[0] === 'runsc-gofer' || args.includes('gofer')
          ? 'gofers'
          : args[0]?.endsWith('/runsc')
            ? `runsc ${args.find((a) => !a.startsWith('-') && a !== args[0]) ?? ''}`.trim()
            : 'stubs (the runtime)';
    const pss = pssBytes(pid);
    parts[part] = (parts[part] ?? 0) + pss;
    total += pss;
    for (const [kind, bytes] of Object.entries(pssKinds(pid))) kinds[kind] = (kinds[kind] ?? 0) + bytes;
  }
  // (v1: memory.usage_in_bytes; v2: memory.current.) The pod's own cgroup, not its children's sum.
  const memCg = podCgroups
    .filter((d) => d.endsWith(`pod${uid}`))
    .find((d) => existsSync(join(d, 'memory.usage_in_bytes')) || existsSync(join(d, 'memory.current')));
  const cgroupBytes = memCg
    ? Number(
        readFileSync(
          join(memCg, existsSync(join(memCg, 'memory.usage_in_bytes')) ? 'memory.usage_in_bytes' : 'memory.current'),
          'utf8',
        ),
      )
    : NaN;
  return { pssBytes: total, parts, kinds, cgroupBytes };
}

function pssKinds(pid: number): Record<string, number> {
  try {
    const text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    const kb = (k: string) => Number(new RegExp(`^Pss_${k}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0) * 1024;
    return { anon: kb('Anon'), file: kb('File'), shmem: kb('Shmem') };
  } catch {
    return {};
  }
}

/** The series on one controller (running): cold claims, then a warm pool, its idle members'
 *  memory, and warm claims; then everything of it is deleted while the controller still runs. */
async function onController(cluster: Cluster, node: RealNode, who: string): Promise<ControllerResult> {
  const kc = loadKubeConfig({ kubeconfig: cluster.kubeconfig });
  const api = kc.makeApiClient(k8s.CustomObjectsApi);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const create = (plural: string, body: object) =>
    api.createNamespacedCustomObject({ group: GROUP, version: 'v1beta1', plural, namespace: NS, body });
  await create('sandboxtemplates', TEMPLATE);
  await create('sandboxwarmpools', pool('cold', 0));
  const noPods = async () =>
    waitFor('no benchmark pods', async () => (await benchPods(core)).length === 0, 120_000).then(() => {});
  // One claim, not measured: the controller has started and synced, and the node has run the
  // image once (its files in the page cache), for whichever controller goes first.
  const t = performance.now();
  await claimSeries(kc, `${who}-warmup`, 'cold', 1, noPods);
  log(`  ${who}: warm-up claim done in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  const cold = await claimSeries(kc, `${who}-cold`, 'cold', N, noPods);
  log(`  ${who}: ${cold.length} cold claims`);

  await create('sandboxwarmpools', pool('warm', POOL));
  const poolFull = async () => {
    await waitFor(
      `the warm pool to be full (${POOL} Ready pods, none going)`,
      async () => {
        const pods = await benchPods(core);
        if (pods.length !== POOL || !pods.every(podServing)) return false;
        const p: any = await api.getNamespacedCustomObject({
          group: GROUP,
          version: 'v1beta1',
          plural: 'sandboxwarmpools',
          namespace: NS,
          name: 'warm',
        });
        return p.status?.readyReplicas === POOL;
      },
      300_000,
    );
  };
  await poolFull();
  await sleep(IDLE_S * 1000);
  const memory = (await benchPods(core)).map((p) => podMemory(node, p));
  const warm = await claimSeries(kc, `${who}-warm`, 'warm', N, poolFull);
  log(`  ${who}: ${warm.length} warm claims`);

  // Everything of this controller goes while it runs (its finalizers, if any, honoured).
  for (const plural of ['sandboxclaims', 'sandboxwarmpools', 'sandboxtemplates'])
    cluster.kubectl('delete', `${plural}.${GROUP}`, '--all', '-n', NS, '--wait=true', '--timeout=120s');
  cluster.kubectl('delete', 'sandboxes.agents.x-k8s.io', '--all', '-n', NS, '--wait=true', '--timeout=120s');
  await noPods();
  return { cold, warm, memory };
}

/** Pulls each runtime image PULL_N times, each after removing it (and waiting until its content
 *  is gone from the store, so that every pull fetches every layer). */
async function imagePulls(node: RealNode): Promise<Array<{ name: string; ms: number[]; bytes: number }>> {
  const blobs = () => node.ctr('content', 'ls', '-q').split('\n').filter(Boolean).length;
  const out = [];
  for (const image of RUNTIME_IMAGES) {
    const baseline = blobs();
    const ms: number[] = [];
    let bytes = 0;
    for (let i = 0; i < PULL_N; i++) {
      if (i > 0) {
        node.crictl('rmi', image.seedName);
        await waitFor(`the content of ${image.seedName} to go`, () => blobs() === baseline, 60_000);
      }
      const t = performance.now();
      node.crictl('pull', image.seedName);
      ms.push(performance.now() - t);
      const listed = JSON.parse(node.crictl('images', '-o', 'json')) as {
        images: Array<{ repoTags: string[]; size: string }>;
      };
      bytes = Number(listed.images.find((x) => x.repoTags.includes(image.seedName))?.size ?? NaN);
    }
    out.push({ name: image.seedName, ms, bytes });
  }
  return out;
}

export async function realNodeBench(opts: {
  only?: string;
  sharedArgs: string[];
  ourWebhook: boolean;
  conversionOff: (cluster: Cluster) => void;
}): Promise<void> {
  const skip = realNodeSkip();
  if (skip) throw new Error(`real-node: ${skip}`);
  const loadBefore = loadavg();
  log(`real-node: runtime images (built from images/, served on loopback)`);
  const served = await serveRuntimeImages({ images: RUNTIME_IMAGES });
  const results: Array<[string, ControllerResult]> = [];
  let pulls: Awaited<ReturnType<typeof imagePulls>>;
  try {
    const h = await startHarness({ controller: false, podNetwork: true, nodes: 0, webhook: opts.ourWebhook });
    try {
      const node = await startRealNode(h.cluster, { log, taint: false, mirrors: served.mirrors });
      log(`real-node: pulling the runtime images, ${PULL_N} times each`);
      pulls = await imagePulls(node);
      if (opts.only !== 'upstream') {
        log(`real-node: our controller (conversion ${opts.ourWebhook ? 'by our webhook' : 'off'})`);
        const ours = await h.startController(['--leader-elect=false', ...opts.sharedArgs], {
          webhook: opts.ourWebhook,
        });
        if (!opts.ourWebhook) opts.conversionOff(h.cluster);
        results.push(['ours', await onController(h.cluster, node, 'ours')]);
        ours.kill('SIGKILL');
        await new Promise((r) => (ours.exitCode !== null || ours.signalCode !== null ? r(0) : ours.once('exit', r)));
      }
      if (opts.only !== 'ours') {
        log(`real-node: upstream's controller v0.5.6 (conversion off), on the same node`);
        // Our CRDs go (their objects went with our controller); upstream's own take their place.
        h.cluster.kubectl('delete', 'crd', ...OUR_CRDS, '--wait=true', '--timeout=120s');
        installUpstreamCrds(h.cluster);
        opts.conversionOff(h.cluster);
        const up = await startUpstreamController(h.cluster, opts.sharedArgs);
        try {
          results.push(['upstream v0.5.6', await onController(h.cluster, node, 'upstream')]);
        } finally {
          await up.stop();
        }
      }
    } finally {
      await h.stop();
    }
  } finally {
    await served.stop();
  }

  const ms = (v: number) => `${v.toFixed(0)} ms`;
  const mib = (v: number) => `${(v / 2 ** 20).toFixed(1)} MiB`;
  const rows: string[][] = [];
  const row = (what: string, who: string, values: number[], unit: (v: number) => string) =>
    rows.push([what, who, String(values.length), unit(percentile(values, 50)), unit(percentile(values, 95))]);
  for (const p of pulls!)
    row(`image pull ${p.name} (${mib(p.bytes)}), loopback registry`, 'any', p.ms, (v) => `${(v / 1000).toFixed(2)} s`);
  for (const [kind, field, what] of [
    ['cold', 'podCreatedMs', 'cold claim → its pod created'],
    ['cold', 'podReadyMs', 'cold claim → its pod Ready (pod watch)'],
    ['cold', 'readyMs', 'cold claim → Ready'],
    ['cold', 'firstResultMs', 'cold claim → first command result'],
    ['warm', 'readyMs', `warm claim → Ready (pool of ${POOL})`],
    ['warm', 'firstResultMs', `warm claim → first command result (pool of ${POOL})`],
    ['warm', 'podCreatedMs', `warm claim → the pool's replacement pod created`],
  ] as const)
    for (const [who, r] of results)
      row(
        what,
        who,
        r[kind].map((x) => x[field]).filter((v): v is number => v !== undefined),
        ms,
      );
  for (const [who, r] of results)
    row(
      `idle memory of one sandbox pod (PSS, ${IDLE_S} s Ready and idle)`,
      who,
      r.memory.map((m) => m.pssBytes),
      mib,
    );
  const loadAfter = loadavg();
  console.log(
    `\nbench:k8s real-node — ${new Date().toISOString()}; one cluster (pod network), one real node ` +
      `(kubelet, containerd, gVisor under runtimeClassName gvisor, a bridge for pods); ${RUNTIME}`,
  );
  console.log(
    `  claims one at a time; time from the create call's start; first command: POST /execute ${JSON.stringify(COMMAND)} at the pod IP from the host`,
  );
  console.log(
    `  controllers as host processes, one after the other on the same cluster and node (${results.map(([w]) => w).join(', then ')}); one unmeasured warm-up claim each`,
  );
  console.log(
    `  load average (1/5/15 min) before ${loadBefore.map((x) => x.toFixed(2)).join('/')}, after ${loadAfter.map((x) => x.toFixed(2)).join('/')}; ${execFileSync('nproc', { encoding: 'utf8' }).trim()} cores\n`,
  );
  console.log(table(['measure', 'controller', 'n', 'p50', 'p95'], rows));
  for (const [who, r] of results) {
    const p50s = (field: 'parts' | 'kinds') => {
      const by = new Map<string, number[]>();
      for (const m of r.memory) for (const [k, v] of Object.entries(m[field])) by.set(k, [...(by.get(k) ?? []), v]);
      return [...by].map(([k, v]) => `${k} ${mib(percentile(v, 50))}`).join(', ');
    };
    console.log(
      `  idle pod memory, ${who}: by process ${p50s('parts')}; by page ${p50s('kinds')}; ` +
        `the pod cgroup's own charge (page cache included) ${mib(
          percentile(
            r.memory.map((m) => m.cgroupBytes),
            50,
          ),
        )} (p50s)`,
    );
  }
}
