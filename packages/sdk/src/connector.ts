// Where sandboxes live, as the SDK sees it: a Connector makes, finds and lists sandboxes on its
// substrate (the local engine; a Kubernetes cluster; the next ones), and hands each to `Sandbox`
// as a SandboxHandle: its state, the connection its runtime calls go through, and the lifecycle
// calls as that substrate carries them out. `Sandbox` depends on this file alone, never on a
// connector's module: connectors plug in through the registry (connectors.ts).
import type { SandboxInfo } from '@asb/api';
import type { ConnectionOpts, ResolvedConnection } from './connection.ts';
import type { ResumeResult, SnapshotStore, SuspendResult } from './snapshots.ts';

/** Which connector, and its options: `kubernetes({...})` makes one ({ kind: 'kubernetes' }). */
export interface ConnectorConfig {
  readonly kind: string;
}

export interface SandboxCreateOpts extends ConnectionOpts {
  /** Name of the SandboxTemplate.
   *  @default DEFAULT_TEMPLATE, "python-runtime-template" (unless warmPool names a pool) */
  template?: string;
  /**
   * An OCI image to run instead of a template (local engine): pulled from its registry (mirrors
   * and credentials as the engine's machine configures them), run as the sandbox's root with the
   * engine's default limits and no network.
   */
  image?: string;
  /**
   * The warm pool that serves it: "default" (any pool of the template), "none" (always a fresh
   * sandbox), or a SandboxWarmPool's name (on Kubernetes: a v1beta1 claim by warmPoolRef, the
   * template then being the pool's). @default "default"
   */
  warmPool?: string;
  /** Where sandboxes live. @default the local engine */
  connection?: ConnectorConfig;
  /** Kubernetes: labels of the SandboxClaim. */
  labels?: Record<string, string>;
  /** Sandbox name (a DNS label). @default generated */
  name?: string;
  /** How long to wait for the sandbox to be ready. @default 120_000 (Kubernetes: 180_000) */
  timeoutMs?: number;
  /** Delete the sandbox (its claim) after this many seconds, even if nobody kills it. */
  ttlSeconds?: number;
  /** A fork: a new sandbox from this snapshot (processes, memory and files as they were),
   *  instead of from a template. */
  fromSnapshot?: string;
}

export interface SandboxConnectOpts extends ConnectionOpts {
  /** Wait this long for the sandbox to be ready (0: not at all). @default 60_000 */
  waitReadyMs?: number;
  connection?: ConnectorConfig;
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
  /** Exposes a port of the sandbox and says how to reach it (the local engine). */
  exposePort?(port: number): Promise<ExposedPort>;
  /** Takes back a port exposed with exposePort. */
  unexposePort?(port: number): Promise<void>;
  /** Its exposed ports: those its template declares and those exposed since. */
  ports?(): Promise<ExposedPort[]>;
  /** Where its snapshots are, when not at `conn` (the engine's API). */
  readonly snapshots?: SnapshotStore;
}

/** A port of a sandbox reached from outside it. */
export interface ExposedPort {
  port: number;
  /** Through the engine, with its token: upstream's router headers (X-Sandbox-ID, -Port). */
  headers: Record<string, string>;
  /** For a browser: opens this port only, its preview token in it (not for the runtime API). */
  url?: string;
}

/** One sandbox as a connector hands it over. */
export interface SandboxHandle {
  info: SandboxInfo;
  /** Where its runtime calls (commands, files) and, without `control.snapshots`, snapshot calls go. */
  conn: ResolvedConnection;
  control: SandboxControl;
}

export interface Connector {
  create(opts: SandboxCreateOpts): Promise<SandboxHandle>;
  /** An existing sandbox by id (on Kubernetes: a claim's name or a Sandbox's). */
  connect(id: string, opts: SandboxConnectOpts): Promise<SandboxHandle>;
  /** Sandboxes of a namespace (of every namespace without one), when the substrate lists them. */
  list?(opts: ConnectionOpts): Promise<SandboxInfo[]>;
}
