// Starting one sandbox's container (a boot, or a restore from a snapshot) until its agent is
// ready, and ending it. Which container runs which Sandbox is written to the store before the
// container starts, so an engine that dies meanwhile can re-attach to it or reap it (recovery.ts).
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { LABEL_WARM_POOL_SANDBOX, bytes, type Sandbox } from '@asb/api';
import { EngineError } from '../errors.ts';
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import type { LocalImage as OciImage } from '@asb/oci';
import { AGENT_MOUNT, type ExtraMount, type SandboxRuntimeSpec } from '../drivers/runtime-spec.ts';
import { limitsOf, diskBytesOf, type ContainerLike } from '../pod.ts';
import { createImageDisk, createVolume, createWorkspace } from '../workspace.ts';
import { checkDestination, rootfsFor } from '../mount-points.ts';
import { ImageError, planImage, processOf, pullFor, type ImagePlan } from '../image-source.ts';
import { mountImageRoot, mountPointsIn, writeEtcFiles } from '../image-root.ts';
import { pullSecrets } from '../pull-secrets.ts';
import { runCommand as run } from '../spawner.ts';
import type { LocalImage as HostImage } from '../images.ts';
import type { AgentConnections } from './connection.ts';
import { copySandboxFiles } from './sandbox-files.ts';
import { warmUp } from './warm-up.ts';
import { keyOf, sandboxDir, type StartSource, type Workload, type WorkloadTable } from './workload.ts';
import type { WorkloadsDeps } from './workload.ts';

