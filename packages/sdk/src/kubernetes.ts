// The SDK on a Kubernetes cluster: a sandbox is a SandboxClaim (made, watched until Ready, and
// deleted by kill), its runtime is reached through the sandbox router with upstream's header
// protocol. The router is found by a direct URL, a Gateway's address, or a `kubectl
// port-forward` to its Service (developer mode, as upstream's Python client does).
// @kubernetes/client-node is loaded only here, so local-engine users never pay for it.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { mapKubeApiError, type KubeErrorTable, type PooledKubeConfig } from '@asb/kube';
import type * as K8s from '@kubernetes/client-node';
import { call, type ResolvedConnection } from './connection.ts';
import { AuthError, ConflictError, InvalidError, NotFoundError, SandboxError, TimeoutError, UnavailableError } from './errors.ts';
import { Sandbox, type SandboxCreateOpts, type SandboxInfo } from './sandbox.ts';
import type { ResumeResult, SuspendResult } from './snapshots.ts';
import { GkePodSnapshots } from './gke-snapshots.ts';
import {
  ANNOTATION_CLIENT_FIRST_REQUESTED_AT, ANNOTATION_POD_NAME, DEFAULT_TEMPLATE, buildClaim, isTerminalReason, rfc3339Millis, sandboxInfo,
  type TerminalReason,
} from '@asb/api';

export interface KubernetesConnection {
  kind: 'kubernetes';
  /** A kubeconfig file. @default $KUBECONFIG, ~/.kube/config, or the in-cluster service account */
  kubeconfig?: string;
  context?: string;
  /** Where the sandbox router is. @default port-forward to svc/sandbox-router-svc:8080 in agent-sandbox-system */
  router?: RouterAddress;
  /** The router's bearer token (ROUTER_AUTH_TOKEN). @default env ASB_ROUTER_TOKEN */
  routerToken?: string;
}

export type RouterAddress =
  | { url: string }
  | { gateway: { name: string; namespace?: string } }
  | { portForward: { service?: string; namespace?: string; port?: number } };

/** Connection options for a cluster: `Sandbox.create({ connection: kubernetes({ router: { url } }) })`. */
export function kubernetes(opts: Omit<KubernetesConnection, 'kind'> = {}): KubernetesConnection {
  return { kind: 'kubernetes', ...opts };
}

const SANDBOX = { group: 'agents.x-k8s.io', version: 'v1beta1', plural: 'sandboxes' };
const CLAIM = { group: 'extensions.agents.x-k8s.io', version: 'v1beta1', plural: 'sandboxclaims' };
const CLAIM_V1ALPHA1 = { ...CLAIM, version: 'v1alpha1' };

type Obj = { metadata: { name: string; namespace?: string; uid?: string; resourceVersion?: string; creationTimestamp?: string; annotations?: Record<string, string>; ownerReferences?: Array<{ kind: string; name: string; controller?: boolean }> }; spec?: any; status?: any };
type Condition = { type: string; status: string; reason?: string; message?: string; lastTransitionTime?: string };
const ready = (o: Obj | undefined): Condition | undefined => (o?.status?.conditions as Condition[] | undefined)?.find((c) => c.type === 'Ready');

/** The error for a Ready reason that will not fix itself while we wait (@asb/api's set). */
const TERMINAL = {
  TemplateNotFound: (m) => new NotFoundError(m, 404, 'TemplateNotFound'),
  WarmPoolNotFound: (m) => new NotFoundError(m, 404, 'WarmPoolNotFound'),
  InvalidMetadata: (m) => new InvalidError(m, 422, 'InvalidMetadata'),
  EnvVarsInjectionRejected: (m) => new InvalidError(m, 422, 'EnvVarsInjectionRejected'),
  VolumeClaimTemplatesError: (m) => new InvalidError(m, 422, 'VolumeClaimTemplatesError'),
  ClaimExpired: (m) => new SandboxError(m, 410, 'ClaimExpired'),
  ReconcilerError: (m) => new InvalidError(m, 422, 'ReconcilerError'),
  PodFailed: (m) => new InvalidError(m, 422, 'PodFailed'),
  PodSucceeded: (m) => new InvalidError(m, 422, 'PodSucceeded'),
} satisfies Record<TerminalReason, (msg: string) => Error>;

