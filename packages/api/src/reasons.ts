// The one set of error reasons on the wire (the engine's API, the sandbox agent's, the router's)
// with their HTTP statuses. A table over the union: a reason without a status does not compile.
// Bodies carry the reason as Kubernetes' Status does (`reason`), so clients branch on it, not on
// the status. No imports: the in-sandbox agent bundles this file and nothing else of @asb/api.

export const STATUS_OF = {
  BadRequest: 400,
  /** The agent: a path that leaves the workspace (`..`, an absolute path outside it). */
  PathOutsideSandbox: 400,
  /** The agent: a body that is not JSON. */
  MalformedJSON: 400,
  Unauthorized: 401,
  PermissionDenied: 403,
  NotFound: 404,
  /** The client was too slow: its headers or its body stopped arriving. */
  RequestTimeout: 408,
  Conflict: 409,
  AlreadyExists: 409,
  PayloadTooLarge: 413,
  Invalid: 422,
  RequestHeaderFieldsTooLarge: 431,
  Internal: 500,
  BadGateway: 502,
  Unavailable: 503,
  Timeout: 504,
  InsufficientStorage: 507,
} as const satisfies Record<string, number>;

export type Reason = keyof typeof STATUS_OF;

export const REASONS = Object.keys(STATUS_OF) as Reason[];

export function isReason(s: unknown): s is Reason {
  return typeof s === 'string' && Object.hasOwn(STATUS_OF, s);
}
