// One Kubernetes cluster as the SDK's connector uses it: its API clients (custom objects, pods),
// a watch until an object is as wanted, the claim a sandbox is made with, and the sandbox router,
// found by a direct URL, a Gateway's address, or a `kubectl port-forward` to its Service
// (developer mode, as upstream's Python client does).
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { mapKubeApiError, type KubeErrorTable, type PooledKubeConfig } from '@asb/kube';
import type * as K8s from '@kubernetes/client-node';
import {
  ANNOTATION_CLIENT_FIRST_REQUESTED_AT,
  buildClaim,
  findCondition,
  isTerminalReason,
  rfc3339Millis,
  type TerminalReason,
} from '@asb/api';
import type { ResolvedConnection } from './connection.ts';
import {
  AuthError,
  ConflictError,
  InvalidError,
  NotFoundError,
  SandboxError,
  TimeoutError,
  UnavailableError,
} from './errors.ts';
import type { KubernetesConnection } from './kubernetes-connection.ts';

const SANDBOX = { group: 'agents.x-k8s.io', version: 'v1beta1', plural: 'sandboxes' };
const CLAIM = { group: 'extensions.agents.x-k8s.io', version: 'v1beta1', plural: 'sandboxclaims' };
const CLAIM_V1ALPHA1 = { ...CLAIM, version: 'v1alpha1' };

export type Condition = {
  type: string;
  status: string;
  reason?: string;
  message?: string;
  lastTransitionTime?: string;
};
/** An object as the API server answers, typed only as far as this SDK reads it. */
export type Obj = {
  metadata: {
    name: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    creationTimestamp?: string;
    annotations?: Record<string, string>;
    labels?: Record<string, string>;
    ownerReferences?: Array<{ kind: string; name: string; controller?: boolean }>;
  };
  spec?: Record<string, unknown>;
  status?: {
    conditions?: Condition[];
    /** A SandboxClaim's Sandbox. */
    sandbox?: { name?: string };
    /** A Gateway's addresses. */
    addresses?: Array<{ value?: string }>;
    /** A PodSnapshotManualTrigger's snapshot. */
    snapshotCreated?: { name?: string };
  };
};
export const ready = (o: Obj | undefined): Condition | undefined => findCondition(o?.status?.conditions, 'Ready');

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
  ErrImagePull: (m) => new UnavailableError(m, 503, 'ErrImagePull'),
  ImagePullBackOff: (m) => new UnavailableError(m, 503, 'ImagePullBackOff'),
  ErrImageNeverPull: (m) => new UnavailableError(m, 503, 'ErrImageNeverPull'),
  InvalidImageName: (m) => new InvalidError(m, 422, 'InvalidImageName'),
  CreateContainerConfigError: (m) => new InvalidError(m, 422, 'CreateContainerConfigError'),
} satisfies Record<TerminalReason, (msg: string) => Error>;

/** One cluster: its API clients, and the router connections (one per namespace) its sandboxes share. */
export class KubernetesCluster {
  /** The router by the namespace of the sandboxes it serves (a port-forward is per namespace). */
  private readonly routerConns = new Map<string, Promise<{ url: string; via?: string; stop?: () => void }>>();
  private core?: K8s.CoreV1Api;
  private constructor(
    readonly k8s: typeof K8s,
    readonly kc: PooledKubeConfig,
    readonly api: K8s.CustomObjectsApi,
    private readonly opts: KubernetesConnection,
  ) {}

  static async open(opts: KubernetesConnection): Promise<KubernetesCluster> {
    const k8s = await import('@kubernetes/client-node');
    const { loadKubeConfig } = await import('@asb/kube');
    const kc = loadKubeConfig(opts);
    if (!kc.getCurrentCluster())
      throw new UnavailableError('no Kubernetes cluster configured: pass { kubeconfig } or set KUBECONFIG');
    return new KubernetesCluster(k8s, kc, kc.makeApiClient(k8s.CustomObjectsApi), opts);
  }

  /** The router as an SDK connection (the runtime calls go there with X-Sandbox-* headers). */
  async connection(namespace: string): Promise<ResolvedConnection> {
    let conn = this.routerConns.get(namespace);
    if (!conn) {
      conn = this.findRouter(namespace);
      this.routerConns.set(namespace, conn);
    }
    const { url, via } = await conn;
    return {
      url,
      token: this.opts.routerToken ?? process.env.ASB_ROUTER_TOKEN ?? '',
      namespace,
      requestTimeoutMs: 60_000,
      unreachable: `the sandbox router at ${url}${via ? ` (${via})` : ''}`,
    };
  }

