// What the SDK's Sandbox.create/list/connect/kill mean on the local engine, in terms of the
// objects: create makes a SandboxClaim (so a warm pool serves it when there is one) and waits
// until the claim is Ready; kill deletes the claim (and so its Sandbox), or the Sandbox itself
// when no claim owns it.
import { ANNOTATION_EXPOSED_PORTS, RUNTIME_PORT, exposedPorts, isPort, requestedPorts } from './exposed-ports.ts';
import { randomBytes } from 'node:crypto';
import {
  ANNOTATION_SANDBOX_TEMPLATE_REF,
  LABEL_CREATED_BY,
  WARM_POOL_DEFAULT,
  buildClaim,
  findCondition,
  formatIssues,
  isTerminalReason,
  rfc3339,
  toHub,
  validateObject,
  sandboxInfo,
  type Sandbox,
  type SandboxClaim,
  type SandboxInfo,
} from '@asb/api';
import { controllerOf } from '@asb/lifecycle';
import { EngineError } from './errors.ts';
import type { SnapshotMeta } from './snapshots.ts';
import {
  ANNOTATION_MAX_SNAPSHOTS,
  ANNOTATION_RESTORE_SNAPSHOT,
  DEFAULT_MAX_SNAPSHOTS,
} from './snapshot-annotations.ts';
import type { SqliteStore } from './store/sqlite-store.ts';
import type { LocalWorkloads } from './workloads.ts';

export interface CreateRequest {
  template: string;
  namespace: string;
  /** The claim's name (a cold start names the Sandbox after it). */
  name?: string;
  /** Seconds until the claim expires and its Sandbox is deleted. */
  ttlSeconds?: number;
  /** "default" (any pool of the template), "none" (always cold) or a pool name. */
  warmpool?: string;
  timeoutMs: number;
}

/** Waiting reasons that a fix of the spec ends; a failed pull may also end by itself. */
const invalidReasons = new Set(['ReconcilerError', 'InvalidImageName', 'CreateContainerConfigError']);
const pullReasons = new Set(['ErrImagePull', 'ErrImageNeverPull', 'ImagePullBackOff']);

export class SandboxService {
  constructor(
    private readonly store: SqliteStore,
    private readonly workloads: LocalWorkloads,
  ) {}

  async create(req: CreateRequest): Promise<SandboxInfo> {
    const name = req.name ?? `sandbox-${randomBytes(4).toString('hex')}`;
    // The hub version: the store keeps the template and the pool policy as they are.
    const claim = buildClaim({
      name,
      namespace: req.namespace,
      from: { template: req.template, warmpool: req.warmpool ?? WARM_POOL_DEFAULT },
      ttlSeconds: req.ttlSeconds,
      now: new Date(),
      createdBy: 'asb-engine-api',
      version: 'v1beta1',
    }) as SandboxClaim;
    // Subscribe before creating: the claim may be served (warm) before create() returns.
    const ready = this.waitForClaim(req.namespace, name, req.timeoutMs);
    try {
      await this.store.create(claim);
    } catch (err) {
      ready.cancel();
      if ((err as Error).name === 'AlreadyExistsError')
        throw new EngineError(
          'AlreadyExists',
          `a sandbox claim named "${name}" already exists in namespace "${req.namespace}"`,
        );
      throw err;
    }
    let sandboxName: string;
    try {
      sandboxName = await ready.promise;
    } catch (err) {
      await this.store.delete('SandboxClaim', req.namespace, name).catch(() => undefined);
      throw err;
    }
    return this.view(this.get(req.namespace, sandboxName));
  }

  /**
   * A Sandbox that runs `image` (one container, named main, the engine's default limits), made
   * directly rather than claimed from a template; deleted again when it cannot become ready, so
   * a failed create leaves nothing behind.
   */
  async createFromImage(req: {
    image: string;
    namespace: string;
    name?: string;
    ttlSeconds?: number;
    timeoutMs: number;
  }): Promise<SandboxInfo> {
    const name = req.name ?? `sandbox-${randomBytes(4).toString('hex')}`;
    const sb = {
      apiVersion: 'agents.x-k8s.io/v1beta1',
      kind: 'Sandbox',
      metadata: { name, namespace: req.namespace },
      spec: {
        podTemplate: { spec: { containers: [{ name: 'main', image: req.image }] } },
        ...(req.ttlSeconds && {
          shutdownTime: rfc3339(new Date(Date.now() + req.ttlSeconds * 1000)),
          shutdownPolicy: 'Delete',
        }),
      },
    };
    const checked = validateObject(sb);
    if (!checked.ok) throw new EngineError('Invalid', `invalid sandbox:\n${formatIssues(checked.errors)}`);
    await this.createSandbox(toHub(checked.object) as Sandbox);
    try {
      return this.view(await this.waitReady(req.namespace, name, req.timeoutMs));
    } catch (err) {
      await this.store.delete('Sandbox', req.namespace, name).catch(() => undefined);
      throw err;
    }
  }

