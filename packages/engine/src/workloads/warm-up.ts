// A warm pool member's first commands, run before it counts as ready.
import type { ExecRequest } from '@asb/runtime';
import type { Workload } from './workload.ts';

/** Typed by the runtime's schema (ExecRequest), so a change to the agent's request fails to
 *  compile here instead of failing every warm-up at run time. */
const WARM_UP_COMMAND: ExecRequest = { command: 'true' };
const WARM_UP_BODY = JSON.stringify(WARM_UP_COMMAND);

/**
 * A fresh agent's first command costs ~110 ms instead of ~15 (the exec path is not compiled
 * yet, the spawner has not forked, the binaries' pages are not cached). A pool member pays
 * that before it counts as ready, so the claim that takes it does not.
 */
export async function warmUp(w: Workload): Promise<void> {
  for (let i = 0; i < 3 && !w.stopping; i++) {
    const headers = { 'content-type': 'application/json' };
    const res = await w.agent!.request('POST', '/v1/exec', headers, WARM_UP_BODY).catch(() => undefined);
    if (!res) return;
    for await (const _ of res.body) {
      /* drain */
    }
  }
}
