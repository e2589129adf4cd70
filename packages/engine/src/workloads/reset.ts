// A sandbox back to its template's clean state, in place.
import type { Sandbox } from '@asb/api';
import { EngineError } from '../errors.ts';
import { dropWorkspace } from '../workspace.ts';
import type { Launcher } from './launch.ts';
import { startSource, type RestoreDeps } from './restore.ts';
import { keyOf, sandboxDir, type Workload, type WorkloadTable } from './workload.ts';

export type ResetDeps = RestoreDeps & { table: WorkloadTable; launcher: Launcher };

/**
 * Back to the template's clean state without a new sandbox: processes end, the workspace (and
 * with the processes, /tmp and $HOME) is dropped, and it starts as a new one would (from the
 * template's golden snapshot when it names one). Volumes are persistent and stay.
 */
export async function reset(deps: ResetDeps, sb: Sandbox): Promise<Workload> {
  const { table, launcher } = deps;
  const ns = sb.metadata.namespace;
  const name = sb.metadata.name!;
  const k = keyOf(ns, name);
  if (table.busy.has(k)) {
    throw new EngineError(
      'Conflict',
      `sandbox "${name}" is already being snapshotted or reset; ` + 'try again when that has finished',
    );
  }
  table.busy.add(k);
  try {
    table.held.set(k, 'Resetting');
    const w = table.running.get(k);
    if (w) {
      await launcher.teardown(w);
      table.changed(w);
    }
    await dropWorkspace(sandboxDir(deps.config.home, ns, name));
    table.held.delete(k);
    const fresh = launcher.start(sb, startSource(deps, sb, { explicit: false }));
    await fresh.started;
    if (fresh.phase !== 'Running') {
      throw new EngineError('Internal', `sandbox "${name}" did not start again after the reset: ${fresh.message}`);
    }
    return fresh;
  } finally {
    table.busy.delete(k);
  }
}