  private async findRouter(namespace: string): Promise<{ url: string; via?: string; stop?: () => void }> {
    const r = this.opts.router ?? { portForward: {} };
    if ('url' in r) return { url: r.url.replace(/\/$/, '') };
    if ('gateway' in r) {
      const ns = r.gateway.namespace ?? 'default';
      const gw = await this.waitFor<Obj>(
        { group: 'gateway.networking.k8s.io', version: 'v1', plural: 'gateways' },
        ns,
        r.gateway.name,
        (o) => !!o?.status?.addresses?.[0]?.value,
        180_000,
        `the Gateway ${ns}/${r.gateway.name} to have an address`,
      );
      return {
        url: `http://${gw.status?.addresses?.[0]?.value ?? ''}`,
        via: `the address of Gateway ${ns}/${r.gateway.name}`,
      };
    }
    const service = r.portForward.service ?? 'sandbox-router-svc';
    // Upstream's clients (Python's tunnel, Go's) forward to the router in the sandbox's own
    // namespace, where seed 000 deploys it; a router installed beside the controller serves
    // namespaces that have none.
    const ns =
      r.portForward.namespace ?? ((await this.hasService(namespace, service)) ? namespace : 'agent-sandbox-system');
    return this.portForward(service, ns, r.portForward.port ?? 8080);
  }

  /** Whether `namespace` has the Service (not found, or not ours to read: no). */
  private async hasService(namespace: string, name: string): Promise<boolean> {
    this.core ??= this.kc.makeApiClient(this.k8s.CoreV1Api);
    try {
      await this.core.readNamespacedService({ namespace, name });
      return true;
    } catch {
      return false;
    }
  }

