// Upstream's own end-to-end suites (`test/e2e` of the Go module sigs.k8s.io/agent-sandbox) run
// against a controller on the control plane of cluster.ts: ours (upstream-e2e.test.ts, in CI) or
// upstream's (scripts/upstream-e2e.ts prints both side by side). The suites are compiled once per
// version with `go test -c` from the module proxy's source and cached with the other binaries.
//
// What the lab gives them that KWOK alone does not (each is what a kubelet would do):
// - a pod that runs `sh -c SCRIPT` with restartPolicy Never, where SCRIPT is not `sleep infinity`,
//   succeeds 2 s after it starts (upstream's tests run `exit 0` and `sleep 2; exit 0` this way);
// - a deleted pod's containers stop (Ready goes False) and the pod goes a second later; one with a
//   preStop hook stays Terminating, and Ready, until its grace period ends; a pod's own finalizers
//   are left alone (KWOK's default stage strips them, which no kubelet does:
//   TestSandboxSuspensionWithTerminatingPod holds one);
// - static PersistentVolumes, so claims bind and their pods schedule;
// - the Deployment `agent-sandbox-system/agent-sandbox-controller` the suites check for before
//   each test (0 replicas: the controller under test runs as a process on this machine).
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { CACHE, goModuleDir, upstreamModuleDir, type Cluster } from './cluster.ts';
import { PAUSE_IMAGE, type RealNode } from './node.ts';

export interface Suite {
  version: string;
  /** Go packages of the module that hold the tests. */
  packages: string[];
}

export const SUITES: Suite[] = [
  { version: 'v0.5.6', packages: ['./test/e2e', './test/e2e/extensions'] },
  { version: 'v1.0.1', packages: ['./test/e2e', './test/e2e/extensions'] },
];

/**
 * Tests that need what KWOK's pods cannot give, skipped with both controllers:
 * - Chrome, PythonRuntime: they port-forward into the pod and talk to the program inside it;
 * - Density: they measure real pods starting in bulk, minutes each;
 * - RuntimeClass: they compare real runtimes (runc and gVisor) starting pods;
 * - Sandboxd (v1.0): it talks to the sandboxd runtime API inside the pod.
 * The real-node issue (#23) runs pods for real.
 */
export const SKIP = 'Chrome|PythonRuntime|Density|RuntimeClass|Sandboxd';

/**
 * Of those, the ones a real node (node.ts) runs: all in `./test/e2e/extensions`, with the
 * environment of realNodeEnv(). What each needs, and why the others cannot run here:
 * - TestRunPythonRuntimeSandbox, ...Claim, ...Warmpool: `${IMAGE_PREFIX}python-runtime-sandbox:
 *   ${IMAGE_TAG}` (our images/runtime-python, served under the seed's name), runc (no
 *   runtimeClassName), `kubectl port-forward` to :8888 on local port 8888 (fixed), then GET /,
 *   POST /execute `echo 'hello world'`, and GET / answering within 200 ms while `sleep 5` executes;
 * - TestRuntimeClassLifecycle, ...StartupComparison, ...BurstRecovery: SANDBOX_RUNTIME_CLASS
 *   (gvisor here; skipped without it), `registry.k8s.io/pause:3.10` (the node's own pause image
 *   under that name; IfNotPresent). Lifecycle: a warm pool of 2 fills with Ready gVisor pods, a
 *   claim takes one, the pool refills, a second claim is served. StartupComparison: a cold Sandbox
 *   and a warm claim, timed (logged only). BurstRecovery: a benchmark (pool sizes from the nodes'
 *   CPUs, or SANDBOX_POOL_SIZES; bursts of claims; CSVs in SANDBOX_REPORT_DIR); its workload is
 *   pause with SANDBOX_WORKLOAD_SEC=0 (else `busybox:1.36`, which no registry here serves);
 * - TestRunSandboxdSandbox (v1.0 only): `${IMAGE_PREFIX}sandboxd:${IMAGE_TAG}` (our images/sandboxd:
 *   our sandboxd alone as uid 1000, bound on every address, served under that name), ready on
 *   GET /v1/health at :8080; port-forwards :8080 and :9090 (fixed local ports), then PUT and GET
 *   /v1/files/notes/hello.txt (204, then 200 with the body) and a gRPC Execute `echo hello world`;
 * - not here: TestRunChromeSandbox and TestChromeSandboxDensity (`chrome-sandbox`, a Chrome
 *   image: nothing here builds one, and no registry outside is reachable); TestPythonSandboxDensity
 *   (the MovieLens 20M data set at /tmp/movielens on the node and pandas in the image; neither is
 *   reachable; both densities also skip without -run-perf-load-test).
 */
