// Starting one sandbox's container (a boot, or a restore from a snapshot) until its agent is
// ready, and ending it. Which container runs which Sandbox is written to the store before the
// container starts, so an engine that dies meanwhile can re-attach to it or reap it (recovery.ts).
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { LABEL_WARM_POOL_SANDBOX, bytes, type Sandbox } from '@asb/api';
import { EngineError } from '../errors.ts';
import { resolveImage, UnknownImageError, type LocalImage } from '../images.ts';
import type { ExtraMount, SandboxRuntimeSpec } from '../drivers/runtime-spec.ts';
import { limitsOf, diskBytesOf, type ContainerLike } from '../pod.ts';
import { createVolume, createWorkspace } from '../workspace.ts';
import { rootfsFor } from '../mount-points.ts';
import type { AgentConnections } from './connection.ts';
import { copySandboxFiles } from './sandbox-files.ts';
import { warmUp } from './warm-up.ts';
import { keyOf, sandboxDir, type StartSource, type Workload, type WorkloadTable } from './workload.ts';
import type { WorkloadsDeps } from './workload.ts';

type LaunchUses = 'config' | 'driver' | 'rootfs' | 'agent' | 'store' | 'log' | 'snapshots';
export type LaunchDeps = Pick<WorkloadsDeps, LaunchUses> & {
  table: WorkloadTable;
  connections: AgentConnections;
};

/** A start from a snapshot whose image lies in `dir`. */
type Restore = StartSource & { dir: string };

export class Launcher {
  constructor(private readonly deps: LaunchDeps) {}

  /** Starts the container in the background; the Sandbox is reconciled again when it is ready.
   *  `snapshotDir`: where the source's image is when it is not (yet) in the snapshot store. */
  start(sb: Sandbox, source?: StartSource, snapshotDir?: string): Workload {
    const { config, store, snapshots, log, table, driver } = this.deps;
    const ns = sb.metadata.namespace;
    const name = sb.metadata.name!;
    const container = sb.spec.podTemplate.spec.containers[0] as ContainerLike | undefined;
    if (!container) throw new EngineError('Invalid', 'the pod template has no container');
    const image = imageOf(container);
    const env = envOf(container);
    const w: Workload = {
      namespace: ns,
      name,
      uid: sb.metadata.uid!,
      containerId: `asb-${randomUUID().slice(0, 13)}`,
      phase: 'Pending',
      message: 'Pod exists with phase: Pending',
      startedAt: new Date(),
      limits: limitsOf(container, config),
      image: container.image,
    };
    table.running.set(keyOf(ns, name), w);
    store.putWorkload({ namespace: ns, name, uid: w.uid, containerId: w.containerId });
    const from = source ? { ...source, dir: snapshotDir ?? snapshots.dirOf(source.snapshot.id) } : undefined;
    w.started = this.boot(w, sb, container, image, env, from).catch((err: Error) => {
      if (w.stopping) return;
      log.warn({ sandbox: name, namespace: ns, err: err.message }, 'sandbox failed to start');
      table.fail(w, err.message);
      void driver.destroy(w.containerId).catch(() => undefined);
    });
    return w;
  }

  private async boot(
    w: Workload,
    sb: Sandbox,
    container: ContainerLike,
    image: LocalImage,
    env: Record<string, string>,
    from?: Restore,
  ): Promise<void> {
    const { driver, snapshots, log, table } = this.deps;
    const t0 = Date.now();
    const dir = sandboxDir(this.deps.config.home, w.namespace, w.name);
    if (from?.copyFiles) await copySandboxFiles(from.dir, dir);
    const spec = await this.runtimeSpec(w, sb, container, image, env, dir);
    const logFile = join(dir, 'sandbox.log');
    const tWorkspace = Date.now();
    if (w.stopping) return;
    if (from) {
      w.handle = await driver.restore!(w.containerId, spec, { dir, logFile }, snapshots.imageDir(from.dir));
      w.restoredFrom = from.snapshot.id;
    } else {
      w.handle = await driver.start(w.containerId, spec, { dir, logFile });
    }
    const tSpawned = Date.now();
    this.deps.connections.connect(w, w.handle, logFile);
    await this.deps.connections.waitReady(w, logFile);
    if (sb.metadata.labels?.[LABEL_WARM_POOL_SANDBOX]) await warmUp(w);
    if (w.stopping) return;
    w.phase = 'Running';
    w.message = 'Pod is Ready';
    w.readyAt = new Date();
    // Where a cold start's time goes, for whoever reads the log (and the benchmark's notes).
    const readyAtMs = w.readyAt.getTime();
    const phasesMs = { workspace: tWorkspace - t0, spawn: tSpawned - tWorkspace, agentReady: readyAtMs - tSpawned };
    log.info(
      {
        sandbox: w.name,
        namespace: w.namespace,
        containerId: w.containerId,
        ms: readyAtMs - t0,
        phasesMs,
        restoredFrom: w.restoredFrom,
      },
      'sandbox ready',
    );
    table.changed(w);
  }

