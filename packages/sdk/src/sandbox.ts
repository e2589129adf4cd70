// A sandbox: created from a template (or found again by id), used through its capabilities
// (`commands`, `files`), and killed explicitly or by `await using`. On the local engine by
// default; elsewhere through a connector (connector.ts; `connection: kubernetes(...)` for a
// cluster): the same object, whose lifecycle calls go to the substrate and whose runtime calls
// go to the connection its connector hands over. Sandbox knows connectors by their interface only.
import type { SandboxInfo } from '@asb/api';
import type { ConnectionOpts } from './connection.ts';
import { Commands, type CommandResult, type RunOpts } from './commands.ts';
import { Files } from './files.ts';
import { InvalidError } from './errors.ts';
import { Snapshots, type ResumeResult, type SuspendResult } from './snapshots.ts';
import { connectorFor } from './connectors.ts';
import type {
  ConnectorConfig,
  ExposedPort,
  SandboxConnectOpts,
  SandboxControl,
  SandboxCreateOpts,
  SandboxHandle,
} from './connector.ts';

export type { SandboxInfo, SandboxCreateOpts, SandboxConnectOpts, SandboxControl, ExposedPort };

export class Sandbox {
  readonly commands: Commands;
  readonly files: Files;
  readonly snapshots: Snapshots;
  readonly info: SandboxInfo;
  private readonly control: SandboxControl;

  private constructor(handle: SandboxHandle) {
    this.info = handle.info;
    this.control = handle.control;
    const target = { id: handle.info.name, namespace: handle.info.namespace };
    this.commands = new Commands(handle.conn, target);
    this.files = new Files(handle.conn, target);
    this.snapshots = new Snapshots(handle.control.snapshots ?? handle.conn, target);
  }

  get id(): string {
    return this.info.name;
  }
  get namespace(): string {
    return this.info.namespace;
  }

  /** Creates a sandbox from a template (through a SandboxClaim: a warm pool of the template
   *  serves it when one has a ready member) and waits until it is ready. */
  static async create(opts: SandboxCreateOpts = {}): Promise<Sandbox> {
    return new Sandbox(await (await connectorFor(opts.connection)).create(opts));
  }

  /** Attaches to an existing sandbox by id, waiting up to `waitReadyMs` (default 60 s) for it
   *  to be ready: one applied as YAML, or handed out by a pool, may still be starting. */
  static async connect(id: string, opts: SandboxConnectOpts = {}): Promise<Sandbox> {
    return new Sandbox(await (await connectorFor(opts.connection)).connect(id, opts));
  }

  static async list(opts: ConnectionOpts & { connection?: ConnectorConfig } = {}): Promise<SandboxInfo[]> {
    const connector = await connectorFor(opts.connection);
    if (!connector.list) {
      throw new InvalidError(`listing sandboxes is not supported on a "${opts.connection?.kind}" connection`);
    }
    return connector.list(opts);
  }

  /** Shorthand for `commands.run`. */
  run(cmd: string, opts?: RunOpts): Promise<CommandResult> {
    return this.commands.run(cmd, opts);
  }

  /**
   * Suspends the sandbox. `snapshot: true` checkpoints its processes and memory first (gVisor),
   * so that resume() continues them where they stopped; without, processes end and files stay.
   * On Kubernetes: operatingMode Suspended (the Pod goes, volumes stay).
   */
  suspend(opts: { snapshot?: boolean } = {}): Promise<SuspendResult> {
    return this.control.suspend(opts);
  }

  /** Resumes a suspended sandbox, from its snapshot when the suspend took one. */
  resume(opts: { discardSnapshot?: boolean; timeoutMs?: number } = {}): Promise<ResumeResult> {
    return this.control.resume(opts);
  }

  /** Back to its template's clean state in place: processes end, workspace and /tmp are emptied. */
  reset(): Promise<SandboxInfo> {
    return this.control.reset();
  }

  /**
   * A URL a browser opens to reach a server listening on `port` inside the sandbox (HTTP and
   * WebSockets), exposing the port first if its template does not declare it. The URL carries a
   * preview token for that port of this sandbox only. Local engine only.
   */
  async getUrl(port: number): Promise<string> {
    const exposed = await this.exposePort(port);
    if (!exposed.url)
      throw new InvalidError(`port ${port} has no preview URL (the runtime API is reached with the SDK)`);
    return exposed.url;
  }

  /** Exposes `port` (see getUrl) and says every way to reach it. */
  exposePort(port: number): Promise<ExposedPort> {
    if (!this.control.exposePort) throw new InvalidError('exposing ports is supported on the local engine only');
    return this.control.exposePort(port);
  }

  /** Its exposed ports: those its template declares and those exposed since. */
  ports(): Promise<ExposedPort[]> {
    if (!this.control.ports) throw new InvalidError('exposing ports is supported on the local engine only');
    return this.control.ports();
  }

  /** Takes back a port exposed with exposePort or getUrl. */
  unexposePort(port: number): Promise<void> {
    if (!this.control.unexposePort) throw new InvalidError('exposing ports is supported on the local engine only');
    return this.control.unexposePort(port);
  }

  /** Fresh state from the engine (or the cluster). */
  refresh(): Promise<SandboxInfo> {
    return this.control.refresh();
  }

  /** Deletes the sandbox (on Kubernetes, its claim). Killing one that is already gone is not an error. */
  kill(): Promise<void> {
    return this.control.kill();
  }

  /** Lets go of the sandbox and leaves it running (it can be reattached with connect): closes
   *  what this handle opened, such as a port-forward to a cluster's router. */
  close(): Promise<void> {
    return this.control.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.kill();
  }
}
