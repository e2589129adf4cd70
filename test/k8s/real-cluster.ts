// A cluster whose pods really run, as the real-node suites use it: this repository's images built
// and served by the loopback registry under their published names (scripts/runtime-images.ts), a
// control plane with a pod network (cluster.ts: an API server pods reach, kube-proxy, CoreDNS) and
// one untainted real node (node.ts) that pulls through that registry. No KWOK node.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, startCluster, waitFor, type Cluster } from './cluster.ts';
import { NETWORK_BINS, realNodeSkip, startRealNode, type RealNode } from './node.ts';
import { serveRuntimeImages, type ImageSpec, type ServedImages } from '../../scripts/runtime-images.ts';

export interface RealCluster {
  cluster: Cluster;
  node: RealNode;
  served: ServedImages;
  /** `kubectl get … -o json`, parsed. */
  get<T>(...args: string[]): T;
  /** `kubectl apply -f -` of a YAML or JSON text (more arguments before `-f`). */
  apply(text: string, ...args: string[]): string;
  stop(): Promise<void>;
}

/** Why a real cluster cannot start here, or undefined when it can. */
export function realClusterSkip(): string | undefined {
  return (
    realNodeSkip() ??
    (NETWORK_BINS.every((b) => existsSync(join(BIN, b))) ? undefined : `not built: ${NETWORK_BINS.join(', ')}`)
  );
}

export async function startRealCluster(opts: {
  /** What the registry serves (RUNTIME_IMAGES, CLUSTER_IMAGES, …): only those are built. */
  images: readonly ImageSpec[];
  log: (m: string) => void;
}): Promise<RealCluster> {
  const served = await serveRuntimeImages({ images: opts.images });
  let cluster: Cluster | undefined;
  try {
    cluster = await startCluster({ log: opts.log, nodes: 0, podNetwork: true });
    const node = await startRealNode(cluster, { log: opts.log, taint: false, mirrors: served.mirrors });
    const c = cluster;
    return {
      cluster: c,
      node,
      served,
      get: <T>(...args: string[]) => JSON.parse(c.kubectl('get', ...args, '-o', 'json')) as T,
      apply: (text: string, ...args: string[]) =>
        execFileSync('kubectl', ['--kubeconfig', c.kubeconfig, 'apply', ...args, '-f', '-'], {
          input: text,
          encoding: 'utf8',
          stdio: ['pipe', 'pipe', 'pipe'],
        }),
      async stop() {
        await node.stop();
        await c.stop();
        await served.stop();
      },
    };
  } catch (err) {
    await cluster?.stop();
    await served.stop();
    throw err;
  }
}

/** Whether a Pod (or any object with conditions) is Ready. */
export const isReady = (o: { status?: { conditions?: Array<{ type: string; status: string }> } }) =>
  o.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;

/** Waits until the Deployment has at least `replicas` available. A timeout's error carries the
 *  pods, their events and the Deployment's logs: a CI log said only "timed out" when runc could
 *  not start pods. */
export function deploymentAvailable(
  rc: RealCluster,
  namespace: string,
  name: string,
  replicas: number,
  timeoutMs = 300_000,
): Promise<true> {
  return waitFor(
    `${namespace}/${name} to have ${replicas} available`,
    () =>
      (rc.get<{ status: { availableReplicas?: number } }>('deployment', '-n', namespace, name).status
        .availableReplicas ?? 0) >= replicas,
    timeoutMs,
  ).catch((err: Error) => {
    const dump = [
      ['get', 'pods', '-A', '-o', 'wide'],
      ['describe', 'pods', '-n', namespace],
      ['logs', '-n', namespace, `deployment/${name}`, '--all-containers', '--tail=60'],
    ].map((args) => {
      let out: string;
      try {
        out = rc.cluster.kubectl(...args);
      } catch (e) {
        out = (e as Error).message;
      }
      return `kubectl ${args.join(' ')}:\n${out}`;
    });
    throw new Error([err.message, ...dump].join('\n'), { cause: err });
  });
}