export const REAL_NODE_RUN =
  '^(TestRunPythonRuntimeSandbox|TestRunPythonRuntimeSandboxClaim|TestRunPythonRuntimeSandboxWarmpool|TestRuntimeClassLifecycle|TestRuntimeClassStartupComparison|TestRuntimeClassBurstRecovery|TestRunSandboxdSandbox)$';

/** The tests of REAL_NODE_RUN that `version`'s suite has (sandboxd came with v1.0). */
export function realNodeTests(version: string): string[] {
  const names = REAL_NODE_RUN.slice(2, -2).split('|');
  return version.startsWith('v0.') ? names.filter((n) => n !== 'TestRunSandboxdSandbox') : names;
}

/** The package of each suite that holds the tests REAL_NODE_RUN names. */
export const REAL_NODE_PACKAGE = './test/e2e/extensions';

/** The environment those tests read: our served runtime image by the seed's name, gVisor, and
 *  BurstRecovery kept to one pool size with pause as its workload. */
export function realNodeEnv(artifacts: string): Record<string, string> {
  return {
    IMAGE_PREFIX: 'registry.k8s.io/agent-sandbox/',
    IMAGE_TAG: 'v0.1.0',
    SANDBOX_RUNTIME_CLASS: 'gvisor',
    SANDBOX_WORKLOAD_SEC: '0',
    SANDBOX_POOL_SIZES: '2',
    SANDBOX_REPORT_DIR: artifacts,
  };
}

/** The image the RuntimeClass tests run, as the node's pause image (pulled from nowhere). */
export const UPSTREAM_PAUSE_IMAGE = 'registry.k8s.io/pause:3.10';

/** A compiled package of a suite: its test binary, and its source directory (the tests' cwd). */
export interface SuitePackage {
  pkg: string;
  bin: string;
  dir: string;
}

export type Result = 'pass' | 'fail' | 'skip';
export interface TestResult {
  test: string;
  result: Result;
  seconds: number;
  /** The end of the test's output, for a failure's message. */
  output: string;
}

