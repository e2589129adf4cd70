// Upstream's controller (sigs.k8s.io/agent-sandbox v0.5.6 and v1.0.1, built by cluster.ts from
// tools/k8s/upstream and tools/k8s/upstream-v1) on a cluster of ours, with upstream's own CRDs
// of the same version: the reference our controller is compared with (upstream.test.ts,
// scripts/upstream-e2e.ts) and raced against (bench/k8s.ts). v0.5.6's conversion webhook is off:
// the side-by-side inputs are v1beta1, the storage version, which the API server never
// converts (v1.0 has no webhook at all).
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, UPSTREAM_VERSION, freePort, upstreamModuleDir, type Cluster } from './cluster.ts';

/** The versions of upstream's controller built here, with the binary and the flags each needs. */
export const UPSTREAM_CONTROLLERS: Record<string, { bin: string; args: string[] }> = {
  'v0.5.6': { bin: 'agent-sandbox-controller', args: ['--enable-webhook=false'] },
  'v1.0.1': { bin: 'agent-sandbox-controller-v1.0.1', args: [] },
};

export function installUpstreamCrds(cluster: Cluster, version = UPSTREAM_VERSION): void {
  const dir = join(upstreamModuleDir(version), 'k8s/crds');
  for (const f of readdirSync(dir).filter((x) => x.endsWith('.yaml')))
    cluster.kubectl('apply', '--server-side', '-f', join(dir, f));
  cluster.kubectl('wait', '--for=condition=Established', '--timeout=60s', 'crd', '--all');
}

export async function startUpstreamController(
  cluster: Cluster,
  extraArgs: string[] = [],
  version = UPSTREAM_VERSION,
): Promise<{ child: ChildProcess; metricsUrl: string; stop(): Promise<void> }> {
  const build = UPSTREAM_CONTROLLERS[version];
  if (!build) throw new Error(`upstream's controller is not built at ${version} (see UPSTREAM_CONTROLLERS)`);
  const metrics = await freePort();
  const out = openSync(join(cluster.dir, 'logs', 'upstream-controller.log'), 'a');
  const child = spawn(
    join(BIN, build.bin),
    [
      '--kubeconfig',
      cluster.kubeconfig,
      '--extensions',
      ...build.args,
      '--leader-elect=false',
      '--metrics-bind-address',
      `127.0.0.1:${metrics}`,
      '--health-probe-bind-address',
      `127.0.0.1:${await freePort()}`,
      ...extraArgs,
    ],
    { stdio: ['ignore', out, out] },
  );
  return {
    child,
    metricsUrl: `http://127.0.0.1:${metrics}/metrics`,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
    },
  };
}