  /** Stores a new Sandbox; one of that name already there is the caller's AlreadyExists. */
  private async createSandbox(sb: Sandbox): Promise<void> {
    try {
      await this.store.create(sb);
    } catch (err) {
      if ((err as Error).name === 'AlreadyExistsError')
        throw new EngineError(
          'AlreadyExists',
          `a sandbox named "${sb.metadata.name}" already exists in namespace "${sb.metadata.namespace}"`,
        );
      throw err;
    }
  }

  private waitForClaim(
    namespace: string,
    name: string,
    timeoutMs: number,
  ): { promise: Promise<string>; cancel(): void } {
    let cancel = () => {};
    const promise = new Promise<string>((resolve, reject) => {
      const check = (claim: SandboxClaim | undefined): boolean => {
        if (!claim) return false;
        const ready = findCondition(claim.status?.conditions, 'Ready');
        if (ready?.status === 'True' && claim.status?.sandbox?.name) {
          resolve(claim.status.sandbox.name);
          return true;
        }
        if (ready && isTerminalReason(ready.reason)) {
          if (ready.reason === 'TemplateNotFound') {
            const template = claim.spec.sandboxTemplateRef?.name ?? '';
            const known = this.store.listSync('SandboxTemplate', { namespace }).map((t) => t.metadata.name);
            reject(
              new EngineError(
                'NotFound',
                `sandbox template "${template}" not found in namespace "${namespace}"${known.length ? `; known templates: ${known.join(', ')}` : ''}`,
              ),
            );
          } else {
            reject(
              new EngineError(
                ready.reason === 'WarmPoolNotFound'
                  ? 'NotFound'
                  : pullReasons.has(ready.reason)
                    ? 'Unavailable'
                    : 'Invalid',
                `sandbox "${name}" cannot start: ${ready.reason}: ${ready.message}`,
              ),
            );
          }
          return true;
        }
        return false;
      };
      const unwatch = this.store.watch((ev) => {
        if (
          ev.object.kind !== 'SandboxClaim' ||
          ev.object.metadata.namespace !== namespace ||
          ev.object.metadata.name !== name
        )
          return;
        if (ev.type === 'DELETED') {
          done();
          reject(new EngineError('NotFound', `sandbox claim "${name}" was deleted while it was starting`));
          return;
        }
        if (check(ev.object)) done();
      });
      const timer = setTimeout(() => {
        done();
        const claim = this.store.getSync('SandboxClaim', namespace, name);
        const ready = findCondition(claim?.status?.conditions, 'Ready');
        reject(
          new EngineError(
            'Timeout',
            `sandbox "${name}" was not ready within ${timeoutMs} ms${ready ? ` (${ready.reason}: ${ready.message})` : ''}`,
          ),
        );
      }, timeoutMs);
      const done = () => {
        unwatch();
        clearTimeout(timer);
      };
      cancel = () => {
        done();
        resolve('');
      };
    });
    return { promise, cancel };
  }

  /**
   * Resolves with the Sandbox once it is Ready (at once if it is, or if it is suspended: there
   * is nothing to wait for); rejects when its Ready reason says it will not become ready, or at
   * the timeout.
   */
  async waitReady(namespace: string, name: string, timeoutMs: number): Promise<Sandbox> {
    const settled = (sb: Sandbox): boolean | Error => {
      const ready = findCondition(sb.status?.conditions, 'Ready');
      if (ready?.status === 'True' || sb.spec.operatingMode === 'Suspended') return true;
      if (ready && isTerminalReason(ready.reason))
        return new EngineError(
          invalidReasons.has(ready.reason) ? 'Invalid' : 'Unavailable',
          `sandbox "${name}" cannot become ready: ${ready.reason}: ${ready.message}`,
        );
      return false;
    };
    const first = settled(this.get(namespace, name));
    if (first === true) return this.get(namespace, name);
    if (first instanceof Error) throw first;
    return new Promise<Sandbox>((resolve, reject) => {
      const done = () => {
        unwatch();
        clearTimeout(timer);
      };
      const unwatch = this.store.watch((ev) => {
        if (
          ev.object.kind !== 'Sandbox' ||
          ev.object.metadata.namespace !== namespace ||
          ev.object.metadata.name !== name
        )
          return;
        if (ev.type === 'DELETED') {
          done();
          reject(new EngineError('NotFound', `sandbox "${name}" was deleted`));
          return;
        }
        const r = settled(ev.object);
        if (r === true) {
          done();
          resolve(ev.object);
        } else if (r instanceof Error) {
          done();
          reject(r);
        }
      });
      const timer = setTimeout(() => {
        done();
        reject(new EngineError('Timeout', `sandbox "${name}" was not ready within ${timeoutMs} ms`));
      }, timeoutMs);
    });
  }

