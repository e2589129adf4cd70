// The local engine: wires configuration, logging, the isolation driver, the root filesystem,
// the sandbox manager and the HTTP server; owns the token and the state file clients read.
import {
  mkdirSync,
  writeFileSync,
  readFileSync,
  existsSync,
  chmodSync,
  rmSync,
  copyFileSync,
  realpathSync,
} from 'node:fs';
import { join, dirname } from 'node:path';
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import pino, { type Logger } from 'pino';
import { loadConfig, type EngineConfig } from './config.ts';
import { prepareRootfs } from './rootfs.ts';
import { localImageStore } from '@asb/oci';
import { AGENT_MOUNT, type AgentKind } from './drivers/runtime-spec.ts';
import type { AgentInstall } from './workloads/workload.ts';
import { LocalWorkloads } from './workloads.ts';
import { SandboxService } from './sandbox-service.ts';
import { SnapshotStore } from './snapshots.ts';
import { ANNOTATION_RESTORE_SNAPSHOT } from './snapshot-annotations.ts';
import { SqliteStore } from './store/sqlite-store.ts';
import { LifecycleController, systemClock } from '@asb/lifecycle';
import { GvisorDriver, runscNeedsStatxShim, runscNetstackWorks, runscVersion } from './drivers/gvisor.ts';
import { BubblewrapDriver } from './drivers/bubblewrap.ts';
import type { SandboxDriver } from './drivers/driver.ts';
import { apiApp } from './http/api.ts';
import { createEngineServer } from './http/server.ts';
import { EngineMetrics } from './metrics.ts';
import { MAX_UPLOAD_BYTES_DEFAULT } from './http/proxy.ts';
import { builtinTemplates } from './builtin-templates.ts';
import { applyObjects } from './apply.ts';
import { unmountAll } from './workspace.ts';
import { raiseEngineCpuWeight } from './engine-cgroup.ts';
import { useSpawner } from './spawner.ts';
import { SandboxNetworking } from './network/sandbox-network.ts';

export const ENGINE_VERSION = '0.1.0';

export interface EngineState {
  url: string;
  pid: number;
  tokenFile: string;
  driver: string;
  startedAt: string;
}

export function tokenFile(home: string): string {
  return join(home, 'token');
}
export function stateFile(home: string): string {
  return join(home, 'engine.json');
}

/** The bearer token, created on first start with mode 0600. */
export function ensureToken(home: string): string {
  const file = tokenFile(home);
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  const token = randomBytes(32).toString('base64url');
  writeFileSync(file, token + '\n', { mode: 0o600, flag: 'wx' });
  return token;
}

