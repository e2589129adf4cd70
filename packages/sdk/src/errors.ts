// Typed errors. Wire reasons (@asb/api's one set) are translated in ONE table, typed over the
// whole set: a new reason without an error class does not compile. Every message says what to do.
import type { Reason } from '@asb/api/reasons';

export class SandboxError extends Error {
  constructor(
    message: string,
    readonly status?: number,
    readonly reason?: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}
/** The sandbox, template or file does not exist. */
export class NotFoundError extends SandboxError {}
/** The request was refused as invalid (bad spec, path outside the sandbox, malformed body). */
export class InvalidError extends SandboxError {
  constructor(
    message: string,
    status?: number,
    reason?: string,
    readonly causes: Array<{ field: string; message: string }> = [],
  ) {
    super(message, status, reason);
  }
}
/** A command or an operation ran out of time. `result` holds what the command printed until then. */
export class TimeoutError extends SandboxError {
  result?: { stdout: string; stderr: string; exitCode: number; truncated?: true };
}
/** The engine or the sandbox cannot serve now (not running, stopped, engine down). */
export class UnavailableError extends SandboxError {}
/** The bearer token was missing or wrong. */
export class AuthError extends SandboxError {}
/** The engine's disk has no room for it (a snapshot): nothing changed, the sandbox keeps running. */
export class InsufficientStorageError extends SandboxError {}
/** The request conflicts with the sandbox's state (already suspended, not suspended, a snapshot
 *  in use): nothing changed; do what the message says first. */
export class ConflictError extends SandboxError {}
/** Something failed inside the engine or the sandbox that the request did not cause. */
export class InternalError extends SandboxError {}
/** An upload exceeded the size limit. */
export class PayloadTooLargeError extends InvalidError {}

type Ctor = new (message: string, status?: number, reason?: string) => SandboxError;

const BY_REASON = {
  NotFound: NotFoundError,
  Invalid: InvalidError,
  BadRequest: InvalidError,
  MalformedJSON: InvalidError,
  PathOutsideSandbox: InvalidError,
  AlreadyExists: InvalidError,
  Conflict: ConflictError,
  PayloadTooLarge: PayloadTooLargeError,
  PermissionDenied: InvalidError,
  // The engine's answers to a client too slow or too large at the HTTP level: no finer class.
  RequestHeaderFieldsTooLarge: SandboxError,
  RequestTimeout: SandboxError,
  Timeout: TimeoutError,
  Unavailable: UnavailableError,
  BadGateway: UnavailableError,
  Unauthorized: AuthError,
  InsufficientStorage: InsufficientStorageError,
  Internal: InternalError,
} satisfies Record<Reason, Ctor>;

const BY_STATUS: Record<number, Ctor> = {
  400: InvalidError,
  401: AuthError,
  403: InvalidError,
  404: NotFoundError,
  409: ConflictError,
  413: PayloadTooLargeError,
  422: InvalidError,
  502: UnavailableError,
  507: InsufficientStorageError,
  503: UnavailableError,
  504: TimeoutError,
};

/** Builds the typed error for a non-2xx answer of the engine, the router or the agent. */
export function errorFromResponse(status: number, body: unknown, what: string): SandboxError {
  const b = (body ?? {}) as {
    reason?: string;
    message?: string;
    detail?: unknown;
    details?: { causes?: Array<{ field: string; message: string }> };
  };
  const detail =
    typeof b.detail === 'string' ? b.detail : b.detail !== undefined ? JSON.stringify(b.detail) : undefined;
  const message = `${what}: ${b.message ?? detail ?? `HTTP ${status}`}`;
  const byReason = b.reason && Object.hasOwn(BY_REASON, b.reason) ? BY_REASON[b.reason as Reason] : undefined;
  const Ctor = byReason ?? BY_STATUS[status] ?? SandboxError;
  if (Ctor === InvalidError || Ctor === PayloadTooLargeError)
    return new (Ctor as typeof InvalidError)(message, status, b.reason, b.details?.causes ?? []);
  return new Ctor(message, status, b.reason);
}
