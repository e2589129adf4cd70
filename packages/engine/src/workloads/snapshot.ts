// Memory snapshots of a running sandbox: checked for room, checkpointed, its files copied beside
// the image, committed. A snapshot that keeps the sandbox is taken in place where gVisor can
// (paused for the checkpoint and the copy, then running on: its connections and commands in flight
// go on); otherwise, and for a suspend, the checkpoint stops it, and it either starts again from
// the snapshot or stays down. Whatever fails, the sandbox is not left half-way: it runs on, or
// again from its files or from the image, and the message says which.
import { join } from 'node:path';
import { ANNOTATION_SANDBOX_TEMPLATE_REF, type Sandbox } from '@asb/api';
import { EngineError } from '../errors.ts';
import { diskUsage, type SnapshotMeta, type SnapshotReason } from '../snapshots.ts';
import { runtimeSpecHash } from '../snapshot-annotations.ts';
import type { Launcher } from './launch.ts';
import { copySandboxFiles } from './sandbox-files.ts';
import type { AgentConnections } from './connection.ts';
import { keyOf, sandboxDir, type Workload, type WorkloadTable, type WorkloadsDeps } from './workload.ts';

const MiB = 1024 * 1024;
/** Room kept free beyond a snapshot's estimated size. */
const HEADROOM_BYTES = 64 * MiB;
const mb = (n: number) => `${Math.ceil(n / MiB)} MB`;

export type SnapshotDeps = Pick<WorkloadsDeps, 'config' | 'driver' | 'store' | 'log' | 'snapshots'> & {
  table: WorkloadTable;
  launcher: Launcher;
  connections: AgentConnections;
};

export interface SnapshotOpts {
  stop: boolean;
  reason: SnapshotReason;
  maxPerSandbox: number;
}

export class Snapshotter {
  constructor(private readonly deps: SnapshotDeps) {}

  /**
   * Memory snapshot of a running sandbox: gVisor checkpoints it, and its workspace and volumes are
   * copied beside the image. With `stop: false` it keeps running: in place where the driver can
   * (paused for ~0.1 s), otherwise it is checkpointed down and started again from the snapshot
   * (~0.3 s, its connections cut). With `stop: true` it stays down for a suspend (the caller sets
   * the Sandbox to Suspended, and stop() releases the hold). Refused before anything happens when
   * the disk lacks room: the sandbox keeps running.
   */
  async take(sb: Sandbox, opts: SnapshotOpts): Promise<SnapshotMeta> {
    const { driver, table, snapshots, store, log, launcher } = this.deps;
    const ns = sb.metadata.namespace;
    const name = sb.metadata.name!;
    const k = keyOf(ns, name);
    if (!driver.checkpoint || !driver.restore) {
      throw new EngineError('Invalid', `memory snapshots need gVisor; this engine runs ${driver.name}`);
    }
    if (table.busy.has(k)) {
      throw new EngineError(
        'Conflict',
        `sandbox "${name}" is already being snapshotted or reset; ` + 'try again when that has finished',
      );
    }
    const w = table.running.get(k);
    if (!w || w.phase !== 'Running') {
      throw new EngineError(
        'Conflict',
        `sandbox "${name}" is not running (${w?.phase ?? 'stopped'}): ` +
          'only a running sandbox has memory to snapshot',
      );
    }
    if (w.network && driver.checkpointsNetworked === false) {
      throw new EngineError(
        'Invalid',
        `sandbox "${name}" is networked, and this runsc gives networked sandboxes the host kernel's network ` +
          'stack, which it cannot checkpoint: use the current gVisor (the default, dist/runsc) or an offline template',
      );
    }
    table.busy.add(k);
    try {
      const dir = sandboxDir(this.deps.config.home, ns, name);
      await this.checkRoom(w, dir);
      const id = snapshots.newId();
      const tmp = snapshots.begin(id);
      const t0 = Date.now();
      const inPlace = !opts.stop && (await driver.checkpointsInPlace?.(w.containerId)) === true;
      let meta: SnapshotMeta;
      if (inPlace) meta = await this.takeInPlace(sb, w, id, tmp, dir, opts);
      else {
        await this.checkpoint(w, k, tmp, opts);
        store.putWorkload({ namespace: ns, name, uid: w.uid });
        meta = await this.commit(sb, w, k, id, tmp, dir, opts);
      }
      const removed = snapshots.prune(ns, name, opts.maxPerSandbox, new Set([meta.id]));
      const about = { sandbox: name, namespace: ns, snapshot: meta.id, bytes: meta.sizeBytes, pruned: removed };
      log.info({ ...about, inPlace, ms: Date.now() - t0 }, 'snapshot taken');
      if (!opts.stop && !inPlace) {
        table.held.delete(k);
        const again = launcher.start(sb, { snapshot: meta, copyFiles: false });
        await again.started;
        if (again.phase !== 'Running') {
          throw new EngineError(
            'Internal',
            `snapshot ${meta.id} was taken, ` + `but sandbox "${name}" did not come back from it: ${again.message}`,
          );
        }
      }
      return meta;
    } finally {
      table.busy.delete(k);
    }
  }

