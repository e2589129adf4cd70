// The slow-client bound for request bodies: a body that makes no progress for idleMs while the
// server is waiting for it ends the request (408, connection closed). Progress is bytes read from
// the socket. A body the server itself is not reading (the request's buffer holds data because
// the consumer applies backpressure, e.g. a sandbox writing slowly to disk) is not the client's
// fault and never counts as idle. Nothing here reads the body: the watchdog only looks, so it
// can sit beside a body that is piped elsewhere (the sandbox proxy) without changing its flow.
// Responses are not watched: a command that streams output for an hour is fine.
import type http from 'node:http';
import { bodyPending } from './body.ts';

/** Starts watching; returns a function that stops it. Stops by itself once the body is whole. */
export function watchBodyProgress(req: http.IncomingMessage, idleMs: number, onStall: () => void): () => void {
  if (idleMs <= 0 || !bodyPending(req)) return () => {};
  const socket = req.socket;
  let seenBytes = socket.bytesRead;
  let progressAt = Date.now();
  const tick = () => {
    if (req.complete || req.destroyed) {
      stop();
      return;
    }
    const bytes = socket.bytesRead;
    if (bytes !== seenBytes || req.readableLength > 0) {
      seenBytes = bytes;
      progressAt = Date.now();
      return;
    }
    if (Date.now() - progressAt >= idleMs) {
      stop();
      onStall();
    }
  };
  const timer = setInterval(tick, Math.max(50, Math.min(5_000, Math.floor(idleMs / 4))));
  timer.unref();
  const stop = () => {
    clearInterval(timer);
    req.off('end', stop).off('close', stop);
  };
  req.on('end', stop).on('close', stop);
  return stop;
}