  /** `kubectl port-forward` to the router Service on a free local port; stopped by close(). */
  private async portForward(
    service: string,
    namespace: string,
    port: number,
  ): Promise<{ url: string; via: string; stop: () => void }> {
    const local = await new Promise<number>((res, rej) => {
      const s = createServer();
      s.listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => res(p));
      });
      s.on('error', rej);
    });
    const args = [
      'port-forward',
      `svc/${service}`,
      `${local}:${port}`,
      '-n',
      namespace,
      ...(this.opts.kubeconfig ? ['--kubeconfig', this.opts.kubeconfig] : []),
      ...(this.opts.context ? ['--context', this.opts.context] : []),
    ];
    const child: ChildProcess = spawn('kubectl', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d) => {
      stderr += d;
    });
    await new Promise<void>((res, rej) => {
      const t = setTimeout(() => {
        child.kill();
        rej(
          new TimeoutError(
            `kubectl port-forward to svc/${service} in ${namespace} was not ready in 30 s: ${stderr.trim()}`,
          ),
        );
      }, 30_000);
      child.stdout!.on('data', (d: Buffer) => {
        if (d.toString().includes('Forwarding from')) {
          clearTimeout(t);
          res();
        }
      });
      child.once('error', (e) => {
        clearTimeout(t);
        rej(new UnavailableError(`cannot run kubectl port-forward: ${e.message}`));
      });
      child.once('exit', (code) => {
        clearTimeout(t);
        rej(
          new UnavailableError(
            `kubectl port-forward to svc/${service} in ${namespace} exited (${code}): ${stderr.trim()}`,
          ),
        );
      });
    });
    child.unref();
    return {
      url: `http://127.0.0.1:${local}`,
      via: `kubectl port-forward to svc/${service}:${port} in ${namespace}: is a router pod behind it running?`,
      stop: () => child.kill(),
    };
  }

  /** Stops a port-forward this cluster started; closes its API connections. */
  async close(): Promise<void> {
    for (const conn of this.routerConns.values()) (await conn.catch(() => undefined))?.stop?.();
    this.kc.closeConnections();
  }

  async get(coords: typeof SANDBOX, namespace: string, name: string): Promise<Obj | undefined> {
    try {
      return (await this.api.getNamespacedCustomObject({ ...coords, namespace, name })) as Obj;
    } catch (err) {
      if ((err as { code?: number }).code === 404) return undefined;
      throw apiError(err, `get ${coords.plural} ${namespace}/${name}`);
    }
  }

  /**
   * Watches one object (a field-selector watch from a list's resourceVersion, so no change is
   * missed between the two) until `done` holds; `done` may throw to stop with an error.
   */
  async waitFor<T extends Obj>(
    coords: typeof SANDBOX,
    namespace: string,
    name: string,
    done: (o: T | undefined) => boolean,
    timeoutMs: number,
    what: string,
  ): Promise<T> {
    const path = `/apis/${coords.group}/${coords.version}/namespaces/${namespace}/${coords.plural}`;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const list = (await this.api
        .listNamespacedCustomObject({ ...coords, namespace, fieldSelector: `metadata.name=${name}` })
        .catch((err) => {
          throw apiError(err, `list ${coords.plural}`);
        })) as { items: T[]; metadata: { resourceVersion: string } };
      const first = list.items[0];
      if (done(first)) return first!;
      const left = deadline - Date.now();
      if (left <= 0) throw new TimeoutError(`timed out after ${timeoutMs} ms waiting for ${what}`);
      // Resolves with the object that satisfied `done`, or undefined when the watch ended early
      // (the server closes watches from time to time): then list again and go on.
      const found = await new Promise<T | undefined>((resolve, reject) => {
        let ctl: AbortController | undefined;
        let settled = false;
        const finish = (fn: () => void) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          ctl?.abort();
          fn();
        };
        const timer = setTimeout(
          () => finish(() => reject(new TimeoutError(`timed out after ${timeoutMs} ms waiting for ${what}`))),
          left,
        );
        new this.k8s.Watch(this.kc)
          .watch(
            path,
            {
              fieldSelector: `metadata.name=${name}`,
              resourceVersion: list.metadata.resourceVersion,
              allowWatchBookmarks: true,
            },
            (type: string, obj: T) => {
              if (type === 'BOOKMARK') return;
              try {
                if (done(type === 'DELETED' ? undefined : obj)) finish(() => resolve(obj));
              } catch (err) {
                finish(() => reject(err instanceof Error ? err : new Error(String(err))));
              }
            },
            () => finish(() => resolve(undefined)),
          )
          .then(
            (c) => {
              ctl = c;
              if (settled) c.abort();
            },
            (err) => finish(() => reject(apiError(err, `watch ${coords.plural}`))),
          );
      });
      if (found) return found;
    }
  }

  /**
   * Makes a claim and waits, by watching it, until its sandbox is Ready. On a warm pool: v1beta1
   * `warmPoolRef` (as upstream's 0.5 client); on a template: v1alpha1 `sandboxTemplateRef` (v1beta1
   * claims name a pool), with `warmpool` "default" (any pool of the template), "none" or a pool.
   */
  async claim(o: {
    namespace: string;
    from: { template: string; warmpool?: string } | { warmPool: string };
    name?: string;
    ttlSeconds?: number;
    timeoutMs: number;
    labels?: Record<string, string>;
  }): Promise<{ claim: Obj; sandbox: Obj }> {
    const name = o.name ?? `sandbox-claim-${randomBytes(4).toString('hex')}`;
    const coords = 'warmPool' in o.from ? CLAIM : CLAIM_V1ALPHA1;
    const now = new Date();
    const body = buildClaim({
      name,
      from: o.from,
      ttlSeconds: o.ttlSeconds,
      now,
      createdBy: 'asb-sdk',
      labels: o.labels,
      annotations: { [ANNOTATION_CLIENT_FIRST_REQUESTED_AT]: rfc3339Millis(now) },
      version: 'v1alpha1',
    });
    try {
      await this.api.createNamespacedCustomObject({ ...coords, namespace: o.namespace, body });
    } catch (err) {
      throw apiError(err, `create SandboxClaim ${o.namespace}/${name}`);
    }
    try {
      const claim = await this.waitFor<Obj>(
        CLAIM,
        o.namespace,
        name,
        (c) => {
          if (!c) throw new NotFoundError(`SandboxClaim ${o.namespace}/${name} was deleted while waiting for it`);
          const r = ready(c);
          if (r?.status === 'True' && c.status?.sandbox?.name) return true;
          if (isTerminalReason(r?.reason))
            throw TERMINAL[r.reason](`SandboxClaim ${o.namespace}/${name}: ${r.reason}: ${r.message}`);
          return false;
        },
        o.timeoutMs,
        `SandboxClaim ${o.namespace}/${name} to be Ready`,
      );
      const sandboxName = claim.status?.sandbox?.name ?? '';
      const sandbox = await this.get(SANDBOX, o.namespace, sandboxName);
      if (!sandbox) throw new NotFoundError(`the Sandbox ${sandboxName} of claim ${name} is gone`);
      return { claim, sandbox };
    } catch (err) {
      // As upstream's client: a claim that did not become ready is not left behind.
      await this.deleteClaim(o.namespace, name).catch(() => undefined);
      throw err;
    }
  }

  async deleteClaim(namespace: string, name: string): Promise<void> {
    try {
      await this.api.deleteNamespacedCustomObject({ ...CLAIM, namespace, name });
    } catch (err) {
      if ((err as { code?: number }).code !== 404) throw apiError(err, `delete SandboxClaim ${namespace}/${name}`);
    }
  }

  /** A Pod (for its conditions), or undefined when it is gone. */
  async pod(namespace: string, name: string): Promise<K8s.V1Pod | undefined> {
    this.core ??= this.kc.makeApiClient(this.k8s.CoreV1Api);
    try {
      return await this.core.readNamespacedPod({ namespace, name });
    } catch (err) {
      if ((err as { code?: number }).code === 404) return undefined;
      throw apiError(err, `get Pod ${namespace}/${name}`);
    }
  }

  async setOperatingMode(namespace: string, name: string, mode: 'Running' | 'Suspended'): Promise<void> {
    try {
      await this.api.patchNamespacedCustomObject(
        { ...SANDBOX, namespace, name, body: { spec: { operatingMode: mode } } },
        this.k8s.setHeaderOptions('Content-Type', this.k8s.PatchStrategy.MergePatch),
      );
    } catch (err) {
      throw apiError(err, `set operatingMode ${mode} on Sandbox ${namespace}/${name}`);
    }
  }

  static readonly SANDBOX = SANDBOX;
  static readonly CLAIM = CLAIM;
  static readonly apiError = apiError;
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

export function apiError(err: unknown, what: string): SandboxError {
  return mapKubeApiError(err, what, API_ERRORS);
}
