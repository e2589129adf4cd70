// What a pull can fail with, named as Kubernetes and the registry API name them, so that the
// engine can report a Sandbox's ErrImagePull with the registry's own words.

export type RegistryErrorCode =
  /** The registry refused the credentials, or wants some and none were given. */
  | 'Unauthorized'
  /** No such repository, tag or digest. */
  | 'NotFound'
  /** Nothing answered: connection refused, DNS, TLS, timeout. */
  | 'Unreachable'
  /** What arrived is not what its digest says (tampered, truncated, or a broken mirror). */
  | 'BadDigest'
  /** The registry answered something this client cannot use (no image for linux/amd64, an unknown media type). */
  | 'Unsupported'
  /** No room on this machine for what the pull stores. */
  | 'DiskFull'
  /** Any other answer of the registry. */
  | 'RegistryError';

export class RegistryError extends Error {
  override name = 'RegistryError';
  constructor(
    readonly code: RegistryErrorCode,
    message: string,
    readonly status?: number,
  ) {
    super(message);
  }
}

/** The registry's own message from an error body (`{"errors":[{"code","message","detail"}]}`). */
export function registryMessage(body: string): string | undefined {
  try {
    const errors = (JSON.parse(body) as { errors?: Array<{ code?: string; message?: string }> }).errors;
    const first = errors?.[0];
    if (!first) return undefined;
    return [first.code?.toLowerCase().replace(/_/g, ' '), first.message].filter(Boolean).join(': ');
  } catch {
    return undefined;
  }
}

/** ENOSPC as the error a pull reports (`what`: what found no room); anything else as it is. */
export function diskFullOr(err: unknown, what: string): unknown {
  return (err as NodeJS.ErrnoException).code === 'ENOSPC'
    ? new RegistryError('DiskFull', `no space left on ${what}`)
    : err;
}
