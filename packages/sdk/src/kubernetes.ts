// The SDK's Kubernetes connector: a sandbox is a SandboxClaim (made, watched until Ready, and
// deleted by kill), its runtime is reached through the sandbox router with upstream's header
// protocol. @kubernetes/client-node is loaded only here (and in kube-cluster.ts, which this
// loads), so local-engine users never pay for it.
import {
  ANNOTATION_POD_NAME,
  DEFAULT_TEMPLATE,
  WARM_POOL_DEFAULT,
  WARM_POOL_NONE,
  sandboxInfo,
  type SandboxInfo,
} from '@asb/api';
import { call, type ResolvedConnection } from './connection.ts';
import { AuthError, InvalidError, NotFoundError, SandboxError, TimeoutError, UnavailableError } from './errors.ts';
import type { Connector, ConnectorConfig, SandboxConnectOpts, SandboxCreateOpts, SandboxHandle } from './connector.ts';
import type { ResumeResult, SuspendResult } from './snapshots.ts';
import { GkePodSnapshots } from './gke-snapshots.ts';
import { KubernetesCluster, ready, type Condition, type Obj } from './kube-cluster.ts';
import type { KubernetesConnection } from './kubernetes-connection.ts';

export { kubernetes, type KubernetesConnection, type RouterAddress } from './kubernetes-connection.ts';

/** A Sandbox object (and its claim) as the SDK's SandboxInfo. */
export function infoOf(sandbox: Obj, claim?: Obj): SandboxInfo {
  return sandboxInfo(sandbox, { substrate: 'kubernetes', claim });
}

const RESTORE_CHECKS = 10;
const RESTORE_CHECK_MS = 300;

/** Lifecycle calls of a sandbox on a cluster (the runtime calls go through the router). */
export class KubernetesControl {
  /** Memory snapshots: GKE Pod snapshots (a clear error on a cluster without them). */
  readonly snapshots: GkePodSnapshots;

  constructor(
    private readonly cluster: KubernetesCluster,
    private readonly namespace: string,
    private readonly name: string,
    private readonly claimName: string | undefined,
    private readonly ownsCluster: boolean,
  ) {
    this.snapshots = new GkePodSnapshots(cluster, namespace, name, async () =>
      this.podNameOf(await cluster.get(KubernetesCluster.SANDBOX, namespace, name)),
    );
  }

  /** The Pod behind the Sandbox: its pod-name annotation (a pool member keeps its own name). */
  private podNameOf(sb: Obj | undefined): string {
    return sb?.metadata.annotations?.[ANNOTATION_POD_NAME] ?? this.name;
  }

  async refresh(): Promise<SandboxInfo> {
    const sb = await this.cluster.get(KubernetesCluster.SANDBOX, this.namespace, this.name);
    if (!sb) throw new NotFoundError(`Sandbox ${this.namespace}/${this.name} not found`);
    const claim = this.claimName
      ? await this.cluster.get(KubernetesCluster.CLAIM, this.namespace, this.claimName)
      : undefined;
    return infoOf(sb, claim);
  }

  /**
   * operatingMode Suspended (v1beta1): the Pod goes, volumes stay. `snapshot: true` first takes a
   * GKE Pod snapshot (as upstream's client does, named suspend-<sandbox>), from which GKE starts
   * the Pod again on resume.
   */
  async suspend(opts: { snapshot?: boolean }): Promise<SuspendResult> {
    const snapshot = opts.snapshot ? await this.snapshots.take(`suspend-${this.name}`) : undefined;
    await this.cluster.setOperatingMode(this.namespace, this.name, 'Suspended');
    await this.cluster.waitFor(
      KubernetesCluster.SANDBOX,
      this.namespace,
      this.name,
      (o) =>
        ready(o)?.reason === 'SandboxSuspended' &&
        !!o?.status?.conditions?.some((c: Condition) => c.type === 'Suspended' && c.reason === 'PodTerminated'),
      180_000,
      `Sandbox ${this.name} to be suspended`,
    );
    return snapshot ? { suspended: true, snapshotId: snapshot.id, snapshot } : { suspended: true };
  }

