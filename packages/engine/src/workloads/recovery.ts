// After an engine restart: the sandboxes a previous engine left are re-attached when their
// Sandbox still exists, and reaped (container and files) when nothing names them any more.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { limitsOf, type ContainerLike } from '../pod.ts';
import { destroyWorkspace } from '../workspace.ts';
import type { AgentConnections } from './connection.ts';
import { keyOf, sandboxDir, type Workload, type WorkloadTable, type WorkloadsDeps } from './workload.ts';

export type RecoveryDeps = Pick<WorkloadsDeps, 'config' | 'driver' | 'store' | 'networking'> & {
  table: WorkloadTable;
  connections: AgentConnections;
};

type WorkloadRow = ReturnType<WorkloadsDeps['store']['workloads']>[number];

/**
 * Re-attaches to containers whose Sandbox still exists, stops and removes the rest (containers,
 * workspaces) that no Sandbox object names. Runs before the reconcilers start.
 */
export async function recover(deps: RecoveryDeps): Promise<{ reattached: number; reaped: number }> {
  const { store, driver, config } = deps;
  let reattached = 0;
  let reaped = 0;
  const known = new Set<string>();
  for (const row of store.workloads()) {
    const outcome = await recoverOne(deps, row);
    if (outcome === 'reaped') reaped++;
    if (outcome === 'reattached') reattached++;
    if (outcome !== 'reaped' && row.containerId) known.add(row.containerId);
  }
  // Containers no row names (started by an engine that died before writing one).
  for (const id of await driver.list().catch(() => [] as string[])) {
    if (id.startsWith('asb-') && !known.has(id)) {
      await driver.destroy(id).catch(() => undefined);
      reaped++;
    }
  }
  // Network namespaces and links of containers that are gone.
  await deps.networking.sweep();
  // Workspace directories of Sandboxes that no longer exist.
  const root = join(config.home, 'sandboxes');
  for (const ns of existsSync(root) ? readdirSync(root) : []) {
    for (const name of readdirSync(join(root, ns))) {
      if (!store.getSync('Sandbox', ns, name)) await destroyWorkspace(join(root, ns, name));
    }
  }
  return { reattached, reaped };
}

type Outcome = 'reaped' | 'reattached' | 'failed' | 'restart';

/** One row of the workloads table: reaped, re-attached, failed to re-attach, or left for the
 *  reconciler to start again (no container, or one that is gone). */
async function recoverOne(deps: RecoveryDeps, row: WorkloadRow): Promise<Outcome> {
  const { store, driver, config, table, connections } = deps;
  const dir = sandboxDir(config.home, row.namespace, row.name);
  const sb = store.getSync('Sandbox', row.namespace, row.name);
  if (!sb || sb.metadata.uid !== row.uid) {
    if (row.containerId) await driver.destroy(row.containerId).catch(() => undefined);
    await destroyWorkspace(dir);
    store.deleteWorkload(row.namespace, row.name);
    return 'reaped';
  }
  if (!row.containerId) return 'restart';
  const logFile = join(dir, 'sandbox.log');
  const handle = await driver.attach(row.containerId, { dir, logFile }).catch(() => undefined);
  if (!handle) {
    // Gone while the engine was down: the reconciler starts it again, with its workspace.
    await driver.destroy(row.containerId).catch(() => undefined);
    store.putWorkload({ namespace: row.namespace, name: row.name, uid: row.uid });
    return 'restart';
  }
  const container = sb.spec.podTemplate.spec.containers[0] as ContainerLike;
  const w: Workload = {
    namespace: row.namespace,
    name: row.name,
    uid: row.uid,
    containerId: row.containerId,
    phase: 'Pending',
    message: 'Pod exists with phase: Pending',
    startedAt: new Date(),
    limits: limitsOf(container, config),
    image: container.image,
    handle,
    // Its namespace and address stay; its rules are put back as its template says now.
    network: await deps.networking.adopt(sb, dir).catch(() => undefined),
  };
  table.running.set(keyOf(row.namespace, row.name), w);
  connections.connect(w, handle, logFile);
  try {
    await connections.waitReady(w, logFile);
    w.phase = 'Running';
    w.message = 'Pod is Ready';
    w.readyAt = new Date();
    return 'reattached';
  } catch (err) {
    table.fail(w, `could not re-attach after an engine restart: ${(err as Error).message}`);
    return 'failed';
  }
}