  // ---- suspend, resume, snapshots, forks, reset ----

  /**
   * Suspends a sandbox. With `snapshot`, its processes and memory are checkpointed first, and the
   * next resume restores them; without, suspend means what `replicas: 0` means (processes end,
   * files stay). Either way the Sandbox's spec says Suspended.
   */
  async suspend(namespace: string, name: string, opts: { snapshot: boolean }): Promise<{ snapshot?: SnapshotMeta }> {
    const sb = this.get(namespace, name);
    if (sb.spec.operatingMode === 'Suspended')
      throw new EngineError(
        'Conflict',
        `sandbox "${name}" is already suspended; resume it with \`asb resume ${name}\``,
      );
    let snapshot: SnapshotMeta | undefined;
    if (opts.snapshot)
      snapshot = await this.workloads.snapshot(sb, {
        stop: true,
        reason: 'suspend',
        maxPerSandbox: this.maxSnapshots(sb),
      });
    await this.mutate(namespace, name, (s) => {
      s.spec.operatingMode = 'Suspended';
      const ann = { ...s.metadata.annotations };
      if (snapshot) ann[ANNOTATION_RESTORE_SNAPSHOT] = snapshot.id;
      else delete ann[ANNOTATION_RESTORE_SNAPSHOT];
      s.metadata.annotations = ann;
    });
    await this.waitSuspended(namespace, name, 60_000);
    return { snapshot };
  }

  /**
   * Resumes a suspended sandbox: from the snapshot its suspend took, when there is one (checked
   * before anything changes: a deleted or corrupt snapshot is an error and the sandbox stays
   * suspended, unless `discardSnapshot` says to start from its files alone).
   */
  async resume(
    namespace: string,
    name: string,
    opts: { discardSnapshot?: boolean; timeoutMs: number },
  ): Promise<{ restoredFromSnapshot: boolean; snapshotId?: string; sandbox: Sandbox }> {
    const sb = this.get(namespace, name);
    if (sb.spec.operatingMode !== 'Suspended')
      throw new EngineError(
        'Conflict',
        `sandbox "${name}" is not suspended: there is nothing to resume (suspend it with \`asb suspend ${name} --snapshot\`)`,
      );
    const snapshotId = sb.metadata.annotations?.[ANNOTATION_RESTORE_SNAPSHOT];
    if (snapshotId && !opts.discardSnapshot) {
      try {
        this.workloads.snapshots.get(snapshotId);
      } catch (err) {
        const e = err as EngineError;
        throw new EngineError(
          'Conflict',
          `cannot resume sandbox "${name}" from its snapshot: ${e.message}. It stays suspended; resume with discardSnapshot (\`asb resume ${name} --discard-snapshot\`) to start it from its files alone`,
        );
      }
    }
    await this.mutate(namespace, name, (s) => {
      s.spec.operatingMode = 'Running';
      if (opts.discardSnapshot && s.metadata.annotations) {
        const ann = { ...s.metadata.annotations };
        delete ann[ANNOTATION_RESTORE_SNAPSHOT];
        s.metadata.annotations = ann;
      }
    });
    const ready = await this.waitReady(namespace, name, opts.timeoutMs);
    const restoredFrom = this.workloads.get(namespace, name)?.restoredFrom;
    await this.consumeRestoreAnnotation(namespace, name);
    return { restoredFromSnapshot: restoredFrom !== undefined, snapshotId: restoredFrom, sandbox: ready };
  }