  /** The workspace and volumes made, and what the driver is to run. */
  private async runtimeSpec(
    w: Workload,
    sb: Sandbox,
    container: ContainerLike,
    image: LocalImage,
    env: Record<string, string>,
    dir: string,
  ): Promise<SandboxRuntimeSpec> {
    const { config, driver, agent, log } = this.deps;
    const owner = driver.workspaceOwner();
    const ws = await createWorkspace(dir, diskBytesOf(container, config), owner, log);
    w.diskQuotaBytes = ws.quotaBytes;
    const main = image.isRuntimeServer ? [] : [...(container.command ?? []), ...(container.args ?? [])];
    const workingDir = container.workingDir ?? '/app';
    const extraMounts = await volumeMounts(sb, container, dir, owner, log);
    // Mount points never made on the host: checked, or made in a private root (mount-points.ts).
    const rootfs = rootfsFor(this.deps.rootfs, dir, [
      { field: 'workingDir', path: workingDir },
      ...extraMounts.map((m) => ({ field: `volumeMounts[${m.name}].mountPath`, path: m.destination })),
    ]);
    return {
      hostname: w.name,
      rootfs,
      workspaceDir: ws.path,
      agentDir: agent.dir,
      preload: agent.preload,
      snapshot: agent.snapshot,
      spawner: agent.spawner,
      agent: agent.kind,
      image,
      env,
      mainArgv: main.length ? main : undefined,
      workingDir,
      limits: w.limits,
      tmpfsBytes: config.tmpfsBytes,
      extraMounts,
    };
  }

  /** Ends the container; the workspace stays (release removes it). */
  async teardown(w: Workload): Promise<void> {
    w.stopping = true;
    this.deps.table.running.delete(keyOf(w.namespace, w.name));
    w.agent?.close();
    await this.deps.driver.destroy(w.containerId);
    this.deps.store.putWorkload({ namespace: w.namespace, name: w.name, uid: w.uid });
    this.deps.log.info({ sandbox: w.name, namespace: w.namespace, containerId: w.containerId }, 'sandbox stopped');
  }
}

function imageOf(container: ContainerLike): LocalImage {
  try {
    return resolveImage(container.image);
  } catch (err) {
    if (err instanceof UnknownImageError) throw new EngineError('Invalid', err.message);
    throw err;
  }
}

function envOf(container: ContainerLike): Record<string, string> {
  const env: Record<string, string> = {};
  for (const e of container.env ?? []) {
    // Secrets and config maps do not exist on one machine: say so rather than start without them.
    if (e.value === undefined && e.valueFrom !== undefined) {
      throw new EngineError(
        'Invalid',
        `env ${e.name} takes its value from a secret or config map (valueFrom), ` +
          'which the local engine cannot resolve; give it a value',
      );
    }
    if (e.value !== undefined) env[e.name] = e.value;
  }
  return env;
}

interface VolumeMount {
  name: string;
  mountPath: string;
  readOnly?: boolean;
}

/** volumeClaimTemplates → a directory per template under the sandbox's own directory, of the
 *  size its storage request says (createVolume), mounted where the container mounts the volume
 *  of that name. They live as long as the Sandbox. */
async function volumeMounts(
  sb: Sandbox,
  container: ContainerLike,
  dir: string,
  owner: { uid: number; gid: number },
  log: Logger,
): Promise<ExtraMount[]> {
  const out: ExtraMount[] = [];
  const mounts = (container as { volumeMounts?: VolumeMount[] }).volumeMounts ?? [];
  for (const vct of sb.spec.volumeClaimTemplates ?? []) {
    const name = vct.metadata.name;
    const volume = await createVolume(dir, name, bytes(String(vct.spec.resources.requests.storage)), owner, log);
    for (const m of mounts.filter((x) => x.name === name)) {
      out.push({ name, source: volume.path, destination: m.mountPath, readOnly: m.readOnly === true });
    }
  }
  return out;
}
