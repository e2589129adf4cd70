// A sandbox: created from a template (or found again by id), used through its capabilities
// (`commands`, `files`), and killed explicitly or by `await using`. On the local engine by
// default; on a Kubernetes cluster with `connection: kubernetes(...)` (kubernetes.ts): the same
// object, whose lifecycle calls go to the cluster and whose runtime calls go to the router.
import { callJson, call, resolveConnection, type ConnectionOpts, type ResolvedConnection } from './connection.ts';
import { Commands, type CommandResult, type RunOpts } from './commands.ts';
import { Files } from './files.ts';
import { NotFoundError } from './errors.ts';
import { Snapshots, type ResumeResult, type SuspendResult, type SnapshotStore } from './snapshots.ts';
import type { KubernetesConnection } from './kubernetes.ts';
import { DEFAULT_TEMPLATE, type SandboxInfo } from '@asb/api';

export type { SandboxInfo };

export interface SandboxCreateOpts extends ConnectionOpts {
  /** Name of the SandboxTemplate. @default DEFAULT_TEMPLATE, "python-runtime-template" (unless warmPool is given) */
  template?: string;
  /** Kubernetes: claim from this SandboxWarmPool (v1beta1 warmPoolRef) instead of a template. */
  warmPool?: string;
  /** Where sandboxes live. @default the local engine */
  connection?: KubernetesConnection;
  /** Kubernetes: labels of the SandboxClaim. */
  labels?: Record<string, string>;
  /** Sandbox name (a DNS label). @default generated */
  name?: string;
  /** How long to wait for the sandbox to be ready. @default 120_000 */
  timeoutMs?: number;
  /** Delete the sandbox (its claim) after this many seconds, even if nobody kills it. */
  ttlSeconds?: number;
  /** "default": any warm pool of the template; "none": always a fresh sandbox; or a pool's name. @default "default" */
  warmpool?: string;
  /** A fork: a new sandbox from this snapshot (processes, memory and files as they were),
   *  instead of from a template. */
  fromSnapshot?: string;
}

/** The lifecycle calls of one sandbox, as its substrate carries them out. */
export interface SandboxControl {
  refresh(): Promise<SandboxInfo>;
  suspend(opts: { snapshot?: boolean }): Promise<SuspendResult>;
  resume(opts: { discardSnapshot?: boolean; timeoutMs?: number }): Promise<ResumeResult>;
  reset(): Promise<SandboxInfo>;
  kill(): Promise<void>;
  /** Lets go of the sandbox without deleting it (a port-forward, kept-alive connections). */
  close(): Promise<void>;
  /** Where its snapshots are, when not the engine's. */
  readonly snapshots?: SnapshotStore;
}

/** The local engine's HTTP API. */
class EngineControl implements SandboxControl {
  constructor(private readonly conn: ResolvedConnection, private readonly namespace: string, private readonly id: string) {}
  private get path(): string { return `/v1/sandboxes/${encodeURIComponent(this.namespace)}/${encodeURIComponent(this.id)}`; }

  refresh(): Promise<SandboxInfo> { return callJson<SandboxInfo>(this.conn, this.path, `get sandbox "${this.id}"`); }
  suspend(opts: { snapshot?: boolean }): Promise<SuspendResult> {
    return callJson<SuspendResult>(this.conn, `${this.path}/suspend`, `suspend sandbox "${this.id}"`, { json: { snapshot: opts.snapshot ?? false }, timeoutMs: 600_000 });
  }
  resume(opts: { discardSnapshot?: boolean; timeoutMs?: number }): Promise<ResumeResult> {
    const timeoutMs = opts.timeoutMs ?? 120_000;
    return callJson<ResumeResult>(this.conn, `${this.path}/resume`, `resume sandbox "${this.id}"`, { json: { discardSnapshot: opts.discardSnapshot ?? false, timeoutMs }, timeoutMs: timeoutMs + 10_000 });
  }
  reset(): Promise<SandboxInfo> { return callJson<SandboxInfo>(this.conn, `${this.path}/reset`, `reset sandbox "${this.id}"`, { json: {}, timeoutMs: 180_000 }); }
  async kill(): Promise<void> {
    try { await call(this.conn, this.path, `delete sandbox "${this.id}"`, { method: 'DELETE' }); } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
    }
  }
  async close(): Promise<void> {} // plain HTTP requests: nothing held open
}

export class Sandbox {
  readonly commands: Commands;
  readonly files: Files;
  readonly snapshots: Snapshots;
  private readonly control: SandboxControl;

  /** @internal How a substrate (kubernetes.ts) builds one; users call create or connect. */
  static of(conn: ResolvedConnection, info: SandboxInfo, control?: SandboxControl): Sandbox { return new Sandbox(conn, info, control); }