  /**
   * The snapshot taken while the sandbox stays up: its exec lane ended (the image must hold no
   * host socket but the agent's), the sandbox checkpointed and left paused, its files copied as
   * its processes saw them, and then it runs on. The agent's connection is kept throughout: a
   * request in flight waits out the pause. On failure it runs on as it was, and nothing is kept.
   */
  private async takeInPlace(
    sb: Sandbox,
    w: Workload,
    id: string,
    tmp: string,
    dir: string,
    opts: SnapshotOpts,
  ): Promise<SnapshotMeta> {
    const { driver, snapshots, connections, table, log } = this.deps;
    await connections.holdExecLane(w);
    try {
      await driver.checkpointInPlace!(w.containerId, snapshots.imageDir(tmp));
      let resumed: Promise<void> | undefined;
      try {
        await copySandboxFiles(dir, tmp);
      } finally {
        resumed = driver.resume!(w.containerId).catch((err: Error) => {
          log.error(
            { sandbox: w.name, namespace: w.namespace, err: err.message },
            'sandbox not resumed after a snapshot',
          );
          if (!w.stopping && !w.exit)
            table.fail(w, `the sandbox could not be resumed after a snapshot: ${err.message}`);
        });
      }
      try {
        return await snapshots.commit(tmp, this.metaOf(sb, w, id, opts)); // while it resumes
      } finally {
        await resumed;
      }
    } catch (err) {
      snapshots.abort(tmp);
      throw new EngineError(
        'Internal',
        `snapshot of sandbox "${w.name}" failed: ${(err as Error).message}. ` +
          (w.phase === 'Failed' ? 'The sandbox failed with it' : 'The sandbox keeps running as it was'),
      );
    } finally {
      connections.releaseExecLane(w);
    }
  }

  /**
   * A checkpoint writes at most the sandbox's memory (compressed); the copy, the files' used
   * blocks. Its memory limit bounds the first; only when that does not fit is the actual usage
   * asked for (a runsc process: ~20 ms). (Mounted volumes count twice, image and contents: an
   * overestimate, on the safe side.)
   */
  private async checkRoom(w: Workload, dir: string): Promise<void> {
    const { driver, snapshots } = this.deps;
    const files =
      (await diskUsage(join(dir, 'workspace.img'))) +
      (await diskUsage(join(dir, 'disk.img'))) +
      (await diskUsage(join(dir, 'volumes')));
    const free = snapshots.freeBytes();
    const limitFits = free >= w.limits.memoryBytes + files + HEADROOM_BYTES;
    const memory = limitFits
      ? w.limits.memoryBytes
      : ((await driver.memoryUsage?.(w.containerId)) ?? w.limits.memoryBytes);
    const need = memory + files + HEADROOM_BYTES;
    if (free < need) {
      throw new EngineError(
        'InsufficientStorage',
        `not enough disk for a snapshot of "${w.name}": ` +
          `it needs about ${mb(need)} (memory ${mb(memory)}, files ${mb(files)}) ` +
          `and ${mb(free)} are free under ${snapshots.root}. ` +
          'The sandbox keeps running; free space or delete snapshots (`asb snapshot rm`)',
      );
    }
  }

  /** The sandbox goes down (held, so that ensure() does not boot it afresh meanwhile) and its
   *  processes and memory go to the image. On failure it starts again from its files. */
  private async checkpoint(w: Workload, k: string, tmp: string, opts: SnapshotOpts): Promise<void> {
    const { driver, table, snapshots, store } = this.deps;
    table.held.set(k, opts.stop ? 'Suspending: taking a memory snapshot' : 'Taking a memory snapshot');
    w.stopping = true;
    table.running.delete(k);
    const laneEnded = this.deps.connections.close(w);
    table.changed(w);
    try {
      await laneEnded;
      await driver.checkpoint!(w.containerId, snapshots.imageDir(tmp));
    } catch (err) {
      snapshots.abort(tmp);
      table.held.delete(k);
      store.putWorkload({ namespace: w.namespace, name: w.name, uid: w.uid });
      table.changed(w); // the reconciler starts it again, from its files
      throw new EngineError(
        'Internal',
        `checkpoint of sandbox "${w.name}" failed: ${(err as Error).message}. ` +
          'Its files are intact and it starts again from them; its processes and memory are lost',
      );
    }
  }

  /** What a snapshot records of the sandbox it was taken of (its size is added at the commit). */
  private metaOf(sb: Sandbox, w: Workload, id: string, opts: SnapshotOpts): Omit<SnapshotMeta, 'sizeBytes'> {
    return {
      id,
      namespace: w.namespace,
      sandbox: w.name,
      sandboxUid: w.uid,
      template: sb.metadata.annotations?.[ANNOTATION_SANDBOX_TEMPLATE_REF],
      createdAt: new Date().toISOString(),
      reason: opts.reason,
      specHash: runtimeSpecHash(sb),
      sandboxSpec: { podTemplate: sb.spec.podTemplate, volumeClaimTemplates: sb.spec.volumeClaimTemplates },
    };
  }

  /** The files copied beside the image and the snapshot committed. When the copy fails the image
   *  is still whole: the sandbox comes back from it, and then the image is dropped. */
  private async commit(
    sb: Sandbox,
    w: Workload,
    k: string,
    id: string,
    tmp: string,
    dir: string,
    opts: SnapshotOpts,
  ): Promise<SnapshotMeta> {
    const { table, snapshots, launcher } = this.deps;
    const ns = w.namespace;
    const name = w.name;
    try {
      await copySandboxFiles(dir, tmp);
      return await snapshots.commit(tmp, this.metaOf(sb, w, id, opts));
    } catch (err) {
      const tmpMeta: SnapshotMeta = {
        id,
        namespace: ns,
        sandbox: name,
        sandboxUid: w.uid,
        createdAt: '',
        reason: opts.reason,
        sizeBytes: 0,
        specHash: '',
        sandboxSpec: {},
      };
      table.held.delete(k);
      const back = launcher.start(sb, { snapshot: tmpMeta, copyFiles: false }, tmp);
      await back.started;
      snapshots.abort(tmp);
      throw new EngineError(
        'InsufficientStorage',
        `snapshot of sandbox "${name}" failed while copying its files: ` +
          `${(err as Error).message}. The sandbox was restored and keeps running`,
      );
    }
  }
}
