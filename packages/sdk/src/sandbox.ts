// A sandbox: created from a template (or found again by id), used through its capabilities
// (`commands`, `files`), and killed explicitly or by `await using`.
import { callJson, call, resolveConnection, type ConnectionOpts, type ResolvedConnection } from './connection.ts';
import { Commands, type CommandResult, type RunOpts } from './commands.ts';
import { Files } from './files.ts';
import { NotFoundError } from './errors.ts';

export interface SandboxInfo {
  id: string;
  name: string;
  namespace: string;
  uid: string;
  template?: string;
  phase: 'Pending' | 'Running' | 'Failed' | 'Terminating';
  ready: boolean;
  message: string;
  image: string;
  createdAt: string;
  readyAt?: string;
  startupMs?: number;
}

export interface SandboxCreateOpts extends ConnectionOpts {
  /** Name of the SandboxTemplate. @default "python-runtime-template" */
  template?: string;
  /** Sandbox name (a DNS label). @default generated */
  name?: string;
  /** How long to wait for the sandbox to be ready. @default 120_000 */
  timeoutMs?: number;
}

export class Sandbox {
  readonly commands: Commands;
  readonly files: Files;

  private constructor(private readonly conn: ResolvedConnection, readonly info: SandboxInfo) {
    const target = { id: info.name, namespace: info.namespace };
    this.commands = new Commands(conn, target);
    this.files = new Files(conn, target);
  }

  get id(): string { return this.info.name; }
  get namespace(): string { return this.info.namespace; }

  /** Creates a sandbox from a template and waits until it is ready. */
  static async create(opts: SandboxCreateOpts = {}): Promise<Sandbox> {
    const conn = resolveConnection(opts);
    const template = opts.template ?? 'python-runtime-template';
    const info = await callJson<SandboxInfo>(conn, '/v1/sandboxes', `create a sandbox from template "${template}"`, {
      json: { template, namespace: conn.namespace, name: opts.name }, timeoutMs: opts.timeoutMs ?? 120_000,
    });
    return new Sandbox(conn, info);
  }

  /** Attaches to an existing sandbox by id. */
  static async connect(id: string, opts: ConnectionOpts = {}): Promise<Sandbox> {
    const conn = resolveConnection(opts);
    const info = await callJson<SandboxInfo>(conn, `/v1/sandboxes/${encodeURIComponent(conn.namespace)}/${encodeURIComponent(id)}`, `connect to sandbox "${id}"`);
    return new Sandbox(conn, info);
  }

  static async list(opts: ConnectionOpts = {}): Promise<SandboxInfo[]> {
    const conn = resolveConnection(opts);
    const q = opts.namespace ? `?namespace=${encodeURIComponent(opts.namespace)}` : '';
    return (await callJson<{ items: SandboxInfo[] }>(conn, `/v1/sandboxes${q}`, 'list sandboxes')).items;
  }

  /** Shorthand for `commands.run`. */
  run(cmd: string, opts?: RunOpts): Promise<CommandResult> { return this.commands.run(cmd, opts); }

  /** Fresh state from the engine. */
  async refresh(): Promise<SandboxInfo> {
    return callJson<SandboxInfo>(this.conn, `/v1/sandboxes/${encodeURIComponent(this.namespace)}/${encodeURIComponent(this.id)}`, `get sandbox "${this.id}"`);
  }

  /** Deletes the sandbox and its workspace. Killing one that is already gone is not an error. */
  async kill(): Promise<void> {
    try {
      await call(this.conn, `/v1/sandboxes/${encodeURIComponent(this.namespace)}/${encodeURIComponent(this.id)}`, `delete sandbox "${this.id}"`, { method: 'DELETE' });
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
    }
  }

  async [Symbol.asyncDispose](): Promise<void> { await this.kill(); }
}
