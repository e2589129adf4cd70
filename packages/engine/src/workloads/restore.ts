// Which snapshot a starting sandbox's processes come from, if any: the one its Sandbox names (a
// resume, a fork), or its template's golden snapshot for a sandbox that has no files yet.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ANNOTATION_SANDBOX_TEMPLATE_REF, type Sandbox } from '@asb/api';
import { EngineError } from '../errors.ts';
import { ANNOTATION_GOLDEN_SNAPSHOT, ANNOTATION_RESTORE_SNAPSHOT, runtimeSpecHash } from '../snapshot-annotations.ts';
import { sandboxDir, type StartSource, type WorkloadsDeps } from './workload.ts';

export type RestoreDeps = Pick<WorkloadsDeps, 'config' | 'driver' | 'store' | 'log' | 'snapshots'>;

/**
 * A snapshot to start from: the one the Sandbox names (a resume, a fork), else its template's
 * golden snapshot for a sandbox that has no files yet, when its spec matches the snapshot's.
 * `explicit: false` (a reset) ignores the named one: a reset goes back to the template's state.
 */
export function startSource(deps: RestoreDeps, sb: Sandbox, opts: { explicit: boolean }): StartSource | undefined {
  const { snapshots, store, driver, log } = deps;
  const ns = sb.metadata.namespace;
  const dir = sandboxDir(deps.config.home, ns, sb.metadata.name!);
  const fresh = !['workspace.img', 'workspace', 'disk.img', 'disk'].some((f) => existsSync(join(dir, f)));
  const named = opts.explicit ? sb.metadata.annotations?.[ANNOTATION_RESTORE_SNAPSHOT] : undefined;
  if (named) {
    const snapshot = snapshots.get(named);
    // A snapshot holds a sandbox's memory and files: it never crosses into another namespace.
    if (snapshot.namespace !== ns) {
      throw new EngineError(
        'Invalid',
        `snapshot "${named}" belongs to namespace "${snapshot.namespace}"; ` +
          `a sandbox in "${ns}" cannot start from it`,
      );
    }
    return { snapshot, copyFiles: fresh };
  }
  const templateName = sb.metadata.annotations?.[ANNOTATION_SANDBOX_TEMPLATE_REF];
  const template = templateName ? store.getSync('SandboxTemplate', ns, templateName) : undefined;
  const golden = template?.metadata.annotations?.[ANNOTATION_GOLDEN_SNAPSHOT];
  if (!golden || !fresh || !driver.restore) return undefined;
  const about = { sandbox: sb.metadata.name, template: templateName, snapshot: golden };
  try {
    const snapshot = snapshots.get(golden);
    if (snapshot.namespace !== ns) {
      throw new EngineError('Invalid', `it belongs to namespace "${snapshot.namespace}", not "${ns}"`);
    }
    if (snapshot.specHash === runtimeSpecHash(sb)) return { snapshot, copyFiles: true };
    log.warn(about, 'golden snapshot ignored: the sandbox spec differs from the one it was taken with; booting');
  } catch (err) {
    log.warn({ ...about, err: (err as Error).message }, 'golden snapshot unusable; booting');
  }
  return undefined;
}
