// One sandbox per MCP session: created on the first tool call that needs it (from a template, so
// a warm pool serves it when there is one), kept across calls, deleted when the session ends or
// after it has been idle for a while. A named sandbox (`sandbox` option) is reattached instead,
// survives the session, and is shared by every session that names it. On the local engine, or on
// a Kubernetes cluster (`connection`): a sandbox is then a SandboxClaim, reached through the router.
import { Sandbox, NotFoundError, type ConnectionOpts, type KubernetesConnection } from '@asb/sdk';

export interface SessionOptions {
  conn: ConnectionOpts;
  /** A cluster instead of the local engine. */
  connection?: KubernetesConnection;
  /** Kubernetes: claim from this SandboxWarmPool instead of the template. */
  warmPool?: string;
  /** SandboxTemplate of new sandboxes. @default DEFAULT_TEMPLATE (the SDK's) */
  template?: string;
  /** Delete the session's sandbox after this long without a tool call. @default 15 min; 0: never */
  idleTimeoutMs?: number;
  /** Reattach to (or create) the sandbox of this name, and keep it when the session ends. */
  sandbox?: string;
}

export class SandboxSession {
  private current?: Promise<Sandbox>;
  private idleTimer?: NodeJS.Timeout;
  /** Tool calls in progress: the idle clock runs only when there are none. */
  private inFlight = 0;
  private closed = false;
  /** Why the last sandbox went, told to the next call that makes a new one. */
  private lostReason?: string;

  constructor(private readonly opts: SessionOptions) {}

  get persistent(): boolean {
    return this.opts.sandbox !== undefined;
  }

  /** The session's sandbox, made (or reattached) on first use. */
  async sandbox(): Promise<{ sandbox: Sandbox; note?: string }> {
    if (this.closed) throw new Error('this MCP session has ended');
    this.touch();
    let note: string | undefined;
    if (!this.current) {
      note = this.lostReason;
      this.lostReason = undefined;
      this.current = this.open();
      this.current.catch(() => {
        this.current = undefined;
      });
    }
    return { sandbox: await this.current, note };
  }

  /** The sandbox if one exists already (resource listing does not create one). */
  async existing(): Promise<Sandbox | undefined> {
    return this.current?.catch(() => undefined);
  }

  /** The sandbox was found gone (deleted from outside): the next call makes a new one. */
  forget(reason: string): void {
    this.current = undefined;
    this.lostReason = reason;
  }

  private async open(): Promise<Sandbox> {
    const { conn, connection, template, warmPool, sandbox: name } = this.opts;
    if (name) {
      try {
        return await Sandbox.connect(name, { ...conn, connection, waitReadyMs: 120_000 });
      } catch (err) {
        if (!(err instanceof NotFoundError)) throw err;
      }
      // A claim named after the sandbox: a cold start names the sandbox after its claim (on
      // Kubernetes the claim has the name, and connect finds its sandbox through it).
      if (connection) return Sandbox.create({ ...conn, connection, template, warmPool, name });
      return Sandbox.create({ ...conn, template, name, warmPool: 'none' });
    }
    return Sandbox.create({ ...conn, connection, template, warmPool });
  }

  /** Runs one tool call: a cold start or a command longer than the idle timeout is not idleness
   *  (the clock started with the call, and a slow create lost its sandbox to it). */
  async during<T>(fn: () => Promise<T>): Promise<T> {
    this.inFlight++;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    try {
      return await fn();
    } finally {
      if (--this.inFlight === 0) this.touch();
    }
  }

  private touch(): void {
    const ms = this.opts.idleTimeoutMs ?? 15 * 60_000;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    if (ms <= 0 || this.inFlight > 0) return;
    this.idleTimer = setTimeout(
      () => void this.release(`the previous sandbox was deleted after ${Math.round(ms / 1000)} s without a tool call`),
      ms,
    );
    this.idleTimer.unref();
  }

  /** Deletes the session's sandbox (not a named one), keeping the session usable. */
  private async release(reason: string): Promise<void> {
    const current = this.current;
    this.current = undefined;
    if (!current) return;
    this.lostReason = reason;
    const sb = await current.catch(() => undefined);
    if (sb && !this.persistent) await sb.kill().catch(() => undefined);
  }

  /** The session ended: its sandbox goes (a named one stays). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    await this.release('the session ended');
  }
}