type LaunchUses = 'config' | 'driver' | 'rootfs' | 'agent' | 'store' | 'log' | 'snapshots' | 'images' | 'networking';
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
    w.started = this.boot(w, sb, container, env, from).catch((err: Error) => {
      if (w.stopping) return;
      if (err instanceof ImageError) {
        // As the kubelet leaves such a container: waiting, with the reason, not failed.
        this.waiting(w, err.reason, err.message);
        return;
      }
      log.warn({ sandbox: name, namespace: ns, err: err.message }, 'sandbox failed to start');
      table.fail(w, err.message);
      void driver
        .destroy(w.containerId)
        .catch(() => undefined)
        .then(() => this.unplug(w));
    });
    return w;
  }

  /** A container that cannot start yet: Pending, with the kubelet's reason for its waiting state. */
  private waiting(w: Workload, reason: NonNullable<Workload['reason']>, message: string): void {
    if (w.stopping) return;
    w.phase = 'Pending';
    w.reason = reason;
    w.message = message;
    this.deps.log.warn({ sandbox: w.name, namespace: w.namespace, reason }, message);
    this.deps.table.changed(w);
  }

  /**
   * The image, pulled as its policy says; a failed pull is retried with the kubelet's back-off
   * (ErrImagePull at each failure, ImagePullBackOff while waiting, the wait doubling from
   * config.imagePullBackoffMs up to 30 times it) until it succeeds or the sandbox goes.
   */
  private async pulled(w: Workload, sb: Sandbox, plan: Extract<ImagePlan, { kind: 'pull' }>): Promise<OciImage> {
    const { images, config, log } = this.deps;
    for (let attempt = 0; ; attempt++) {
      // Read at each attempt: a secret put in place after the first failure is used by the next.
      const secrets = pullSecrets(config.home, w.namespace, sb.spec.podTemplate.spec.imagePullSecrets);
      if (attempt === 0 && secrets.problems.length) {
        log.warn(
          { sandbox: w.name, namespace: w.namespace, problems: secrets.problems },
          'image pull secrets not used',
        );
      }
      try {
        const image = await pullFor(images, plan, secrets);
        if (w.reason) {
          // Pulled after all: the sandbox is starting now, not waiting.
          w.reason = undefined;
          w.message = 'Pod exists with phase: Pending';
          this.deps.table.changed(w);
        }
        return image;
      } catch (err) {
        if (!(err instanceof ImageError) || !err.retry || w.stopping) throw err;
        this.waiting(w, err.reason, err.message);
        const wait = Math.min(config.imagePullBackoffMs * 2 ** attempt, config.imagePullBackoffMs * 30);
        if (err.reason === 'ErrImageNeverPull') {
          // Nothing to back off from (no pull was tried): looked for again, still saying why.
          await sleepUnless(() => w.stopping === true, wait);
          if (w.stopping) throw err;
          continue;
        }
        // ErrImagePull stays up a moment before the back-off replaces it, as the kubelet shows it.
        await sleepUnless(() => w.stopping === true, Math.min(1000, wait / 2));
        this.waiting(w, 'ImagePullBackOff', `Back-off pulling image "${plan.reference}": ${err.message}`);
        await sleepUnless(() => w.stopping === true, wait - Math.min(1000, wait / 2));
        if (w.stopping) throw err;
      }
    }
  }

  private async boot(
    w: Workload,
    sb: Sandbox,
    container: ContainerLike,
    env: Record<string, string>,
    from?: Restore,
  ): Promise<void> {
    const { driver, snapshots, log, table } = this.deps;
    const t0 = Date.now();
    const dir = sandboxDir(this.deps.config.home, w.namespace, w.name);
    const plan = planImage(container, this.deps.images, { hostImages: this.deps.config.hostImages });
    let image: OciImage | undefined;
    if (plan.kind === 'pull') {
      if (this.deps.agent.kind !== 'go') {
        const why = "running an image needs the Go agent (ASB_AGENT=go): the node agent runs on the host's /usr";
        throw new ImageError('CreateContainerConfigError', why, false);
      }
      image = await this.pulled(w, sb, plan);
      if (w.stopping) return;
    } else {
      log.debug(
        { sandbox: w.name, image: container.image, host: plan.image.name },
        'host software in place of the image',
      );
    }
    if (from?.copyFiles) await copySandboxFiles(from.dir, dir);
    mkdirSync(dir, { recursive: true });
    // The network is made beside the workspace: both are mostly other processes' work (ip, nft;
    // mounts). A failure of either still finds the attachment on the workload, to take it down.
    const networking = this.deps.networking.attach(sb, dir).then((n) => {
      w.network = n?.attachment;
      return n;
    });
    const [net, spec] = await Promise.all([
      networking,
      plan.kind === 'pull'
        ? this.imageSpec(w, sb, container, image!, plan, dir)
        : this.runtimeSpec(w, sb, container, plan.image, env, dir),
    ]);
    spec.network = net?.spec;
    if (net) spec.env = { ...spec.env, ...net.env };
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
    if (sb.metadata.labels?.[LABEL_WARM_POOL_SANDBOX]) {
      await warmUp(w);
      // The claim's first command then takes the lane, which a cold sandbox opens on its first.
      await this.deps.connections.openExecLane(w);
    }
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

  /**
   * A sandbox whose root is its image's (image-root.ts): the image's process config merged with
   * the container's, the workspace at the working directory (filled from the image's own files
   * there when it is new, as a Docker volume is), the volumes, and nothing of the host.
   */
  private async imageSpec(
    w: Workload,
    sb: Sandbox,
    container: ContainerLike,
    image: OciImage,
    plan: Extract<ImagePlan, { kind: 'pull' }>,
    dir: string,
  ): Promise<SandboxRuntimeSpec> {
    const { config, driver, agent, log, images } = this.deps;
    const lower = await images.rootfs(image);
    const proc = processOf(image, container, lower);
    // gVisor's gofer keeps uids as they are; bubblewrap maps the sandbox's to the engine's own.
    const owner = driver.name === 'gvisor' ? { uid: proc.uid, gid: proc.gid } : driver.workspaceOwner();
    const workingDir = container.workingDir ?? (proc.cwd === '/' ? '/app' : proc.cwd);
    const diskBytes = diskBytesOf(container, config);
    const firstStart = !existsSync(join(dir, 'disk.img')) && !existsSync(join(dir, 'disk'));
    checkDestination('workingDir', workingDir);
    // Two file systems of their own (the disk, and the volumes'): made side by side.
    const [disk, extraMounts] = await Promise.all([
      createImageDisk(dir, diskBytes, owner, log),
      volumeMounts(sb, container, dir, owner, log),
    ]);
    const ws = disk.workspace;
    const root = await mountImageRoot(dir, lower, disk.layer);
    w.diskQuotaBytes = ws.quotaBytes;
    const wanted = [
      { field: 'workingDir', path: workingDir },
      ...extraMounts.map((m) => ({ field: `volumeMounts[${m.name}].mountPath`, path: m.destination })),
    ];
    for (const d of wanted) checkDestination(d.field, d.path);
    const [cwd, ...volumeDests] = mountPointsIn(root, wanted);
    mountPointsIn(
      root,
      ['/proc', '/dev', AGENT_MOUNT].map((path) => ({ field: 'image', path })),
    );
    writeEtcFiles(root, w.name, this.deps.networking.nameserverFor(sb));
    const imageFiles = join(root, cwd!);
    if (firstStart && readdirSync(ws.path).length === 0 && readdirSync(imageFiles).length > 0) {
      await run('cp', ['-a', '--', `${imageFiles}/.`, ws.path], { timeout: 600_000 });
    }
    if (statSync(ws.path).uid !== owner.uid) await run('chown', [`${owner.uid}:${owner.gid}`, ws.path]);
    return {
      hostname: w.name,
      rootfs: { dir: root, extraBinds: [], fromImage: true },
      workspaceDir: ws.path,
      agentDir: agent.dir,
      agent: agent.kind,
      env: Object.fromEntries(proc.env),
      // Our agent serves the runtime API that a runtime server image's own process would.
      mainArgv: plan.isRuntimeServer || proc.argv.length === 0 ? undefined : proc.argv,
      workingDir: cwd!,
      limits: w.limits,
      tmpfsBytes: config.tmpfsBytes,
      extraMounts: extraMounts.map((m, i) => ({ ...m, destination: volumeDests[i]! })),
      uid: proc.uid,
      gid: proc.gid,
    };
  }

  /** The workspace and volumes made, and what the driver is to run. */
  private async runtimeSpec(
    w: Workload,
    sb: Sandbox,
    container: ContainerLike,
    image: HostImage,
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

  /** Its network namespace and rules go with its container (a restart gets new ones). */
  private async unplug(w: Workload): Promise<void> {
    const a = w.network;
    if (!a) return;
    w.network = undefined;
    await this.deps.networking
      .detach(sandboxDir(this.deps.config.home, w.namespace, w.name), a)
      .catch((err: Error) => this.deps.log.warn({ sandbox: w.name, err: err.message }, 'network not taken down'));
  }

  /** Ends the container; the workspace stays (release removes it). */
  async teardown(w: Workload): Promise<void> {
    w.stopping = true;
    this.deps.table.running.delete(keyOf(w.namespace, w.name));
    void this.deps.connections.close(w);
    await this.deps.driver.destroy(w.containerId);
    await this.unplug(w);
    this.deps.store.putWorkload({ namespace: w.namespace, name: w.name, uid: w.uid });
    this.deps.log.info({ sandbox: w.name, namespace: w.namespace, containerId: w.containerId }, 'sandbox stopped');
  }
}

/** Waits `ms`, or less when `stop` turns true (checked every 100 ms). */
async function sleepUnless(stop: () => boolean, ms: number): Promise<void> {
  const until = Date.now() + ms;
  while (!stop() && Date.now() < until) await new Promise((r) => setTimeout(r, Math.min(100, until - Date.now())));
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
