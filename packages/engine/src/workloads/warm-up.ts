// A warm pool member's first commands, run before it counts as ready.
import type { Workload } from './workload.ts';

/**
 * A fresh agent's first command costs ~110 ms instead of ~15 (the exec path is not compiled
 * yet, the spawner has not forked, the binaries' pages are not cached). A pool member pays
 * that before it counts as ready, so the claim that takes it does not.
 */
export async function warmUp(w: Workload): Promise<void> {
  for (let i = 0; i < 3 && !w.stopping; i++) {
    const headers = { 'content-type': 'application/json' };
    const res = await w.agent!.request('POST', '/v1/exec', headers, '{"command":"true"}').catch(() => undefined);
    if (!res) return;
    for await (const _ of res.body) { /* drain */ }
  }
}
