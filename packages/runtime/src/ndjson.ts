// NDJSON responses (/v1/exec, /v1/processes/{id}/output): one event a line, as it happens, with
// flow control. A command can write faster than its client reads (`yes`, a slow network), and
// the agent must not buffer the difference in memory: a foreground command is paused (its pipes
// fill and it blocks in write) while the client is behind; a follower of a background process,
// which cannot pause the process for others, is ended once it falls too far behind (it can
// follow again and gets the replay).
import type { ExecEvent } from './replies.ts';

/** Queued bytes above which a foreground command is paused. */
const HIGH_WATER_BYTES = 256 * 1024;
/** Queued bytes at which a follower that cannot pause its source is dropped. */
const FOLLOWER_MAX_BYTES = 16 * 1024 * 1024;

export interface EventSource {
  /** Starts delivering events; `end` closes the stream early. Returns the unsubscribe. */
  subscribe(push: (ev: ExecEvent) => void, end: () => void): () => void;
  /** Flow control, when the source can be held back. */
  pause?(): void;
  resume?(): void;
  /** The client went away before the end. */
  onCancel?(): void;
}

export function ndjsonResponse(source: EventSource): Response {
  let unsubscribe = () => {};
  let paused = false;
  const enc = new TextEncoder();
  const stream = new ReadableStream<Uint8Array>(
    {
      start(controller) {
        let closed = false;
        const end = () => {
          if (!closed) {
            closed = true;
            unsubscribe();
            controller.close();
          }
        };
        const push = (ev: ExecEvent) => {
          if (closed) return;
          controller.enqueue(enc.encode(JSON.stringify(ev) + '\n'));
          if (ev.type === 'exit') return end();
          const queued = HIGH_WATER_BYTES - (controller.desiredSize ?? 0);
          if (source.pause && !paused && queued >= HIGH_WATER_BYTES) {
            paused = true;
            source.pause();
          } else if (!source.pause && queued >= FOLLOWER_MAX_BYTES) end();
        };
        unsubscribe = source.subscribe(push, end);
        if (closed) unsubscribe();
      },
      pull() {
        // Called once the queue is below the high-water mark again.
        if (paused) {
          paused = false;
          source.resume?.();
        }
      },
      cancel() {
        unsubscribe();
        source.onCancel?.();
      },
    },
    { highWaterMark: HIGH_WATER_BYTES, size: (chunk) => chunk.byteLength },
  );
  return new Response(stream, { headers: { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' } });
}
