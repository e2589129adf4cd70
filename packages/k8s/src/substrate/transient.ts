// What a controller does with an API server that is busy or still starting: right after CRDs are
// applied it answers 429 ("storage is (re)initializing") for a while, and under load 5xx. Those
// are tried again rather than ending the process at its start (a Deployment would restart it,
// but only after a back-off of its own, and a crash loop on every fresh install is no start).

/** A refusal worth trying again: no answer at all, 429, or a server error. */
export function isTransient(err: unknown): boolean {
  const code = (err as { code?: number; statusCode?: number }).code ?? (err as { statusCode?: number }).statusCode;
  return code === undefined || code === 429 || code >= 500;
}

/** Calls `fn` until it succeeds, waiting 100 ms, 200 ms, ... 2 s between transient failures, for
 *  up to `forMs`; anything else, or the last failure, is thrown. */
export async function retryTransient<T>(
  fn: () => Promise<T>,
  opts: { forMs?: number; retryOn?: (err: unknown) => boolean; onRetry?: (err: unknown) => void } = {},
): Promise<T> {
  const deadline = Date.now() + (opts.forMs ?? 60_000);
  const retryOn = opts.retryOn ?? isTransient;
  for (let wait = 100; ; wait = Math.min(2000, wait * 2)) {
    try {
      return await fn();
    } catch (err) {
      if (!retryOn(err) || Date.now() + wait > deadline) throw err;
      opts.onRetry?.(err);
      await new Promise((r) => setTimeout(r, wait));
    }
  }
}