  /** A snapshot of a running sandbox, which keeps running (it pauses for the checkpoint). */
  async snapshot(namespace: string, name: string): Promise<SnapshotMeta> {
    const sb = this.get(namespace, name);
    if (sb.spec.operatingMode === 'Suspended')
      throw new EngineError('Conflict', `sandbox "${name}" is suspended: resume it before taking a snapshot`);
    return this.workloads.snapshot(sb, { stop: false, reason: 'manual', maxPerSandbox: this.maxSnapshots(sb) });
  }

  listSnapshots(filter: { namespace?: string; sandbox?: string }): SnapshotMeta[] {
    return this.workloads.snapshots.list(filter);
  }
  getSnapshot(id: string): SnapshotMeta {
    return this.workloads.snapshots.get(id);
  }

  deleteSnapshot(id: string): void {
    const users = this.store
      .listSync('Sandbox')
      .filter(
        (s) => s.spec.operatingMode === 'Suspended' && s.metadata.annotations?.[ANNOTATION_RESTORE_SNAPSHOT] === id,
      );
    if (users.length)
      throw new EngineError(
        'Conflict',
        `snapshot "${id}" holds the memory of suspended sandbox "${users[0]!.metadata.name}"; resume or delete that sandbox first`,
      );
    this.workloads.snapshots.delete(id);
  }

  /** A new sandbox from a snapshot: processes, memory and files as they were, beside the original. */
  async fork(req: {
    snapshotId: string;
    namespace: string;
    name?: string;
    ttlSeconds?: number;
    timeoutMs: number;
  }): Promise<Sandbox> {
    const meta = this.workloads.snapshots.get(req.snapshotId);
    if (meta.namespace !== req.namespace)
      throw new EngineError('Invalid', `snapshot "${meta.id}" is of namespace "${meta.namespace}": fork it there`);
    const spec = meta.sandboxSpec as Pick<Sandbox['spec'], 'podTemplate' | 'volumeClaimTemplates'>;
    const name = req.name ?? `${meta.sandbox.slice(0, 40)}-fork-${randomBytes(3).toString('hex')}`;
    const sandbox: Sandbox = {
      apiVersion: 'agents.x-k8s.io/v1beta1',
      kind: 'Sandbox',
      metadata: {
        name,
        namespace: req.namespace,
        labels: { [LABEL_CREATED_BY]: 'asb-engine-api' },
        annotations: {
          [ANNOTATION_RESTORE_SNAPSHOT]: meta.id,
          ...(meta.template ? { [ANNOTATION_SANDBOX_TEMPLATE_REF]: meta.template } : {}),
        },
      },
      spec: {
        podTemplate: spec.podTemplate,
        ...(spec.volumeClaimTemplates ? { volumeClaimTemplates: spec.volumeClaimTemplates } : {}),
        operatingMode: 'Running',
        shutdownPolicy: req.ttlSeconds !== undefined ? 'Delete' : 'Retain',
        ...(req.ttlSeconds !== undefined
          ? { shutdownTime: rfc3339(new Date(Date.now() + req.ttlSeconds * 1000)) }
          : {}),
      },
    };
    await this.createSandbox(sandbox);
    try {
      const ready = await this.waitReady(req.namespace, name, req.timeoutMs);
      await this.consumeRestoreAnnotation(req.namespace, name);
      return ready;
    } catch (err) {
      await this.store.delete('Sandbox', req.namespace, name).catch(() => undefined);
      throw err;
    }
  }

  /** Back to the template's clean state, in place (same name, same identity). */
  async reset(namespace: string, name: string): Promise<Sandbox> {
    const sb = this.get(namespace, name);
    if (sb.spec.operatingMode === 'Suspended')
      throw new EngineError('Conflict', `sandbox "${name}" is suspended: resume it before resetting it`);
    await this.consumeRestoreAnnotation(namespace, name);
    await this.workloads.reset(this.get(namespace, name));
    return this.waitReady(namespace, name, 60_000);
  }

  /** After a restore the annotation has done its job: a later stop and start boots from files. */
  async consumeRestoreAnnotation(namespace: string, name: string): Promise<void> {
    await this.mutate(namespace, name, (s) => {
      if (!s.metadata.annotations?.[ANNOTATION_RESTORE_SNAPSHOT]) return false;
      const ann = { ...s.metadata.annotations };
      delete ann[ANNOTATION_RESTORE_SNAPSHOT];
      s.metadata.annotations = ann;
    });
  }