/** One cluster: its API clients, and the router connection shared by its sandboxes. */
export class KubernetesCluster {
  private routerConn?: Promise<{ url: string; via?: string; stop?: () => void }>;
  private core?: K8s.CoreV1Api;
  private constructor(readonly k8s: typeof K8s, readonly kc: PooledKubeConfig, readonly api: K8s.CustomObjectsApi, private readonly opts: KubernetesConnection) {}

  static async open(opts: KubernetesConnection): Promise<KubernetesCluster> {
    const k8s = await import('@kubernetes/client-node');
    const { loadKubeConfig } = await import('@asb/kube');
    const kc = loadKubeConfig(opts);
    if (!kc.getCurrentCluster()) throw new UnavailableError('no Kubernetes cluster configured: pass { kubeconfig } or set KUBECONFIG');
    return new KubernetesCluster(k8s, kc, kc.makeApiClient(k8s.CustomObjectsApi), opts);
  }

  /** The router as an SDK connection (the runtime calls go there with X-Sandbox-* headers). */
  async connection(namespace: string): Promise<ResolvedConnection> {
    this.routerConn ??= this.findRouter();
    const { url, via } = await this.routerConn;
    return { url, token: this.opts.routerToken ?? process.env.ASB_ROUTER_TOKEN ?? '', namespace, requestTimeoutMs: 60_000, unreachable: `the sandbox router at ${url}${via ? ` (${via})` : ''}` };
  }

  private async findRouter(): Promise<{ url: string; via?: string; stop?: () => void }> {
    const r = this.opts.router ?? { portForward: {} };
    if ('url' in r) return { url: r.url.replace(/\/$/, '') };
    if ('gateway' in r) {
      const ns = r.gateway.namespace ?? 'default';
      const gw = await this.waitFor<Obj>({ group: 'gateway.networking.k8s.io', version: 'v1', plural: 'gateways' }, ns, r.gateway.name,
        (o) => !!o?.status?.addresses?.[0]?.value, 180_000, `the Gateway ${ns}/${r.gateway.name} to have an address`);
      return { url: `http://${gw.status.addresses[0].value}`, via: `the address of Gateway ${ns}/${r.gateway.name}` };
    }
    return this.portForward(r.portForward.service ?? 'sandbox-router-svc', r.portForward.namespace ?? 'agent-sandbox-system', r.portForward.port ?? 8080);
  }

