// One place that reads the engine's configuration: flags > environment > defaults.
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { limitFromEnv } from '@asb/http-guard';
import { ENGINE_CPU_SHARES_DEFAULT } from './engine-cgroup.ts';
import type { AgentKind } from './drivers/runtime-spec.ts';
import { DEFAULT_POOL } from './network/addresses.ts';

export interface EngineConfig {
  /** State directory: token, sandboxes' workspaces and bundles, runsc state. */
  home: string;
  host: string;
  port: number;
  /** `gvisor` (default when runsc is present) or `bubblewrap` (weaker: shares the host kernel). */
  driver: 'gvisor' | 'bubblewrap' | 'auto';
  runscPath: string;
  /** The bundled runtime agent, mounted read-only into every sandbox. */
  agentPath: string;
  /** Which agent runs in sandboxes (ASB_AGENT): `go` (asb-agent beside agentPath: a static
   *  binary that needs nothing from the sandbox, packages/runtime/agent-go; the default when it
   *  was built) or `node` (agentPath, on the host's /usr/bin/node). */
  agent: AgentKind;
  /** Defaults for sandboxes whose template sets no limit. */
  defaultMemoryBytes: number;
  defaultCpuMillis: number;
  defaultPidsLimit: number;
  /** Workspace quota of templates without an ephemeral-storage limit. */
  defaultDiskBytes: number;
  /** Sizes of the sandbox's tmpfs mounts (/tmp and HOME). */
  tmpfsBytes: number;
  readyTimeoutMs: number;
  /** The first wait before a failed image pull is tried again (doubling, up to 30 times this). */
  imagePullBackoffMs: number;
  /** ASB_HOST_IMAGES: the host table (images.ts) stands in for the seeds' runtime images and
   *  python:*, golang:*, ... while they are not on the machine. Off by default: an image is then
   *  pulled as on Kubernetes (through the mirrors of registries.conf), and a missing one is an
   *  ErrImagePull, never the host's software in silence. */
  hostImages: boolean;
  /** ASB_EXEC_LANE (on unless 0): foreground commands go through the engine's exec lane into a
   *  sandbox (workloads/exec-lane.ts) rather than through its agent. */
  execLane: boolean;
  /** ASB_SNAPSHOT_IN_PLACE (on unless 0): a snapshot that keeps its sandbox is taken without
   *  stopping it where gVisor can (workloads/snapshot.ts); off, it stops and is restored. */
  snapshotInPlace: boolean;
  /** A warm pool replaces a claimed member after this long (its boot would slow the claimed one). */
  poolRefillDelayMs: number;
  /** Where memory snapshots are kept (default $ASB_HOME/snapshots); survives engine restarts. */
  snapshotDir?: string;
  logLevel: string;
  /** The engine's CPU weight (cgroup v1 shares; 0 leaves the engine in its cgroup): engine-cgroup.ts. */
  engineCpuShares: number;
  /** ASB_NETWORK: sandbox networking (network/host-network.ts). `auto` (default): on where the
   *  host allows it (root, nft, ip), else off with a warning; `on`: the engine does not start
   *  without it; `off`: every sandbox is offline, whatever its template says. */
  network: 'auto' | 'on' | 'off';
  /** ASB_NETWORK_POOL: the addresses sandboxes get (each engine on the host takes a /20 of it). */
  networkPool: string;
  /** ASB_DNS_SERVERS: where the engine's DNS asks ("1.1.1.1,10.0.0.53:5353"); default: the
   *  host's /etc/resolv.conf. */
  dnsServers?: string;
  /** ASB_EGRESS_CA_FILE: roots the egress proxy trusts for destinations, beside the system's. */
  egressCaFile?: string;
  /** The HTTP server's bounds on hostile clients (README's limits table). */
  http: {
    /** Bytes of one API request body (not the sandbox proxy's uploads: ASB_MAX_UPLOAD_BYTES). */
    maxApiBodyBytes: number;
    /** Bytes of the request line and headers. */
    maxHeaderBytes: number;
    /** The headers must all arrive within this long. */
    headersTimeoutMs: number;
    /** A request body (API or proxied) that makes no progress for this long is refused. */
    bodyIdleTimeoutMs: number;
    /** Bytes of API request bodies held while being read, all requests together. */
    maxApiBodiesBytes: number;
    /** Connections open at once (clients of the API and of the sandbox proxy together). */
    maxConnections: number;
  };
}

const here = dirname(fileURLToPath(import.meta.url));

/** Finds dist/agent.cjs both from sources (packages/engine/src) and from the bundle (dist/). */
function defaultAgentPath(): string {
  const candidates = [join(here, 'agent.cjs'), resolve(here, '../../../dist/agent.cjs')];
  return candidates.find((p) => existsSync(p)) ?? candidates[1]!;
}

/**
 * ASB_AGENT: unset or empty is the Go agent when it was built beside the bundle (scripts/build.mjs
 * builds it wherever Go is installed), else node; anything but node and go is a mistake, said at
 * once.
 */
export function agentKind(value: string | undefined, agentPath = defaultAgentPath()): AgentKind {
  if (value === undefined || value === '') return existsSync(join(dirname(agentPath), 'asb-agent')) ? 'go' : 'node';
  if (value === 'node' || value === 'go') return value;
  throw new Error(`ASB_AGENT must be "node" or "go", got "${value}"`);
}

