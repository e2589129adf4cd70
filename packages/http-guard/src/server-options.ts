// Node's own guards for an HTTP/1.1 server, set from one place: how large the header block may
// be and how long it may take to arrive. A whole-request deadline (node's requestTimeout) is
// deliberately off: it would cut large uploads that keep flowing; bodies are bounded by
// idleness instead (watchdog.ts). Node checks both deadlines on a timer, so the interval is a
// fraction of the shortest one: a slow client is closed within ~1.25 times its bound.
import type http from 'node:http';

export interface ServerLimits {
  /** The request line and headers must all arrive within this long (slowloris); 408 after. */
  headersTimeoutMs: number;
  /** Bytes of the request line and headers together; 431 above. */
  maxHeaderBytes: number;
  /** A request body that makes no progress for this long is answered 408 and its connection closed. */
  bodyIdleTimeoutMs: number;
  /** Connections open at once; those over are closed as accepted (limitConnections). */
  maxConnections: number;
}

export function serverOptions(limits: ServerLimits): http.ServerOptions {
  const shortest = Math.min(
    limits.headersTimeoutMs,
    limits.bodyIdleTimeoutMs > 0 ? limits.bodyIdleTimeoutMs : Infinity,
  );
  return {
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: 0,
    maxHeaderSize: limits.maxHeaderBytes,
    connectionsCheckingInterval: Math.max(100, Math.min(5_000, Math.floor(shortest / 4))),
  };
}

/**
 * At most `max` connections at once: node closes any beyond as soon as they are accepted (the
 * client sees its connection reset, before any byte is read). `onDrop` counts them.
 */
export function limitConnections(server: http.Server, max: number, onDrop?: () => void): void {
  server.maxConnections = max;
  if (onDrop) server.on('drop', onDrop);
}

/** A positive number from the environment, or the default (a bad value is an error, not ignored). */
export function limitFromEnv(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const text = env[name];
  if (text === undefined || text === '') return fallback;
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name}=${text}: give a positive number`);
  return n;
}