  /** `kubectl port-forward` to the router Service on a free local port; stopped by close(). */
  private async portForward(service: string, namespace: string, port: number): Promise<{ url: string; via: string; stop: () => void }> {
    const local = await new Promise<number>((res, rej) => { const s = createServer(); s.listen(0, '127.0.0.1', () => { const p = (s.address() as { port: number }).port; s.close(() => res(p)); }); s.on('error', rej); });
    const args = ['port-forward', `svc/${service}`, `${local}:${port}`, '-n', namespace, ...(this.opts.kubeconfig ? ['--kubeconfig', this.opts.kubeconfig] : []), ...(this.opts.context ? ['--context', this.opts.context] : [])];
    const child: ChildProcess = spawn('kubectl', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d) => { stderr += d; });
    await new Promise<void>((res, rej) => {
      const t = setTimeout(() => { child.kill(); rej(new TimeoutError(`kubectl port-forward to svc/${service} in ${namespace} was not ready in 30 s: ${stderr.trim()}`)); }, 30_000);
      child.stdout!.on('data', (d: Buffer) => { if (d.toString().includes('Forwarding from')) { clearTimeout(t); res(); } });
      child.once('error', (e) => { clearTimeout(t); rej(new UnavailableError(`cannot run kubectl port-forward: ${e.message}`)); });
      child.once('exit', (code) => { clearTimeout(t); rej(new UnavailableError(`kubectl port-forward to svc/${service} in ${namespace} exited (${code}): ${stderr.trim()}`)); });
    });
    child.unref();
    return { url: `http://127.0.0.1:${local}`, via: `kubectl port-forward to svc/${service}:${port} in ${namespace}: is a router pod behind it running?`, stop: () => child.kill() };
  }

  /** Stops a port-forward this cluster started; closes its API connections. */
  async close(): Promise<void> {
    const r = await this.routerConn?.catch(() => undefined);
    r?.stop?.();
    this.kc.closeConnections();
  }

  async get(coords: typeof SANDBOX, namespace: string, name: string): Promise<Obj | undefined> {
    try { return await this.api.getNamespacedCustomObject({ ...coords, namespace, name }) as Obj; } catch (err) {
      if ((err as { code?: number }).code === 404) return undefined;
      throw apiError(err, `get ${coords.plural} ${namespace}/${name}`);
    }
  }

  /**
   * Watches one object (a field-selector watch from a list's resourceVersion, so no change is
   * missed between the two) until `done` holds; `done` may throw to stop with an error.
   */
  async waitFor<T extends Obj>(coords: typeof SANDBOX, namespace: string, name: string, done: (o: T | undefined) => boolean, timeoutMs: number, what: string): Promise<T> {
    const path = `/apis/${coords.group}/${coords.version}/namespaces/${namespace}/${coords.plural}`;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const list = await this.api.listNamespacedCustomObject({ ...coords, namespace, fieldSelector: `metadata.name=${name}` }).catch((err) => { throw apiError(err, `list ${coords.plural}`); }) as { items: T[]; metadata: { resourceVersion: string } };
      const first = list.items[0];
      if (done(first)) return first!;
      const left = deadline - Date.now();
      if (left <= 0) throw new TimeoutError(`timed out after ${timeoutMs} ms waiting for ${what}`);
      // Resolves with the object that satisfied `done`, or undefined when the watch ended early
      // (the server closes watches from time to time): then list again and go on.
      const found = await new Promise<T | undefined>((resolve, reject) => {
        let ctl: AbortController | undefined;
        let settled = false;
        const finish = (fn: () => void) => { if (settled) return; settled = true; clearTimeout(timer); ctl?.abort(); fn(); };
        const timer = setTimeout(() => finish(() => reject(new TimeoutError(`timed out after ${timeoutMs} ms waiting for ${what}`))), left);
        new this.k8s.Watch(this.kc).watch(path, { fieldSelector: `metadata.name=${name}`, resourceVersion: list.metadata.resourceVersion, allowWatchBookmarks: true },
          (type: string, obj: T) => {
            if (type === 'BOOKMARK') return;
            try { if (done(type === 'DELETED' ? undefined : obj)) finish(() => resolve(obj)); } catch (err) { finish(() => reject(err)); }
          },
          () => finish(() => resolve(undefined)),
        ).then((c) => { ctl = c; if (settled) c.abort(); }, (err) => finish(() => reject(apiError(err, `watch ${coords.plural}`))));
      });
      if (found) return found;
    }
  }

  /**
   * Makes a claim and waits, by watching it, until its sandbox is Ready. On a warm pool: v1beta1
   * `warmPoolRef` (as upstream's 0.5 client); on a template: v1alpha1 `sandboxTemplateRef` (v1beta1
   * claims name a pool), with `warmpool` "default" (any pool of the template), "none" or a pool.
   */
  async claim(o: { namespace: string; template?: string; warmPool?: string; warmpool?: string; name?: string; ttlSeconds?: number; timeoutMs: number; labels?: Record<string, string> }): Promise<{ claim: Obj; sandbox: Obj }> {
    const name = o.name ?? `sandbox-claim-${randomBytes(4).toString('hex')}`;
    const from = o.warmPool ? { warmPool: o.warmPool } : o.template ? { template: o.template, warmpool: o.warmpool } : undefined;
    if (!from) throw new InvalidError('a Kubernetes sandbox needs { template } or { warmPool }');
    const coords = 'warmPool' in from ? CLAIM : CLAIM_V1ALPHA1;
    const now = new Date();
    const body = buildClaim({
      name, from, ttlSeconds: o.ttlSeconds, now, createdBy: 'asb-sdk', labels: o.labels,
      annotations: { [ANNOTATION_CLIENT_FIRST_REQUESTED_AT]: rfc3339Millis(now) }, version: 'v1alpha1',
    });
    try { await this.api.createNamespacedCustomObject({ ...coords, namespace: o.namespace, body }); } catch (err) { throw apiError(err, `create SandboxClaim ${o.namespace}/${name}`); }
    try {
      const claim = await this.waitFor<Obj>(CLAIM, o.namespace, name, (c) => {
        if (!c) throw new NotFoundError(`SandboxClaim ${o.namespace}/${name} was deleted while waiting for it`);
        const r = ready(c);
        if (r?.status === 'True' && c.status?.sandbox?.name) return true;
        if (isTerminalReason(r?.reason)) throw TERMINAL[r.reason](`SandboxClaim ${o.namespace}/${name}: ${r.reason}: ${r.message}`);
        return false;
      }, o.timeoutMs, `SandboxClaim ${o.namespace}/${name} to be Ready`);
      const sandbox = await this.get(SANDBOX, o.namespace, claim.status.sandbox.name);
      if (!sandbox) throw new NotFoundError(`the Sandbox ${claim.status.sandbox.name} of claim ${name} is gone`);
      return { claim, sandbox };
    } catch (err) {
      // As upstream's client: a claim that did not become ready is not left behind.
      await this.deleteClaim(o.namespace, name).catch(() => undefined);
      throw err;
    }
  }

  async deleteClaim(namespace: string, name: string): Promise<void> {
    try { await this.api.deleteNamespacedCustomObject({ ...CLAIM, namespace, name }); } catch (err) {
      if ((err as { code?: number }).code !== 404) throw apiError(err, `delete SandboxClaim ${namespace}/${name}`);
    }
  }

  /** A Pod (for its conditions), or undefined when it is gone. */
  async pod(namespace: string, name: string): Promise<K8s.V1Pod | undefined> {
    this.core ??= this.kc.makeApiClient(this.k8s.CoreV1Api);
    try { return await this.core.readNamespacedPod({ namespace, name }); } catch (err) {
      if ((err as { code?: number }).code === 404) return undefined;
      throw apiError(err, `get Pod ${namespace}/${name}`);
    }
  }

  async setOperatingMode(namespace: string, name: string, mode: 'Running' | 'Suspended'): Promise<void> {
    try {
      await this.api.patchNamespacedCustomObject({ ...SANDBOX, namespace, name, body: { spec: { operatingMode: mode } } },
        this.k8s.setHeaderOptions('Content-Type', this.k8s.PatchStrategy.MergePatch));
    } catch (err) { throw apiError(err, `set operatingMode ${mode} on Sandbox ${namespace}/${name}`); }
  }

  static readonly SANDBOX = SANDBOX;
  static readonly CLAIM = CLAIM;
}