  /** operatingMode Running, then Ready; restoredFromSnapshot when GKE says the new Pod came from the latest snapshot. */
  async resume(opts: { timeoutMs?: number }): Promise<ResumeResult> {
    // (A cluster without Pod snapshots has none to restore: that is not an error here.)
    const latest = (
      await this.snapshots.list().catch((err) => {
        if (err instanceof InvalidError) return [];
        throw err;
      })
    )[0];
    await this.cluster.setOperatingMode(this.namespace, this.name, 'Running');
    const sb = await this.cluster.waitFor<Obj>(
      KubernetesCluster.SANDBOX,
      this.namespace,
      this.name,
      (o) => ready(o)?.status === 'True',
      opts.timeoutMs ?? 180_000,
      `Sandbox ${this.name} to be Ready again`,
    );
    if (!latest) return { resumed: true, restoredFromSnapshot: false };
    // GKE writes PodRestored apart from readiness: a Pod that is Ready without it yet is read
    // again for a few seconds before it counts as started afresh.
    const podName = this.podNameOf(sb);
    let pod = await this.cluster.pod(this.namespace, podName);
    for (let i = 0; i < RESTORE_CHECKS && !pod?.status?.conditions?.some((c) => c.type === 'PodRestored'); i++) {
      await new Promise((r) => setTimeout(r, RESTORE_CHECK_MS));
      pod = await this.cluster.pod(this.namespace, podName);
    }
    return { resumed: true, restoredFromSnapshot: GkePodSnapshots.restoredFrom(pod, latest.id), snapshotId: latest.id };
  }

  async reset(): Promise<SandboxInfo> {
    throw new InvalidError(
      'reset is a local-engine operation; on Kubernetes, kill the sandbox and create another (a warm pool makes that fast)',
    );
  }

  /** Deletes the claim (the Sandbox, Pod and Service go with it by owner references), and the
   *  snapshot triggers this handle made. */
  async kill(): Promise<void> {
    await this.snapshots.deleteTriggers();
    if (this.claimName) await this.cluster.deleteClaim(this.namespace, this.claimName);
    else {
      try {
        await this.cluster.api.deleteNamespacedCustomObject({
          ...KubernetesCluster.SANDBOX,
          namespace: this.namespace,
          name: this.name,
        });
      } catch (err) {
        const what = `delete Sandbox ${this.namespace}/${this.name}`;
        if ((err as { code?: number }).code !== 404) throw KubernetesCluster.apiError(err, what);
      }
    }
    await this.close();
  }

  async close(): Promise<void> {
    if (this.ownsCluster) await this.cluster.close();
  }
}

/** Sandbox.create on a cluster: a claim, watched until Ready; the runtime through the router. */
/** How long the router may answer 5xx for a Ready sandbox (its runtime not answering) before create gives up. */
const RUNTIME_ANSWER_MS = 15_000;

/**
 * Waits until the router routes to the sandbox's runtime (its `/` answers), as a Ready claim does
 * not say so: a Gateway gets its address before its routes are live (Traefik answered
 * "404 page not found" for a moment), a router pod may still be starting. Refused (401/403) is
 * final. Not reachable or not routed (404) is tried again until the deadline (a cloud Gateway
 * takes minutes to program). The router answering 5xx (the sandbox's runtime does not answer:
 * not started yet, or an image without it) is tried again for RUNTIME_ANSWER_MS at most.
 */
async function untilRouted(
  conn: ResolvedConnection,
  sandbox: string,
  namespace: string,
  deadline: number,
): Promise<void> {
  let runtimeDeadline: number | undefined;
  for (let wait = 50; ; wait = Math.min(1000, wait * 2)) {
    let last: Error;
    try {
      await (
        await call(conn, '/', `reach sandbox ${sandbox} through ${conn.unreachable ?? conn.url}`, {
          sandbox: { id: sandbox, namespace },
          timeoutMs: Math.max(1000, Math.min(10_000, deadline - Date.now())),
        })
      ).body?.cancel();
      return;
    } catch (err) {
      if (err instanceof AuthError) throw err;
      const serverError = err instanceof SandboxError && (err.status ?? 0) >= 500;
      if (!(
        err instanceof UnavailableError ||
        err instanceof NotFoundError ||
        err instanceof TimeoutError ||
        serverError
      ))
        throw err;
      last = err;
      if (serverError) {
        runtimeDeadline ??= Date.now() + RUNTIME_ANSWER_MS;
        if (Date.now() + wait > runtimeDeadline)
          throw new UnavailableError(
            `sandbox ${sandbox} is Ready, but its runtime did not answer through the router for ${RUNTIME_ANSWER_MS / 1000} s (does its image serve the runtime API on port 8888?): ${last.message}`,
            err.status,
          );
      }
    }
    if (Date.now() + wait > deadline)
      throw new TimeoutError(`sandbox ${sandbox} is Ready, but the router did not reach it in time: ${last.message}`);
    await new Promise((r) => setTimeout(r, wait));
  }
}

