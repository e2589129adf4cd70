// The local engine's connector: its HTTP API makes, finds and lists sandboxes (a claim, waited
// on by the engine), and carries out their lifecycle calls; the runtime calls go to it too.
import { DEFAULT_TEMPLATE, type SandboxInfo } from '@asb/api';
import { callJson, call, resolveConnection, type ConnectionOpts, type ResolvedConnection } from './connection.ts';
import { NotFoundError } from './errors.ts';
import type {
  Connector,
  ExposedPort,
  SandboxConnectOpts,
  SandboxControl,
  SandboxCreateOpts,
  SandboxHandle,
} from './connector.ts';
import type { ResumeResult, SuspendResult } from './snapshots.ts';

/** The local engine's HTTP API. */
class EngineControl implements SandboxControl {
  private readonly path: string;
  constructor(
    private readonly conn: ResolvedConnection,
    namespace: string,
    private readonly id: string,
  ) {
    this.path = `/v1/sandboxes/${encodeURIComponent(namespace)}/${encodeURIComponent(id)}`;
  }

  refresh(): Promise<SandboxInfo> {
    return callJson<SandboxInfo>(this.conn, this.path, `get sandbox "${this.id}"`);
  }
  suspend(opts: { snapshot?: boolean }): Promise<SuspendResult> {
    return callJson<SuspendResult>(this.conn, `${this.path}/suspend`, `suspend sandbox "${this.id}"`, {
      json: { snapshot: opts.snapshot ?? false },
      timeoutMs: 600_000,
    });
  }
  resume(opts: { discardSnapshot?: boolean; timeoutMs?: number }): Promise<ResumeResult> {
    const timeoutMs = opts.timeoutMs ?? 120_000;
    return callJson<ResumeResult>(this.conn, `${this.path}/resume`, `resume sandbox "${this.id}"`, {
      json: { discardSnapshot: opts.discardSnapshot ?? false, timeoutMs },
      timeoutMs: timeoutMs + 10_000,
    });
  }
  reset(): Promise<SandboxInfo> {
    const what = `reset sandbox "${this.id}"`;
    return callJson<SandboxInfo>(this.conn, `${this.path}/reset`, what, { json: {}, timeoutMs: 180_000 });
  }
  exposePort(port: number): Promise<ExposedPort> {
    const what = `expose port ${port} of sandbox "${this.id}"`;
    return callJson<ExposedPort>(this.conn, `${this.path}/ports/${port}`, what, { method: 'POST' });
  }
  async ports(): Promise<ExposedPort[]> {
    const what = `list the ports of sandbox "${this.id}"`;
    return (await callJson<{ items: ExposedPort[] }>(this.conn, `${this.path}/ports`, what)).items;
  }
  async unexposePort(port: number): Promise<void> {
    await call(this.conn, `${this.path}/ports/${port}`, `close port ${port} of sandbox "${this.id}"`, {
      method: 'DELETE',
    });
  }
  async kill(): Promise<void> {
    try {
      await call(this.conn, this.path, `delete sandbox "${this.id}"`, { method: 'DELETE' });
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
    }
  }
  async close(): Promise<void> {} // plain HTTP requests: nothing held open
}

const handle = (conn: ResolvedConnection, info: SandboxInfo): SandboxHandle => ({
  info,
  conn,
  control: new EngineControl(conn, info.namespace, info.name),
});

export const engineConnector: Connector = {
  /** A claim from a template (a warm pool of it serves it when one has a ready member), or a fork. */
  async create(opts: SandboxCreateOpts): Promise<SandboxHandle> {
    const conn = resolveConnection(opts);
    const template = opts.fromSnapshot || opts.image ? opts.template : (opts.template ?? DEFAULT_TEMPLATE);
    const what = opts.fromSnapshot
      ? `create a sandbox from snapshot "${opts.fromSnapshot}"`
      : opts.image
        ? `create a sandbox of image "${opts.image}"`
        : `create a sandbox from template "${template}"`;
    const timeoutMs = opts.timeoutMs ?? 120_000;
    const info = await callJson<SandboxInfo>(conn, '/v1/sandboxes', what, {
      json: {
        template,
        image: opts.image,
        fromSnapshot: opts.fromSnapshot,
        namespace: conn.namespace,
        name: opts.name,
        ttlSeconds: opts.ttlSeconds,
        warmpool: opts.warmPool,
        timeoutMs,
      },
      timeoutMs: timeoutMs + 10_000,
    });
    return handle(conn, info);
  },

  async connect(id: string, opts: SandboxConnectOpts): Promise<SandboxHandle> {
    const conn = resolveConnection(opts);
    const wait = opts.waitReadyMs ?? 60_000;
    const query = wait > 0 ? `?waitReadyMs=${wait}` : '';
    const path = `/v1/sandboxes/${encodeURIComponent(conn.namespace)}/${encodeURIComponent(id)}${query}`;
    const info = await callJson<SandboxInfo>(conn, path, `connect to sandbox "${id}"`, { timeoutMs: wait + 30_000 });
    return handle(conn, info);
  },

  async list(opts: ConnectionOpts): Promise<SandboxInfo[]> {
    const conn = resolveConnection(opts);
    const q = opts.namespace ? `?namespace=${encodeURIComponent(opts.namespace)}` : '';
    return (await callJson<{ items: SandboxInfo[] }>(conn, `/v1/sandboxes${q}`, 'list sandboxes')).items;
  },
};
