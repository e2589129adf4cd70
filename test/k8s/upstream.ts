// Upstream's controller (sigs.k8s.io/agent-sandbox v0.5.6, built by cluster.ts from
// tools/k8s/upstream) on a cluster of ours, with upstream's own CRDs: the reference our
// controller is compared with (upstream.test.ts) and raced against (bench/k8s.ts). Its
// conversion webhook is off: the side-by-side inputs are v1beta1, the storage version, which
// the API server never converts.
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, freePort, upstreamModuleDir, type Cluster } from './cluster.ts';

export function installUpstreamCrds(cluster: Cluster): void {
  const dir = join(upstreamModuleDir(), 'k8s/crds');
  for (const f of readdirSync(dir).filter((x) => x.endsWith('.yaml')))
    cluster.kubectl('apply', '--server-side', '-f', join(dir, f));
  cluster.kubectl('wait', '--for=condition=Established', '--timeout=60s', 'crd', '--all');
}

export async function startUpstreamController(
  cluster: Cluster,
  extraArgs: string[] = [],
): Promise<{ child: ChildProcess; metricsUrl: string; stop(): Promise<void> }> {
  const metrics = await freePort();
  const out = openSync(join(cluster.dir, 'logs', 'upstream-controller.log'), 'a');
  const child = spawn(
    join(BIN, 'agent-sandbox-controller'),
    [
      '--kubeconfig',
      cluster.kubeconfig,
      '--extensions',
      '--enable-webhook=false',
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