/** The lab's KWOK pod stages: KWOK's own fast ready and Job-complete stages, and ours (above). */
export function labKwokStages(): string[] {
  const fast = join(goModuleDir('sigs.k8s.io/kwok', 'v0.7.0'), 'kustomize/stage/pod/fast');
  // (Of two stages that match, KWOK takes the one with weight; 0 is taken only when none has any.)
  const stage = (name: string, selector: object[], delay: object | undefined, next: object, weight = 0) =>
    JSON.stringify({
      apiVersion: 'kwok.x-k8s.io/v1alpha1',
      kind: 'Stage',
      metadata: { name },
      spec: {
        resourceRef: { apiGroup: 'v1', kind: 'Pod' },
        selector: { matchExpressions: selector },
        weight,
        delay,
        next,
      },
    });
  // Its containers terminated (exit 0), with the reason the kubelet gives Ready; `phase` when the
  // pod itself ends (a deleted one keeps its phase until it goes).
  const terminated = (reason: string, phase?: string) => `{{ $now := Now }}
conditions:
- { type: Ready, status: "False", reason: ${reason}, lastTransitionTime: {{ $now | Quote }} }
- { type: ContainersReady, status: "False", reason: ${reason}, lastTransitionTime: {{ $now | Quote }} }
containerStatuses:
{{ range .spec.containers }}
- image: {{ .image | Quote }}
  name: {{ .name | Quote }}
  ready: false
  restartCount: 0
  started: false
  state: { terminated: { exitCode: 0, reason: Completed, startedAt: {{ $now | Quote }}, finishedAt: {{ $now | Quote }} } }
{{ end }}
${phase ? `phase: ${phase}\n` : ''}`;
  return [
    readFileSync(join(fast, 'pod-ready.yaml'), 'utf8'),
    readFileSync(join(fast, 'pod-complete.yaml'), 'utf8'),
    stage(
      'asb-pod-script-exits',
      [
        { key: '.metadata.deletionTimestamp', operator: 'DoesNotExist' },
        { key: '.status.phase', operator: 'In', values: ['Running'] },
        { key: '.spec.restartPolicy', operator: 'In', values: ['Never'] },
        { key: '.spec.containers.[0].command.[0]', operator: 'In', values: ['sh'] },
        { key: '.spec.containers.[0].command.[2]', operator: 'NotIn', values: ['sleep infinity'] },
      ],
      { durationMilliseconds: 2000 },
      { statusTemplate: terminated('PodCompleted', 'Succeeded') },
    ),
    // Deleted, its containers stop first (Ready goes False), and the pod goes a second later,
    // as a kubelet does: a controller sees the pod stop being ready before it is gone.
    stage(
      'asb-pod-stop',
      [
        { key: '.metadata.deletionTimestamp', operator: 'Exists' },
        { key: '.spec.containers.[0].lifecycle.preStop', operator: 'DoesNotExist' },
        { key: '.status.conditions.[] | select( .type == "Ready" ) | .status', operator: 'In', values: ['True'] },
      ],
      undefined,
      { statusTemplate: terminated('ContainersNotReady') },
      1,
    ),
    stage(
      'asb-pod-delete',
      [
        { key: '.metadata.deletionTimestamp', operator: 'Exists' },
        { key: '.spec.containers.[0].lifecycle.preStop', operator: 'DoesNotExist' },
      ],
      { durationMilliseconds: 1000 },
      { delete: true },
    ),
    // A preStop hook: the pod stays (and serves) until its grace period ends.
    stage(
      'asb-pod-delete-after-prestop',
      [
        { key: '.metadata.deletionTimestamp', operator: 'Exists' },
        { key: '.spec.containers.[0].lifecycle.preStop', operator: 'Exists' },
      ],
      { durationMilliseconds: 1000, jitterDurationFrom: { expressionFrom: '.metadata.deletionTimestamp' } },
      { delete: true },
    ),
  ];
}

/** What the suites expect to find besides the controller (see the top of this file). */
export function prepareLab(cluster: Cluster, volumes = 60): void {
  const docs: object[] = [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'agent-sandbox-system' } },
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: {
        name: 'agent-sandbox-controller',
        namespace: 'agent-sandbox-system',
        annotations: { 'asb.dev/note': 'the controller under test runs as a process on this machine' },
      },
      spec: {
        replicas: 0,
        selector: { matchLabels: { app: 'agent-sandbox-controller' } },
        template: {
          metadata: { labels: { app: 'agent-sandbox-controller' } },
          spec: { containers: [{ name: 'manager', image: 'agent-sandbox-controller:lab' }] },
        },
      },
    },
  ];
  for (let i = 0; i < volumes; i++)
    docs.push({
      apiVersion: 'v1',
      kind: 'PersistentVolume',
      metadata: { name: `lab-pv-${i}` },
      spec: {
        capacity: { storage: '10Gi' },
        accessModes: ['ReadWriteOnce'],
        persistentVolumeReclaimPolicy: 'Retain',
        hostPath: { path: `/tmp/asb-lab-pv-${i}` },
      },
    });
  const f = join(cluster.dir, 'upstream-e2e-lab.json');
  writeFileSync(f, JSON.stringify({ apiVersion: 'v1', kind: 'List', items: docs }));
  cluster.kubectl('apply', '-f', f);
}

/**
 * The lab for REAL_NODE_RUN's tests: what prepareLab gives (no volumes: these tests claim none),
 * the node's pause image under upstream's name, and the KWOK nodes tainted so that every pod
 * goes to the real node (upstream's tests select no node; their pods must really run).
 */