function which(cmd: string): string | undefined {
  // The name is passed as an argument, never spliced into the shell's text.
  try {
    return execFileSync('sh', ['-c', 'command -v "$1"', 'sh', cmd], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

async function chooseDriver(config: EngineConfig, log: Logger): Promise<{ driver: SandboxDriver; runtime?: string }> {
  // Commands run to their end (runsc kill, delete, umount...) start from the helper beside the agent.
  useSpawner(join(dirname(config.agentPath), 'asb-spawner'));
  const runsc = which(config.runscPath);
  if (config.driver !== 'bubblewrap' && runsc) {
    const reaper = join(dirname(config.agentPath), 'asb-reaper');
    const runtime = await runscVersion(runsc);
    const driver = new GvisorDriver(runsc, join(config.home, 'runsc'), {
      reaper: existsSync(reaper) ? reaper : undefined,
      restoreHook: config.agent === 'go',
      checkpointInPlace: config.snapshotInPlace,
      networkMode: runscNetstackWorks(runtime) ? 'sandbox' : 'host',
    });
    return { driver, runtime };
  }
  if (config.driver === 'gvisor') {
    throw new Error(
      `gVisor's runsc was not found (ASB_RUNSC=${config.runscPath}). Install it with: sudo apt-get install -y runsc`,
    );
  }
  const bwrap = which('bwrap');
  if (!bwrap)
    throw new Error(
      'neither gVisor (runsc) nor bubblewrap (bwrap) is installed. Install gVisor with: sudo apt-get install -y runsc',
    );
  log.warn(
    config.driver === 'bubblewrap'
      ? 'using bubblewrap as configured: it shares the host kernel (weaker isolation than gVisor)'
      : 'gVisor not found: using bubblewrap, which shares the host kernel (weaker isolation). Install runsc for gVisor.',
  );
  return { driver: new BubblewrapDriver(bwrap) };
}

/** Copies the agent (bundle, startup snapshot, statx shim; or the Go agent's binary) to a
 *  directory of its own: that directory, not the rest of dist/, is what sandboxes see at /.asb. */
function installAgent(agentPath: string, dir: string, log: Logger, kind: AgentKind, shim: boolean): AgentInstall {
  const dist = dirname(agentPath);
  mkdirSync(dir, { recursive: true });
  copyFileSync(agentPath, join(dir, 'agent.cjs'));
  if (kind === 'go') {
    // ASB_AGENT=go: the static agent (packages/runtime/agent-go), built by scripts/build.mjs.
    const goAgent = join(dist, 'asb-agent');
    if (!existsSync(goAgent))
      throw new Error(
        `ASB_AGENT=go but the Go agent is missing at ${goAgent}: run \`npm run build\` with Go installed`,
      );
    copyFileSync(goAgent, join(dir, 'asb-agent'));
    chmodSync(join(dir, 'asb-agent'), 0o755);
  }
  let snapshot = false;
  try {
    // A snapshot loads only into the node that built it; sandboxes run /usr/bin/node.
    const meta = JSON.parse(readFileSync(join(dist, 'agent.blob.json'), 'utf8')) as { execPath: string };
    if (realpathSync(meta.execPath) === realpathSync('/usr/bin/node')) {
      copyFileSync(join(dist, 'agent.blob'), join(dir, 'agent.blob'));
      snapshot = true;
    } else
      log.info({ builtBy: meta.execPath }, 'agent snapshot was built by another node than /usr/bin/node: not used');
  } catch {
    /* no snapshot: the bundle is used */
  }
  const shimFile = join(dist, 'statx-shim.so');
  const hasShim = shim && existsSync(shimFile);
  if (hasShim) copyFileSync(shimFile, join(dir, 'statx-shim.so'));
  else if (shim)
    log.warn(
      { shim: shimFile },
      'statx shim missing (run npm run build with a C compiler): ls may fail inside gVisor 20221219',
    );
  const spawner = join(dist, 'asb-spawn');
  const hasSpawner = existsSync(spawner);
  if (hasSpawner) copyFileSync(spawner, join(dir, 'asb-spawn'));
  return {
    dir,
    preload: hasShim ? `${AGENT_MOUNT}/statx-shim.so` : undefined,
    snapshot: kind === 'node' && snapshot,
    spawner: hasSpawner ? `${AGENT_MOUNT}/asb-spawn` : undefined,
    kind,
  };
}

export class Engine {
  readonly config: EngineConfig;
  readonly log: Logger;
  store!: SqliteStore;
  workloads!: LocalWorkloads;
  sandboxes!: SandboxService;
  controller!: LifecycleController;
  metrics!: EngineMetrics;
  networking!: SandboxNetworking;
  private server?: Server;
  private driver?: SandboxDriver;
  private token = '';
  url = '';

  constructor(overrides: Partial<EngineConfig> = {}, logger?: Logger) {
    this.config = loadConfig(overrides);
    this.log = logger ?? pino({ level: this.config.logLevel, base: { component: 'engine' } });
  }

  async start(): Promise<EngineState> {
    const { home } = this.config;
    mkdirSync(home, { recursive: true, mode: 0o700 });
    chmodSync(home, 0o700);
    if (!existsSync(this.config.agentPath))
      throw new Error(`the runtime agent bundle is missing at ${this.config.agentPath}: run \`npm run build\``);
    this.token = ensureToken(home);
    const { driver, runtime } = await chooseDriver(this.config, this.log);
    this.driver = driver;
    const cpu = raiseEngineCpuWeight(this.config.engineCpuShares);
    if (cpu.moved)
      this.log.info(
        { cgroup: cpu.path, weight: cpu.weight },
        'engine runs in a cgroup of its own, weighted above its sandboxes',
      );
    else this.log.warn({ reason: cpu.reason }, 'engine CPU weight not raised: busy sandboxes may delay it');
    const rootfs = prepareRootfs(home);
    // The shim costs every exec a library load (1–3 ms under gVisor): only where it is needed.
    const shim = driver.name === 'gvisor' && runscNeedsStatxShim(runtime);
    const agent = installAgent(this.config.agentPath, join(home, 'agent'), this.log, this.config.agent, shim);
    this.store = new SqliteStore(join(home, 'state.db'));
    const snapshots = new SnapshotStore(this.config.snapshotDir ?? join(home, 'snapshots'));
    this.metrics = new EngineMetrics(() => this.workloads.list().map((w) => w.phase));
    this.networking = await SandboxNetworking.start({
      config: this.config,
      store: this.store,
      log: this.log,
      metrics: this.metrics,
      agentDir: agent.dir,
      netstack: driver.name !== 'gvisor' || (driver as GvisorDriver).networkMode === 'sandbox',
    });
    this.metrics.watchNetworking(this.networking);
    this.workloads = new LocalWorkloads({
      config: this.config,
      driver,
      rootfs,
      agent,
      store: this.store,
      log: this.log,
      snapshots,
      metrics: this.metrics,
      images: localImageStore(home),
      networking: this.networking,
    });
    this.sandboxes = new SandboxService(this.store, this.workloads);
    // A template's policy applies to its running sandboxes when it changes, as on a cluster.
    this.store.watch((ev) => {
      if (ev.object.kind !== 'SandboxTemplate') return;
      const ns = ev.object.metadata.namespace;
      void this.networking
        .refresh(ns, (name) => this.store.getSync('Sandbox', ns, name))
        .catch((err: Error) => this.log.warn({ err: err.message }, 'egress policy not refreshed'));
    });
    // Re-attach to what a previous engine left running, before anything reconciles. Recovery
    // waits on child processes whose handles are unref'd: keep the event loop alive meanwhile.
    const keepAlive = setInterval(() => {}, 1 << 30);
    const recovered = await this.workloads.recover().finally(() => clearInterval(keepAlive));
    if (recovered.reattached || recovered.reaped)
      this.log.info(recovered, 'recovered sandboxes left by a previous engine');
    for (const t of builtinTemplates()) {
      const stored = this.store.getSync('SandboxTemplate', t.metadata.namespace ?? 'default', t.metadata.name!);
      // A built-in stored by an engine before networking had no policy, which now means the
      // internet: it is given its offline policy (a template of the user's is left alone).
      const olderBuiltin =
        stored &&
        !stored.spec.networkPolicy &&
        JSON.stringify(stored.spec.podTemplate) === JSON.stringify((t as typeof stored).spec.podTemplate);
      if (!stored || olderBuiltin) await applyObjects(this.store, [t]);
    }
    this.controller = new LifecycleController(
      {
        store: this.store,
        workloads: this.workloads,
        clock: systemClock,
        recorder: { event: (obj, type, reason, message) => this.store.recordEvent(obj, type, reason, message) },
      },
      {
        log: this.log,
        // A replacement's boot costs CPU the claimed sandbox's first commands want: on a small
        // machine, replacing at once makes the warm claim's first command several times slower.
        refill: { replenishDelayMs: this.config.poolRefillDelayMs },
      },
    );
    await this.controller.start();
    // A restore finished by an engine that died before it could say so: the annotation is done.
    for (const sb of this.store.listSync('Sandbox')) {
      if (
        sb.metadata.annotations?.[ANNOTATION_RESTORE_SNAPSHOT] &&
        this.workloads.get(sb.metadata.namespace, sb.metadata.name!)?.phase === 'Running' &&
        sb.spec.operatingMode !== 'Suspended'
      ) {
        await this.sandboxes.consumeRestoreAnnotation(sb.metadata.namespace, sb.metadata.name!).catch(() => undefined);
      }
    }
    const api = apiApp(
      this.store,
      this.sandboxes,
      {
        version: ENGINE_VERSION,
        driver: driver.name,
        isolation: driver.isolation,
        runtime,
      },
      this.token,
    );
    const maxUploadBytes = Number(process.env.ASB_MAX_UPLOAD_BYTES ?? MAX_UPLOAD_BYTES_DEFAULT);
    this.server = createEngineServer(api, this.workloads, {
      token: this.token,
      maxUploadBytes,
      limits: this.config.http,
      metrics: this.metrics.registry,
      onConnectionDropped: () => this.metrics.connectionsDropped.inc(),
    });
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(this.config.port, this.config.host, resolve);
    });
    const addr = this.server.address() as AddressInfo;
    this.url = `http://${this.config.host}:${addr.port}`;
    const state: EngineState = {
      url: this.url,
      pid: process.pid,
      tokenFile: tokenFile(home),
      driver: driver.name,
      startedAt: new Date().toISOString(),
    };
    writeFileSync(stateFile(home), JSON.stringify(state, null, 2) + '\n', { mode: 0o600 });
    this.log.info({ url: this.url, driver: driver.name, runtime }, 'engine listening');
    return state;
  }

  get bearerToken(): string {
    return this.token;
  }

  /**
   * Stops serving and ends every sandbox's processes. The objects and the workspaces stay in
   * $ASB_HOME: the next start brings the Sandboxes back (with their files, processes anew).
   * `deleteAll` removes every object first, as a clean slate (tests, `asb engine stop --purge`).
   */
  async stop(opts: { deleteAll?: boolean } = {}): Promise<void> {
    // Reconciles under way finish before the store closes under them (bounded: one may be
    // waiting on a sandbox that will not answer).
    await Promise.race([this.controller?.stop(), new Promise((r) => setTimeout(r, 10_000).unref())]);
    await new Promise<void>((resolve) => {
      if (!this.server) return resolve();
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
    if (this.workloads) {
      if (opts.deleteAll) {
        for (const kind of ['SandboxClaim', 'SandboxWarmPool', 'Sandbox'] as const) {
          for (const o of this.store.listSync(kind))
            await this.store.delete(kind, o.metadata.namespace, o.metadata.name!).catch(() => undefined);
        }
        await Promise.all(
          this.workloads.list().map((w) => this.workloads.release(w.namespace, w.name).catch(() => undefined)),
        );
        await this.workloads.recover(); // removes workspaces no Sandbox names any more
      } else {
        await this.workloads.stopAll();
        // No mount outlives the engine that made it; the next start mounts the workspaces again.
        await unmountAll(join(this.config.home, 'sandboxes'));
      }
    }
    await this.networking?.close();
    await this.driver?.close?.();
    this.store?.close();
    rmSync(stateFile(this.config.home), { force: true });
    this.log.info('engine stopped');
  }
}