/** The API server's errors as the SDK's (read by @asb/kube, one table here). */
const API_ERRORS = {
  NotFound: (what, f) => new NotFoundError(`${what}: ${f.message}`),
  Forbidden: (what, f) => new AuthError(`${what}: the cluster refused (${f.code}): ${f.message}`, f.code, 'Forbidden'),
  AlreadyExists: (what, f) => new ConflictError(`${what}: ${f.message}`, 409, 'Conflict'),
  Conflict: (what, f) => new ConflictError(`${what}: ${f.message}`, 409, 'Conflict'),
  Invalid: (what, f) => new InvalidError(`${what}: ${f.message}`, 422, 'Invalid'),
  Unreachable: (what, f) => new UnavailableError(`${what}: cannot reach the cluster: ${f.message}`),
  Other: (what, f) => new SandboxError(`${what}: HTTP ${f.code}: ${f.message}`, f.code),
} satisfies KubeErrorTable<SandboxError>;

export function apiError(err: unknown, what: string): SandboxError { return mapKubeApiError(err, what, API_ERRORS); }

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

  constructor(private readonly cluster: KubernetesCluster, private readonly namespace: string, private readonly name: string, private readonly claimName: string | undefined, private readonly ownsCluster: boolean) {
    this.snapshots = new GkePodSnapshots(cluster, namespace, name, async () => this.podNameOf(await cluster.get(KubernetesCluster.SANDBOX, namespace, name)));
  }

  /** The Pod behind the Sandbox: its pod-name annotation (a pool member keeps its own name). */
  private podNameOf(sb: Obj | undefined): string { return sb?.metadata.annotations?.[ANNOTATION_POD_NAME] ?? this.name; }

  async refresh(): Promise<SandboxInfo> {
    const sb = await this.cluster.get(KubernetesCluster.SANDBOX, this.namespace, this.name);
    if (!sb) throw new NotFoundError(`Sandbox ${this.namespace}/${this.name} not found`);
    const claim = this.claimName ? await this.cluster.get(KubernetesCluster.CLAIM, this.namespace, this.claimName) : undefined;
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
    await this.cluster.waitFor(KubernetesCluster.SANDBOX, this.namespace, this.name, (o) => ready(o)?.reason === 'SandboxSuspended' && o?.status?.conditions?.some((c: Condition) => c.type === 'Suspended' && c.reason === 'PodTerminated'), 180_000, `Sandbox ${this.name} to be suspended`);
    return snapshot ? { suspended: true, snapshotId: snapshot.id, snapshot } : { suspended: true };
  }

  /** operatingMode Running, then Ready; restoredFromSnapshot when GKE says the new Pod came from the latest snapshot. */
  async resume(opts: { timeoutMs?: number }): Promise<ResumeResult> {
    // (A cluster without Pod snapshots has none to restore: that is not an error here.)
    const latest = (await this.snapshots.list().catch((err) => { if (err instanceof InvalidError) return []; throw err; }))[0];
    await this.cluster.setOperatingMode(this.namespace, this.name, 'Running');
    const sb = await this.cluster.waitFor<Obj>(KubernetesCluster.SANDBOX, this.namespace, this.name, (o) => ready(o)?.status === 'True', opts.timeoutMs ?? 180_000, `Sandbox ${this.name} to be Ready again`);
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
    throw new InvalidError('reset is a local-engine operation; on Kubernetes, kill the sandbox and create another (a warm pool makes that fast)');
  }

  /** Deletes the claim (the Sandbox, Pod and Service go with it by owner references), and the
   *  snapshot triggers this handle made. */
  async kill(): Promise<void> {
    await this.snapshots.deleteTriggers();
    if (this.claimName) await this.cluster.deleteClaim(this.namespace, this.claimName);
    else {
      try { await this.cluster.api.deleteNamespacedCustomObject({ ...KubernetesCluster.SANDBOX, namespace: this.namespace, name: this.name }); } catch (err) {
        if ((err as { code?: number }).code !== 404) throw apiError(err, `delete Sandbox ${this.namespace}/${this.name}`);
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
async function untilRouted(conn: ResolvedConnection, sandbox: string, namespace: string, deadline: number): Promise<void> {
  let runtimeDeadline: number | undefined;
  for (let wait = 50; ; wait = Math.min(1000, wait * 2)) {
    let last: Error;
    try {
      await (await call(conn, '/', `reach sandbox ${sandbox} through ${conn.unreachable ?? conn.url}`, { sandbox: { id: sandbox, namespace }, timeoutMs: Math.max(1000, Math.min(10_000, deadline - Date.now())) })).body?.cancel();
      return;
    } catch (err) {
      if (err instanceof AuthError) throw err;
      const serverError = err instanceof SandboxError && (err.status ?? 0) >= 500;
      if (!(err instanceof UnavailableError || err instanceof NotFoundError || err instanceof TimeoutError || serverError)) throw err;
      last = err;
      if (serverError) {
        runtimeDeadline ??= Date.now() + RUNTIME_ANSWER_MS;
        if (Date.now() + wait > runtimeDeadline) throw new UnavailableError(`sandbox ${sandbox} is Ready, but its runtime did not answer through the router for ${RUNTIME_ANSWER_MS / 1000} s (does its image serve the runtime API on port 8888?): ${last.message}`, err.status);
      }
    }
    if (Date.now() + wait > deadline) throw new TimeoutError(`sandbox ${sandbox} is Ready, but the router did not reach it in time: ${last.message}`);
    await new Promise((r) => setTimeout(r, wait));
  }
}

export async function createOnKubernetes(opts: SandboxCreateOpts, connection: KubernetesConnection): Promise<Sandbox> {
  const cluster = await KubernetesCluster.open(connection);
  const namespace = opts.namespace ?? 'default';
  const timeoutMs = opts.timeoutMs ?? 180_000;
  const deadline = Date.now() + timeoutMs;
  try {
    const conn = await cluster.connection(namespace);
    const { claim, sandbox } = await cluster.claim({
      namespace, name: opts.name, ttlSeconds: opts.ttlSeconds, labels: opts.labels, timeoutMs, warmpool: opts.warmpool,
      warmPool: opts.warmPool, template: opts.warmPool ? undefined : opts.template ?? DEFAULT_TEMPLATE,
    });
    try { await untilRouted(conn, sandbox.metadata.name, namespace, deadline); } catch (err) {
      // As for a claim that never became Ready: not left behind.
      await cluster.deleteClaim(namespace, claim.metadata.name).catch(() => undefined);
      throw err;
    }
    return Sandbox.of(conn, infoOf(sandbox, claim), new KubernetesControl(cluster, namespace, sandbox.metadata.name, claim.metadata.name, true));
  } catch (err) {
    await cluster.close();
    throw err;
  }
}

/** Sandbox.connect on a cluster: `id` names a SandboxClaim (as upstream's get_sandbox) or a Sandbox. */
export async function connectOnKubernetes(id: string, opts: { namespace?: string; waitReadyMs?: number }, connection: KubernetesConnection): Promise<Sandbox> {
  const cluster = await KubernetesCluster.open(connection);
  const namespace = opts.namespace ?? 'default';
  try {
    const claim = await cluster.get(CLAIM, namespace, id);
    const sandboxName: string = claim ? (await cluster.waitFor<Obj>(CLAIM, namespace, id, (c) => !!c?.status?.sandbox?.name, opts.waitReadyMs ?? 60_000, `SandboxClaim ${id} to have a sandbox`)).status.sandbox.name : id;
    const sandbox = await cluster.waitFor<Obj>(SANDBOX, namespace, sandboxName, (o) => {
      if (!o) throw new NotFoundError(`no SandboxClaim or Sandbox named "${id}" in namespace ${namespace}`);
      return (opts.waitReadyMs ?? 60_000) <= 0 || ready(o)?.status === 'True';
    }, Math.max(opts.waitReadyMs ?? 60_000, 1), `Sandbox ${sandboxName} to be Ready`);
    const conn = await cluster.connection(namespace);
    return Sandbox.of(conn, infoOf(sandbox, claim), new KubernetesControl(cluster, namespace, sandboxName, claim?.metadata.name, true));
  } catch (err) {
    await cluster.close();
    throw err;
  }
}