export function prepareRealNodeLab(cluster: Cluster, node: RealNode): void {
  prepareLab(cluster, 0);
  node.ctr('images', 'tag', '--force', PAUSE_IMAGE, UPSTREAM_PAUSE_IMAGE);
  const nodes = JSON.parse(cluster.kubectl('get', 'nodes', '-o', 'json')) as {
    items: Array<{ metadata: { name: string; annotations?: Record<string, string> } }>;
  };
  for (const n of nodes.items)
    if (n.metadata.annotations?.['kwok.x-k8s.io/node'] === 'fake')
      cluster.kubectl('taint', 'node', n.metadata.name, 'asb.dev/kwok=true:NoSchedule', '--overwrite');
}

/** Compiles the suite's packages once (`go test -c`); answers each package's test binary. */
export function ensureSuiteBinaries(suite: Suite, log: (m: string) => void = () => {}): SuitePackage[] {
  const dir = join(CACHE, 'upstream-e2e', suite.version);
  mkdirSync(dir, { recursive: true });
  const src = upstreamModuleDir(suite.version);
  return suite.packages.map((pkg) => {
    const bin = join(dir, `${pkg.replace(/^\.\//, '').replace(/\//g, '_')}.test`);
    if (!existsSync(bin)) {
      log(`compiling upstream's ${suite.version} ${pkg} suite (cached in ${dir})`);
      execFileSync('go', ['test', '-c', '-o', bin, pkg], {
        cwd: src,
        stdio: ['ignore', 'inherit', 'inherit'],
        env: { ...process.env, GOFLAGS: '-mod=mod', GOWORK: 'off' },
      });
    }
    return { pkg, bin, dir: join(src, pkg) };
  });
}

/**
 * Runs one compiled package of a suite against whatever controller the cluster has, one test at a
 * time (as upstream's README says), and answers each top-level test's result. `go tool test2json`
 * turns the binary's verbose output into events.
 */
export async function runSuitePackage(
  cluster: Cluster,
  pkg: SuitePackage,
  opts: {
    run?: string;
    /** What -test.skip names (SKIP by default; '' skips nothing). */
    skip?: string;
    timeout?: string;
    artifacts: string;
    /** Added to the tests' environment. */
    env?: Record<string, string>;
    onResult?: (r: TestResult) => void;
  },
): Promise<TestResult[]> {
  const args = ['tool', 'test2json', '-t', '-p', pkg.pkg, pkg.bin, '-test.v=test2json', '-test.parallel=1'];
  const skip = opts.skip ?? SKIP;
  if (skip) args.push('-test.skip', skip);
  args.push('-test.timeout', opts.timeout ?? '60m');
  if (opts.run) args.push('-test.run', opts.run);
  mkdirSync(opts.artifacts, { recursive: true });
  const child = spawn('go', args, {
    cwd: pkg.dir,
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, KUBECONFIG: cluster.kubeconfig, ARTIFACTS: opts.artifacts, ...opts.env },
  });
  const outputs = new Map<string, string[]>();
  const failedSubtests = new Map<string, string[]>();
  const results: TestResult[] = [];
  for await (const line of createInterface({ input: child.stdout })) {
    let ev: { Action: string; Test?: string; Elapsed?: number; Output?: string };
    try {
      ev = JSON.parse(line);
    } catch {
      continue;
    }
    if (!ev.Test) continue;
    // A subtest's lines go to its test's output, and a failed subtest is named at its end.
    const top = ev.Test.split('/')[0]!;
    if (ev.Test !== top && ev.Action === 'fail') failedSubtests.set(top, [...(failedSubtests.get(top) ?? []), ev.Test]);
    if (ev.Action === 'output') {
      const lines = outputs.get(top) ?? [];
      lines.push(ev.Output ?? '');
      if (lines.length > 60) lines.shift();
      outputs.set(top, lines);
    } else if (ev.Test === top && (ev.Action === 'pass' || ev.Action === 'fail' || ev.Action === 'skip')) {
      const r: TestResult = {
        test: ev.Test,
        result: ev.Action,
        seconds: ev.Elapsed ?? 0,
        output:
          (outputs.get(ev.Test) ?? []).join('') + (failedSubtests.get(top) ?? []).map((n) => `FAILED: ${n}\n`).join(''),
      };
      outputs.delete(ev.Test);
      results.push(r);
      opts.onResult?.(r);
    }
  }
  await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)));
  return results;
}