  private maxSnapshots(sb: Sandbox): number {
    const template = sb.metadata.annotations?.[ANNOTATION_SANDBOX_TEMPLATE_REF];
    const value = template
      ? this.store.getSync('SandboxTemplate', sb.metadata.namespace, template)?.metadata.annotations?.[
          ANNOTATION_MAX_SNAPSHOTS
        ]
      : undefined;
    const n = Number(value);
    return value !== undefined && Number.isInteger(n) && n >= 1 ? n : DEFAULT_MAX_SNAPSHOTS;
  }

  /** Exposes `port` of the sandbox to the engine's clients (X-Sandbox-Port, a preview URL):
   *  recorded on the Sandbox, so that it holds across restarts of the engine. */
  async exposePort(namespace: string, name: string, port: number): Promise<Sandbox> {
    if (!isPort(port) || port === RUNTIME_PORT)
      throw new EngineError(
        'Invalid',
        `port ${port} cannot be exposed: a TCP port (1-65535) other than the runtime API's ${RUNTIME_PORT}`,
      );
    await this.mutate(namespace, name, (s) => {
      if (exposedPorts(s).includes(port)) return false;
      const ports = [...requestedPorts(s), port].sort((a, b) => a - b);
      s.metadata.annotations = { ...s.metadata.annotations, [ANNOTATION_EXPOSED_PORTS]: ports.join(',') };
    });
    return this.get(namespace, name);
  }

  /** Takes back a port exposed through the API (one its template declares stays). */
  async unexposePort(namespace: string, name: string, port: number): Promise<void> {
    const sb = this.get(namespace, name);
    if (!requestedPorts(sb).includes(port)) {
      if (exposedPorts(sb).includes(port))
        throw new EngineError(
          'Conflict',
          `port ${port} of sandbox "${name}" is declared by its template: it stays exposed`,
        );
      throw new EngineError('NotFound', `port ${port} of sandbox "${name}" is not exposed`);
    }
    await this.mutate(namespace, name, (s) => {
      const ports = requestedPorts(s).filter((p) => p !== port);
      const ann = { ...s.metadata.annotations };
      if (ports.length) ann[ANNOTATION_EXPOSED_PORTS] = ports.join(',');
      else delete ann[ANNOTATION_EXPOSED_PORTS];
      s.metadata.annotations = ann;
    });
  }

  /** Read, change, write, retried on a conflict; `fn` returns false for "no change". */
  private async mutate(namespace: string, name: string, fn: (sb: Sandbox) => boolean | void): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const sb = structuredClone(this.get(namespace, name));
      if (fn(sb) === false) return;
      try {
        await this.store.update(sb);
        return;
      } catch (err) {
        if ((err as Error).name !== 'ConflictError' || attempt >= 10) throw err;
      }
    }
  }

  private async waitSuspended(namespace: string, name: string, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const sb = this.store.getSync('Sandbox', namespace, name);
      if (
        !sb ||
        findCondition(sb.status?.conditions, 'Suspended')?.status === 'True' ||
        !this.workloads.get(namespace, name)
      )
        return;
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  get(namespace: string, name: string): Sandbox {
    const sb = this.store.getSync('Sandbox', namespace, name);
    if (!sb)
      throw new EngineError(
        'NotFound',
        `sandbox "${name}" not found in namespace "${namespace}"; list sandboxes with \`asb ls\``,
      );
    return sb;
  }

  list(namespace?: string): Sandbox[] {
    return this.store.listSync('Sandbox', { namespace });
  }

  /** Deletes the claim that owns the sandbox (the sandbox goes with it), else the sandbox. */
  async delete(namespace: string, name: string): Promise<void> {
    const sb = this.get(namespace, name);
    const owner = controllerOf(sb);
    if (
      owner?.kind === 'SandboxClaim' &&
      (await this.store.delete('SandboxClaim', namespace, owner.name, { uid: owner.uid }).catch(() => false))
    )
      return;
    await this.store.delete('Sandbox', namespace, name);
  }

  view(sb: Sandbox): SandboxInfo {
    const w = this.workloads.get(sb.metadata.namespace, sb.metadata.name!);
    const workload = w && { ...w, limits: { ...w.limits, diskBytes: w.diskQuotaBytes } };
    const resumeSnapshot = sb.metadata.annotations?.[ANNOTATION_RESTORE_SNAPSHOT];
    return sandboxInfo(sb, { substrate: 'engine', workload, resumeSnapshot });
  }
}