  private constructor(conn: ResolvedConnection, readonly info: SandboxInfo, control?: SandboxControl) {
    this.control = control ?? new EngineControl(conn, info.namespace, info.name);
    const target = { id: info.name, namespace: info.namespace };
    this.commands = new Commands(conn, target);
    this.files = new Files(conn, target);
    this.snapshots = new Snapshots(control?.snapshots ?? conn, target);
  }

  get id(): string { return this.info.name; }
  get namespace(): string { return this.info.namespace; }

  /** Creates a sandbox from a template (through a SandboxClaim: a warm pool of the template
   *  serves it when one has a ready member) and waits until it is ready. */
  static async create(opts: SandboxCreateOpts = {}): Promise<Sandbox> {
    if (opts.connection?.kind === 'kubernetes') return (await import('./kubernetes.ts')).createOnKubernetes(opts, opts.connection);
    const conn = resolveConnection(opts);
    const template = opts.fromSnapshot ? undefined : opts.template ?? DEFAULT_TEMPLATE;
    const what = opts.fromSnapshot ? `create a sandbox from snapshot "${opts.fromSnapshot}"` : `create a sandbox from template "${template}"`;
    const info = await callJson<SandboxInfo>(conn, '/v1/sandboxes', what, {
      json: { template, fromSnapshot: opts.fromSnapshot, namespace: conn.namespace, name: opts.name, ttlSeconds: opts.ttlSeconds, warmpool: opts.warmpool, timeoutMs: opts.timeoutMs ?? 120_000 },
      timeoutMs: (opts.timeoutMs ?? 120_000) + 10_000,
    });
    return new Sandbox(conn, info);
  }

  /** Attaches to an existing sandbox by id, waiting up to `waitReadyMs` (default 60 s) for it
   *  to be ready: one applied as YAML, or handed out by a pool, may still be starting. */
  static async connect(id: string, opts: ConnectionOpts & { waitReadyMs?: number; connection?: KubernetesConnection } = {}): Promise<Sandbox> {
    if (opts.connection?.kind === 'kubernetes') return (await import('./kubernetes.ts')).connectOnKubernetes(id, opts, opts.connection);
    const conn = resolveConnection(opts);
    const wait = opts.waitReadyMs ?? 60_000;
    const info = await callJson<SandboxInfo>(conn, `/v1/sandboxes/${encodeURIComponent(conn.namespace)}/${encodeURIComponent(id)}${wait > 0 ? `?waitReadyMs=${wait}` : ''}`, `connect to sandbox "${id}"`, { timeoutMs: wait + 30_000 });
    return new Sandbox(conn, info);
  }

  static async list(opts: ConnectionOpts = {}): Promise<SandboxInfo[]> {
    const conn = resolveConnection(opts);
    const q = opts.namespace ? `?namespace=${encodeURIComponent(opts.namespace)}` : '';
    return (await callJson<{ items: SandboxInfo[] }>(conn, `/v1/sandboxes${q}`, 'list sandboxes')).items;
  }

  /** Shorthand for `commands.run`. */
  run(cmd: string, opts?: RunOpts): Promise<CommandResult> { return this.commands.run(cmd, opts); }

  /**
   * Suspends the sandbox. `snapshot: true` checkpoints its processes and memory first (gVisor),
   * so that resume() continues them where they stopped; without, processes end and files stay.
   * On Kubernetes: operatingMode Suspended (the Pod goes, volumes stay).
   */
  suspend(opts: { snapshot?: boolean } = {}): Promise<SuspendResult> { return this.control.suspend(opts); }

  /** Resumes a suspended sandbox, from its snapshot when the suspend took one. */
  resume(opts: { discardSnapshot?: boolean; timeoutMs?: number } = {}): Promise<ResumeResult> { return this.control.resume(opts); }

  /** Back to its template's clean state in place: processes end, workspace and /tmp are emptied. */
  reset(): Promise<SandboxInfo> { return this.control.reset(); }

  /** Fresh state from the engine (or the cluster). */
  refresh(): Promise<SandboxInfo> { return this.control.refresh(); }

  /** Deletes the sandbox (on Kubernetes, its claim). Killing one that is already gone is not an error. */
  kill(): Promise<void> { return this.control.kill(); }

  /** Lets go of the sandbox and leaves it running (it can be reattached with connect): closes
   *  what this handle opened, such as a port-forward to a cluster's router. */
  close(): Promise<void> { return this.control.close(); }

  async [Symbol.asyncDispose](): Promise<void> { await this.kill(); }
}