/** The claim's source: a pool by name (v1beta1 warmPoolRef), else the template with its policy. */
function claimFrom(opts: SandboxCreateOpts): { template: string; warmpool?: string } | { warmPool: string } {
  const pool = opts.warmPool;
  if (pool !== undefined && pool !== WARM_POOL_DEFAULT && pool !== WARM_POOL_NONE) return { warmPool: pool };
  return { template: opts.template ?? DEFAULT_TEMPLATE, warmpool: pool };
}

type Cluster = KubernetesCluster;
const handle = (cluster: Cluster, conn: ResolvedConnection, sandbox: Obj, claim: Obj | undefined): SandboxHandle => ({
  info: infoOf(sandbox, claim),
  conn,
  control: new KubernetesControl(cluster, conn.namespace, sandbox.metadata.name, claim?.metadata.name, true),
});

/** The connector of `connection: kubernetes({...})`. */
export function kubernetesConnector(config: ConnectorConfig): Connector {
  const connection = config as KubernetesConnection;
  return {
    /** A claim, watched until Ready; the runtime through the router. */
    async create(opts: SandboxCreateOpts): Promise<SandboxHandle> {
      if (opts.image) {
        // A pod of an arbitrary image has no runtime on :8888 for the SDK to talk to.
        throw new InvalidError(
          "image: a sandbox of a bare image is the local engine's; on Kubernetes, name a template whose image serves the runtime API",
        );
      }
      const cluster = await KubernetesCluster.open(connection);
      const namespace = opts.namespace ?? 'default';
      const timeoutMs = opts.timeoutMs ?? 180_000;
      const deadline = Date.now() + timeoutMs;
      try {
        const conn = await cluster.connection(namespace);
        const { claim, sandbox } = await cluster.claim({
          namespace,
          name: opts.name,
          ttlSeconds: opts.ttlSeconds,
          labels: opts.labels,
          timeoutMs,
          from: claimFrom(opts),
        });
        try {
          await untilRouted(conn, sandbox.metadata.name, namespace, deadline);
        } catch (err) {
          // As for a claim that never became Ready: not left behind.
          await cluster.deleteClaim(namespace, claim.metadata.name).catch(() => undefined);
          throw err;
        }
        return handle(cluster, conn, sandbox, claim);
      } catch (err) {
        await cluster.close();
        throw err;
      }
    },

    /** `id` names a SandboxClaim (as upstream's get_sandbox) or a Sandbox. */
    async connect(id: string, opts: SandboxConnectOpts): Promise<SandboxHandle> {
      const cluster = await KubernetesCluster.open(connection);
      const namespace = opts.namespace ?? 'default';
      const wait = opts.waitReadyMs ?? 60_000;
      const { CLAIM, SANDBOX } = KubernetesCluster;
      try {
        const claim = await cluster.get(CLAIM, namespace, id);
        const sandboxName: string = claim
          ? ((
              await cluster.waitFor<Obj>(
                CLAIM,
                namespace,
                id,
                (c) => !!c?.status?.sandbox?.name,
                wait,
                `SandboxClaim ${id} to have a sandbox`,
              )
            ).status?.sandbox?.name ?? '')
          : id;
        const sandbox = await cluster.waitFor<Obj>(
          SANDBOX,
          namespace,
          sandboxName,
          (o) => {
            if (!o) throw new NotFoundError(`no SandboxClaim or Sandbox named "${id}" in namespace ${namespace}`);
            return wait <= 0 || ready(o)?.status === 'True';
          },
          Math.max(wait, 1),
          `Sandbox ${sandboxName} to be Ready`,
        );
        return handle(cluster, await cluster.connection(namespace), sandbox, claim);
      } catch (err) {
        await cluster.close();
        throw err;
      }
    },
  };
}