/** runsc: ASB_RUNSC, else the pinned current gVisor that scripts/build-runsc.sh links as
 *  dist/runsc, else the one on PATH (Debian's package). */
function defaultRunscPath(env: NodeJS.ProcessEnv): string {
  if (env.ASB_RUNSC) return env.ASB_RUNSC;
  const candidates = [join(here, 'runsc'), resolve(here, '../../../dist/runsc')];
  return candidates.find((p) => existsSync(p)) ?? 'runsc';
}

/** A yes/no setting: unset, empty, 0 or false is no; 1 or true is yes; anything else is a mistake. */
function flag(value: string | undefined, name: string): boolean {
  if (value === undefined || value === '' || value === '0' || value.toLowerCase() === 'false') return false;
  if (value === '1' || value.toLowerCase() === 'true') return true;
  throw new Error(`${name} must be 1 or 0 (true or false), got "${value}"`);
}

function networkMode(value: string | undefined): EngineConfig['network'] {
  if (value === undefined || value === '' || value === 'auto') return 'auto';
  if (value === 'on' || value === '1') return 'on';
  if (value === 'off' || value === '0') return 'off';
  throw new Error(`ASB_NETWORK must be auto, on or off, got "${value}"`);
}

export function defaultHome(env: NodeJS.ProcessEnv = process.env): string {
  return env.ASB_HOME ?? join(homedir(), '.asb');
}

export function loadConfig(overrides: Partial<EngineConfig> = {}, env: NodeJS.ProcessEnv = process.env): EngineConfig {
  const num = (v: string | undefined, d: number) =>
    v !== undefined && v !== '' && Number.isFinite(Number(v)) ? Number(v) : d;
  const agentPath = env.ASB_AGENT_PATH ?? defaultAgentPath();
  const base: EngineConfig = {
    home: defaultHome(env),
    host: env.ASB_ENGINE_HOST ?? '127.0.0.1',
    port: num(env.ASB_ENGINE_PORT, 7480),
    driver: (env.ASB_DRIVER as EngineConfig['driver']) ?? 'auto',
    runscPath: defaultRunscPath(env),
    agentPath,
    agent: agentKind(env.ASB_AGENT, overrides.agentPath ?? agentPath),
    defaultMemoryBytes: num(env.ASB_DEFAULT_MEMORY_BYTES, 1024 * 1024 * 1024),
    defaultCpuMillis: num(env.ASB_DEFAULT_CPU_MILLIS, 1000),
    defaultPidsLimit: num(env.ASB_DEFAULT_PIDS_LIMIT, 512),
    defaultDiskBytes: num(env.ASB_DEFAULT_DISK_BYTES, 4 * 1024 * 1024 * 1024),
    tmpfsBytes: num(env.ASB_TMPFS_BYTES, 512 * 1024 * 1024),
    readyTimeoutMs: num(env.ASB_READY_TIMEOUT_MS, 30_000),
    imagePullBackoffMs: num(env.ASB_IMAGE_PULL_BACKOFF_MS, 10_000),
    hostImages: flag(env.ASB_HOST_IMAGES, 'ASB_HOST_IMAGES'),
    execLane: env.ASB_EXEC_LANE === undefined || flag(env.ASB_EXEC_LANE, 'ASB_EXEC_LANE'),
    snapshotInPlace:
      env.ASB_SNAPSHOT_IN_PLACE === undefined || flag(env.ASB_SNAPSHOT_IN_PLACE, 'ASB_SNAPSHOT_IN_PLACE'),
    poolRefillDelayMs: num(env.ASB_POOL_REFILL_DELAY_MS, 1000),
    snapshotDir: env.ASB_SNAPSHOT_DIR || undefined,
    logLevel: env.ASB_LOG_LEVEL ?? 'info',
    engineCpuShares: num(env.ASB_ENGINE_CPU_SHARES, ENGINE_CPU_SHARES_DEFAULT),
    network: networkMode(env.ASB_NETWORK),
    networkPool: env.ASB_NETWORK_POOL || DEFAULT_POOL,
    dnsServers: env.ASB_DNS_SERVERS || undefined,
    egressCaFile: env.ASB_EGRESS_CA_FILE || undefined,
    http: {
      maxApiBodyBytes: limitFromEnv(env, 'ASB_MAX_API_BODY_BYTES', 4 * 1024 * 1024),
      maxHeaderBytes: limitFromEnv(env, 'ASB_MAX_HEADER_BYTES', 16 * 1024),
      headersTimeoutMs: limitFromEnv(env, 'ASB_HEADERS_TIMEOUT_MS', 30_000),
      bodyIdleTimeoutMs: limitFromEnv(env, 'ASB_BODY_IDLE_TIMEOUT_MS', 60_000),
      maxApiBodiesBytes: limitFromEnv(env, 'ASB_MAX_API_BODIES_BYTES', 64 * 1024 * 1024),
      maxConnections: limitFromEnv(env, 'ASB_MAX_CONNECTIONS', 1024),
    },
  };
  return { ...base, ...Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined)) };
}
