// What a failed call to a Kubernetes API server means, read once for every client of one (the
// controller's store and workloads, the SDK's connector, GKE snapshots). Each turns the kind of
// failure into its own error classes with a table over KubeFailure, so a new kind does not compile
// until every table says what it is.

export type KubeFailure = 'NotFound' | 'AlreadyExists' | 'Conflict' | 'Forbidden' | 'Invalid' | 'Unreachable' | 'Other';

export interface KubeApiFailure {
  kind: KubeFailure;
  /** The HTTP status; undefined when no answer came (the server could not be reached). */
  code?: number;
  /** The Status reason (AlreadyExists, Conflict, NotFound, ...), when the body is a Status. */
  reason?: string;
  /** The Status message, else the body's text, else the client's own message. */
  message: string;
  /** A 404 for the resource type itself (its API is not served), not for one object. */
  noSuchResource: boolean;
}

/** Reads an error of @kubernetes/client-node (an ApiException: code and body) or of the network. */
export function readKubeApiError(err: unknown): KubeApiFailure {
  const e = err as { code?: unknown; body?: unknown; message?: string } | undefined;
  const code = typeof e?.code === 'number' ? e.code : undefined;
  let body = e?.body;
  const text = typeof body === 'string' ? body : undefined;
  if (text !== undefined) {
    try {
      body = JSON.parse(text);
    } catch {
      /* text */
    }
  }
  const status = body && typeof body === 'object' ? (body as { message?: unknown; reason?: unknown }) : undefined;
  const message = typeof status?.message === 'string' ? status.message : text || (e?.message ?? String(err));
  const reason = typeof status?.reason === 'string' ? status.reason : undefined;
  const raw = text ?? JSON.stringify(body ?? '');
  const noSuchResource = code === 404 && /404 page not found|could not find the requested resource/.test(raw);
  return { kind: kindOf(code, reason), code, reason, message, noSuchResource };
}

function kindOf(code: number | undefined, reason: string | undefined): KubeFailure {
  if (code === undefined) return 'Unreachable';
  if (code === 404) return 'NotFound';
  if (code === 409) return reason === 'AlreadyExists' ? 'AlreadyExists' : 'Conflict';
  if (code === 401 || code === 403) return 'Forbidden';
  if (code === 422) return 'Invalid';
  return 'Other';
}

/** The error a client makes of a failure, by kind: `what` is the call ("get Sandbox ns/x"). */
export type KubeErrorTable<E> = Record<KubeFailure, (what: string, f: KubeApiFailure) => E>;

export function mapKubeApiError<E>(err: unknown, what: string, table: KubeErrorTable<E>): E {
  const f = readKubeApiError(err);
  return table[f.kind](what, f);
}
