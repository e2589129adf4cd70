// What the SDK's Sandbox.create/list/connect/kill mean on the local engine, in terms of the
// objects: create makes a SandboxClaim (so a warm pool serves it when there is one) and waits
// until the claim is Ready; kill deletes the claim (and so its Sandbox), or the Sandbox itself
// when no claim owns it.
import { randomBytes } from 'node:crypto';
import {
  ANNOTATION_SANDBOX_TEMPLATE_REF, EXTENSIONS_GROUP, LABEL_CREATED_BY, findCondition,
  type Sandbox, type SandboxClaim,
} from '@asb/api';
import { controllerOf } from '@asb/lifecycle';
import { EngineError } from './errors.ts';
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

/** Claim Ready reasons that will not resolve by waiting. */
const TERMINAL = new Set(['TemplateNotFound', 'WarmPoolNotFound', 'InvalidMetadata', 'EnvVarsInjectionRejected', 'ReconcilerError', 'PodFailed', 'PodSucceeded', 'ClaimExpired']);

export class SandboxService {
  constructor(private readonly store: SqliteStore, private readonly workloads: LocalWorkloads) {}

  async create(req: CreateRequest): Promise<ReturnType<SandboxService['view']>> {
    const name = req.name ?? `sandbox-${randomBytes(4).toString('hex')}`;
    const claim: SandboxClaim = {
      apiVersion: `${EXTENSIONS_GROUP}/v1beta1`,
      kind: 'SandboxClaim',
      metadata: { name, namespace: req.namespace, labels: { [LABEL_CREATED_BY]: 'asb-engine-api' } },
      spec: {
        sandboxTemplateRef: { name: req.template },
        warmpool: req.warmpool ?? 'default',
        ...(req.ttlSeconds !== undefined
          ? { lifecycle: { shutdownTime: new Date(Date.now() + req.ttlSeconds * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z'), shutdownPolicy: 'Delete' as const } }
          : {}),
      },
    };
    // Subscribe before creating: the claim may be served (warm) before create() returns.
    const ready = this.waitForClaim(req.namespace, name, req.timeoutMs);
    try {
      await this.store.create(claim);
    } catch (err) {
      ready.cancel();
      if ((err as Error).name === 'AlreadyExistsError') throw new EngineError('AlreadyExists', `a sandbox claim named "${name}" already exists in namespace "${req.namespace}"`);
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

  private waitForClaim(namespace: string, name: string, timeoutMs: number): { promise: Promise<string>; cancel(): void } {
    let cancel = () => {};
    const promise = new Promise<string>((resolve, reject) => {
      const check = (claim: SandboxClaim | undefined): boolean => {
        if (!claim) return false;
        const ready = findCondition(claim.status?.conditions, 'Ready');
        if (ready?.status === 'True' && claim.status?.sandbox?.name) { resolve(claim.status.sandbox.name); return true; }
        if (ready && TERMINAL.has(ready.reason)) {
          if (ready.reason === 'TemplateNotFound') {
            const template = (claim.spec.sandboxTemplateRef?.name) ?? '';
            const known = this.store.listSync('SandboxTemplate', { namespace }).map((t) => t.metadata.name);
            reject(new EngineError('NotFound', `sandbox template "${template}" not found in namespace "${namespace}"${known.length ? `; known templates: ${known.join(', ')}` : ''}`));
          } else {
            reject(new EngineError(ready.reason === 'WarmPoolNotFound' ? 'NotFound' : 'Invalid', `sandbox "${name}" cannot start: ${ready.reason}: ${ready.message}`));
          }
          return true;
        }
        return false;
      };
      const unwatch = this.store.watch((ev) => {
        if (ev.object.kind !== 'SandboxClaim' || ev.object.metadata.namespace !== namespace || ev.object.metadata.name !== name) return;
        if (ev.type === 'DELETED') { done(); reject(new EngineError('NotFound', `sandbox claim "${name}" was deleted while it was starting`)); return; }
        if (check(ev.object as SandboxClaim)) done();
      });
      const timer = setTimeout(() => {
        done();
        const claim = this.store.getSync('SandboxClaim', namespace, name);
        const ready = findCondition(claim?.status?.conditions, 'Ready');
        reject(new EngineError('Timeout', `sandbox "${name}" was not ready within ${timeoutMs} ms${ready ? ` (${ready.reason}: ${ready.message})` : ''}`));
      }, timeoutMs);
      const done = () => { unwatch(); clearTimeout(timer); };
      cancel = () => { done(); resolve(''); };
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
      if (ready && TERMINAL.has(ready.reason)) return new EngineError(ready.reason === 'ReconcilerError' ? 'Invalid' : 'Unavailable', `sandbox "${name}" cannot become ready: ${ready.reason}: ${ready.message}`);
      return false;
    };
    const first = settled(this.get(namespace, name));
    if (first === true) return this.get(namespace, name);
    if (first instanceof Error) throw first;
    return new Promise<Sandbox>((resolve, reject) => {
      const done = () => { unwatch(); clearTimeout(timer); };
      const unwatch = this.store.watch((ev) => {
        if (ev.object.kind !== 'Sandbox' || ev.object.metadata.namespace !== namespace || ev.object.metadata.name !== name) return;
        if (ev.type === 'DELETED') { done(); reject(new EngineError('NotFound', `sandbox "${name}" was deleted`)); return; }
        const r = settled(ev.object as Sandbox);
        if (r === true) { done(); resolve(ev.object as Sandbox); } else if (r instanceof Error) { done(); reject(r); }
      });
      const timer = setTimeout(() => { done(); reject(new EngineError('Timeout', `sandbox "${name}" was not ready within ${timeoutMs} ms`)); }, timeoutMs);
    });
  }

  get(namespace: string, name: string): Sandbox {
    const sb = this.store.getSync('Sandbox', namespace, name);
    if (!sb) throw new EngineError('NotFound', `sandbox "${name}" not found in namespace "${namespace}"; list sandboxes with \`asb ls\``);
    return sb;
  }

  list(namespace?: string): Sandbox[] { return this.store.listSync('Sandbox', { namespace }); }

  /** Deletes the claim that owns the sandbox (the sandbox goes with it), else the sandbox. */
  async delete(namespace: string, name: string): Promise<void> {
    const sb = this.get(namespace, name);
    const owner = controllerOf(sb);
    if (owner?.kind === 'SandboxClaim' && await this.store.delete('SandboxClaim', namespace, owner.name, { uid: owner.uid }).catch(() => false)) return;
    await this.store.delete('Sandbox', namespace, name);
  }

  view(sb: Sandbox) {
    const ns = sb.metadata.namespace;
    const name = sb.metadata.name!;
    const w = this.workloads.get(ns, name);
    const ready = findCondition(sb.status?.conditions, 'Ready');
    const owner = controllerOf(sb);
    const suspended = sb.spec.operatingMode === 'Suspended';
    return {
      id: name, name, namespace: ns, uid: sb.metadata.uid!,
      claim: owner?.kind === 'SandboxClaim' ? owner.name : undefined,
      pool: owner?.kind === 'SandboxWarmPool' ? owner.name : undefined,
      template: sb.metadata.annotations?.[ANNOTATION_SANDBOX_TEMPLATE_REF],
      phase: suspended ? 'Suspended' : w?.phase ?? 'Pending',
      ready: ready?.status === 'True',
      message: ready?.message ?? '',
      reason: ready?.reason,
      image: sb.spec.podTemplate.spec.containers[0]?.image,
      containerId: w?.containerId,
      createdAt: sb.metadata.creationTimestamp ?? undefined,
      readyAt: w?.readyAt?.toISOString(),
      startupMs: w?.readyAt ? w.readyAt.getTime() - w.startedAt.getTime() : undefined,
      limits: w ? { ...w.limits, diskBytes: w.diskQuotaBytes } : undefined,
    };
  }
}
