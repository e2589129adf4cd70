// What every test and benchmark on the real control plane needs: the cluster (cluster.ts) with
// our CRDs installed, our controller as its own process (as deployed: its conversion webhook on a
// host name that resolves to loopback), and small kubectl helpers.
import { readFileSync, writeFileSync, existsSync, readdirSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { startCluster, freePort, waitFor, type Cluster, type PodPortForward } from './cluster.ts';

export { waitFor };

export const repo = new URL('../../', import.meta.url).pathname;
export const WEBHOOK_HOST = 'asb-webhook.local';

/** The webhook's URL names a host that must resolve to loopback on this machine. */
function ensureHostsLine(): void {
  const hosts = readFileSync('/etc/hosts', 'utf8');
  if (!new RegExp(`\\s${WEBHOOK_HOST.replace('.', '\\.')}(\\s|$)`, 'm').test(hosts))
    writeFileSync('/etc/hosts', `${hosts.trimEnd()}\n127.0.0.1 ${WEBHOOK_HOST}\n`);
}

export interface Harness {
  cluster: Cluster;
  get(...args: string[]): any;
  /** `kubectl get` that answers undefined for NotFound. */
  find(...args: string[]): any;
  apply(yaml: string): string;
  /**
   * Starts one more controller replica; resolves once it has patched the CRDs with its webhook
   * (or, with `webhook: false`, once it is ready: then the CRDs keep their Service reference, which
   * does not resolve here, as upstream's controller runs in the side-by-side benchmark).
   */
  startController(extraArgs?: string[], opts?: { webhook?: boolean }): Promise<ChildProcess>;
  claimReady(name: string): any;
  stop(): Promise<void>;
}

/**
 * `controllerArgs` are added to the first controller's flags. Suites that do not test leader
 * election pass `--leader-elect=false`: on a loaded 2-core machine a lease renewal can miss its
 * deadline, and a controller that loses its lease exits (as upstream's), with no Deployment
 * here to restart it.
 */
export async function startHarness(
  opts: {
    controller?: boolean;
    controllerArgs?: string[];
    webhook?: boolean;
    portForwards?: PodPortForward[];
    kwokStages?: string[];
    /** Passed to startCluster: for a real node (node.ts) beside or instead of KWOK's. */
    podNetwork?: boolean;
    nodes?: number;
  } = {},
): Promise<Harness> {
  const cluster = await startCluster({
    log: (m) => process.stderr.write(`${m}\n`),
    portForwards: opts.portForwards,
    kwokStages: opts.kwokStages,
    podNetwork: opts.podNetwork,
    nodes: opts.nodes,
  });
  const children: ChildProcess[] = [];
  const get = (...args: string[]) => JSON.parse(cluster.kubectl('get', ...args, '-o', 'json'));
  const find = (...args: string[]) => {
    try {
      return get(...args);
    } catch (err) {
      if (/NotFound/.test(String((err as { stderr?: string }).stderr ?? err))) return undefined;
      throw err;
    }
  };
  let n = 0;
  const apply = (yaml: string) => {
    const f = join(cluster.dir, `apply-${Date.now()}-${n++}.yaml`);
    writeFileSync(f, yaml);
    return cluster.kubectl('apply', '-f', f);
  };
  const h: Harness = {
    cluster,
    get,
    find,
    apply,
    async startController(extraArgs = [], { webhook = true } = {}) {
      const port = await freePort();
      const health = await freePort();
      const out = openSync(join(cluster.dir, 'logs', 'controller.log'), 'a');
      // ASB_CONTROLLER_CPU_PROF=dir: each controller writes a V8 CPU profile there when it stops.
      const prof = process.env.ASB_CONTROLLER_CPU_PROF
        ? ['--cpu-prof', '--cpu-prof-dir', process.env.ASB_CONTROLLER_CPU_PROF]
        : [];
      const child = spawn(
        process.execPath,
        [
          ...prof,
          '--import',
          'tsx',
          join(repo, 'packages/k8s/src/controller/main.ts'),
          '--kubeconfig',
          cluster.kubeconfig,
          '--leader-elect=true',
          '--leader-election-namespace',
          'agent-sandbox-system',
          '--metrics-bind-address',
          '0',
          '--health-probe-bind-address',
          `127.0.0.1:${health}`,
          ...(webhook
            ? [
                '--webhook-bind-address',
                `127.0.0.1:${port}`,
                '--webhook-url',
                `https://${WEBHOOK_HOST}:${port}/convert`,
              ]
            : ['--webhook-bind-address', '0']),
          ...extraArgs,
        ],
        { stdio: ['ignore', out, out], cwd: repo },
      );
      children.push(child);
      // A controller that exits while starting fails the wait at once, with the end of its log.
      // (The poll stops then too: its blocking kubectl would hold up the cluster's stop.)
      let starting = true;
      let exitedEarly = false;
      const exited = new Promise<never>((_, reject) =>
        child.once('exit', (code, signal) => {
          if (!starting) return;
          exitedEarly = true;
          const log = readFileSync(join(cluster.dir, 'logs', 'controller.log'), 'utf8')
            .split('\n')
            .slice(-15)
            .join('\n');
          reject(new Error(`the controller exited while starting (${code ?? signal}):\n${log}`));
        }),
      );
      try {
        await Promise.race([
          exited,
          webhook
            ? waitFor(
                'the controller to patch the CRDs',
                () =>
                  exitedEarly ||
                  get('crd', 'sandboxes.agents.x-k8s.io').spec.conversion.webhook?.clientConfig?.url?.includes(
                    String(port),
                  ),
                60_000,
              )
            : waitFor(
                'the controller to be ready',
                async () => exitedEarly || (await fetch(`http://127.0.0.1:${health}/readyz`)).ok,
                60_000,
              ),
        ]);
      } finally {
        starting = false;
      }
      return child;
    },
    claimReady(name: string) {
      const c = find('sandboxclaims.extensions.agents.x-k8s.io', name);
      return c?.status?.conditions?.some((x: any) => x.type === 'Ready' && x.status === 'True') && c;
    },
    async stop() {
      // (A process killed by a signal has exitCode null too: signalCode says it is gone.)
      // (A profiled controller is asked to stop, so that it writes its profile.)
      const signal = process.env.ASB_CONTROLLER_CPU_PROF ? 'SIGTERM' : 'SIGKILL';
      for (const c of children)
        if (c.exitCode === null && c.signalCode === null) {
          c.kill(signal);
          await new Promise((r) => c.once('exit', r));
        }
      await cluster.stop();
    },
  };
  try {
    const crdDir = join(repo, 'deploy/crds');
    if (!existsSync(crdDir)) throw new Error('deploy/crds is missing (npm run gen:crds)');
    for (const f of readdirSync(crdDir).filter((x) => x.endsWith('.yaml') && x !== 'kustomization.yaml'))
      cluster.kubectl('apply', '--server-side', '-f', join(crdDir, f));
    cluster.kubectl('wait', '--for=condition=Established', '--timeout=60s', 'crd', '--all');
    cluster.kubectl('create', 'namespace', 'agent-sandbox-system');
    ensureHostsLine();
    if (opts.controller ?? true) await h.startController(opts.controllerArgs, { webhook: opts.webhook });
    return h;
  } catch (err) {
    await h.stop();
    throw err;
  }
}
