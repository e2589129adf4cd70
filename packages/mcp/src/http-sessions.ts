// The sessions of `asb mcp --http`, and when they end. Each session holds an McpServer, its
// transport and (once a tool needs one) a sandbox, so nothing may keep one forever:
// - a session with no request after its initialize (no follow-up at all, or only the handshake's
//   notifications) ends after unusedSessionTimeoutMs: 2,000 initialize calls with no follow-up
//   took the server from 731 to 948 MB, and held it;
// - a session with no request for idleTimeoutMs (--idle-timeout) ends, and its sandbox is
//   deleted; a request in progress (a long command) is not idleness;
// - at most maxSessions exist at once; past that, a new one is refused with a clear error.
// An ended session is forgotten: its id gets 404 "initialize a new one", as the MCP spec asks.
import type { WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js';
import type { SandboxSession } from './session.ts';

export interface SessionLimits {
  /** ASB_MCP_MAX_SESSIONS: sessions open at once. */
  maxSessions: number;
  /** ASB_MCP_UNUSED_SESSION_TIMEOUT_MS: a session with no request after initialize ends after this. */
  unusedSessionTimeoutMs: number;
  /** --idle-timeout: a session with no request for this long ends (0: never). */
  idleTimeoutMs: number;
}

interface Live {
  transport: WebStandardStreamableHTTPServerTransport;
  session: SandboxSession;
  createdAtMs: number;
  lastSeenAtMs: number;
  /** A request beyond the handshake (initialize and notifications) has come. */
  used: boolean;
  /** POST requests not yet answered in full (a tool call streaming its result). */
  inFlight: number;
}

/** Whether a JSON-RPC message (or batch) is more than the handshake. */
export function isUse(body: unknown): boolean {
  const messages = Array.isArray(body) ? body : [body];
  return messages.some((m) => {
    const method = (m as { method?: unknown } | null)?.method;
    return typeof method === 'string'
      ? method !== 'initialize' && !method.startsWith('notifications/')
      : m !== null && typeof m === 'object';
  });
}

export class HttpSessions {
  private readonly live = new Map<string, Live>();
  /** Initializations under way: they count against the cap before they have an id. */
  private opening = 0;
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    private readonly limits: SessionLimits,
    private readonly log?: (msg: string) => void,
    private readonly now = () => Date.now(),
  ) {
    const shortest = Math.min(
      limits.unusedSessionTimeoutMs,
      limits.idleTimeoutMs > 0 ? limits.idleTimeoutMs : Infinity,
    );
    this.sweeper = setInterval(() => this.sweep(), Math.max(100, Math.min(30_000, Math.floor(shortest / 4))));
    this.sweeper.unref();
  }

  get size(): number {
    return this.live.size;
  }

  get(id: string): Live | undefined {
    return this.live.get(id);
  }

  /** Room for one more session, or the reason there is none. */
  reserve(): string | undefined {
    if (this.live.size + this.opening >= this.limits.maxSessions) {
      return `too many MCP sessions open (${this.limits.maxSessions}, ASB_MCP_MAX_SESSIONS): end finished ones (DELETE /mcp with their mcp-session-id); a session with no request after initialize ends after ${this.limits.unusedSessionTimeoutMs / 1000} s`;
    }
    this.opening++;
    return undefined;
  }

  release(): void {
    this.opening--;
  }

  add(id: string, transport: WebStandardStreamableHTTPServerTransport, session: SandboxSession): void {
    const t = this.now();
    this.live.set(id, { transport, session, createdAtMs: t, lastSeenAtMs: t, used: false, inFlight: 0 });
  }

  /** A request of a session arrives; `done` is called when its answer has been sent in full. */
  seen(live: Live, body: unknown, post: boolean): () => void {
    live.lastSeenAtMs = this.now();
    if (!post) return () => {};
    if (isUse(body)) live.used = true;
    live.inFlight++;
    return () => {
      live.inFlight--;
      live.lastSeenAtMs = this.now();
    };
  }

  /** Forgets a session and ends it: its transport (open streams close) and its sandbox. */
  async end(id: string, why: string): Promise<void> {
    const live = this.live.get(id);
    if (!live) return;
    this.live.delete(id);
    this.log?.(`session ${id} ended: ${why}`);
    await live.transport.close().catch(() => undefined);
    await live.session.close();
  }

  /** Ends the sessions past their bounds (on a timer; callable with an injected clock in tests). */
  sweep(): void {
    const t = this.now();
    for (const [id, live] of this.live) {
      if (live.inFlight > 0) continue;
      if (!live.used && t - live.createdAtMs >= this.limits.unusedSessionTimeoutMs) {
        void this.end(id, `no request after initialize within ${this.limits.unusedSessionTimeoutMs / 1000} s`);
      } else if (this.limits.idleTimeoutMs > 0 && t - live.lastSeenAtMs >= this.limits.idleTimeoutMs) {
        void this.end(id, `no request for ${this.limits.idleTimeoutMs / 1000} s`);
      }
    }
  }

  async closeAll(): Promise<void> {
    clearInterval(this.sweeper);
    await Promise.all([...this.live.keys()].map((id) => this.end(id, 'the server is stopping')));
  }
}
