// One registry of the engine's error reasons and their HTTP statuses (a Record, so a reason
// without a status fails to compile). Bodies mirror Kubernetes' Status and upstream's router
// (`detail`), so Kubernetes-minded and upstream clients both find the message.

export type Reason = 'NotFound' | 'AlreadyExists' | 'Invalid' | 'BadRequest' | 'Unauthorized' | 'PayloadTooLarge' | 'RequestTimeout' | 'RequestHeaderFieldsTooLarge' | 'Timeout' | 'Unavailable' | 'BadGateway' | 'Conflict' | 'InsufficientStorage' | 'Internal';

export const STATUS_OF: Record<Reason, number> = {
  BadRequest: 400,
  Invalid: 422,
  Unauthorized: 401,
  NotFound: 404,
  Conflict: 409,
  AlreadyExists: 409,
  PayloadTooLarge: 413,
  /** The client was too slow: its headers or its body stopped arriving. */
  RequestTimeout: 408,
  RequestHeaderFieldsTooLarge: 431,
  Timeout: 504,
  Unavailable: 503,
  BadGateway: 502,
  InsufficientStorage: 507,
  Internal: 500,
};

export interface FieldCause { field: string; message: string }

export class EngineError extends Error {
  constructor(readonly reason: Reason, message: string, readonly causes: FieldCause[] = []) {
    super(message);
    this.name = 'EngineError';
  }
  get status(): number { return STATUS_OF[this.reason]; }
}

export function statusBody(reason: Reason, message: string, causes: FieldCause[] = []) {
  return {
    kind: 'Status', apiVersion: 'v1', status: 'Failure', reason, code: STATUS_OF[reason], message, detail: message,
    ...(causes.length ? { details: { causes } } : {}),
  };
}

export function toEngineError(err: unknown): EngineError {
  if (err instanceof EngineError) return err;
  // The store's errors (packages/lifecycle/src/substrate.ts), by name.
  const name = (err as Error)?.name;
  if (name === 'ConflictError') return new EngineError('Conflict', (err as Error).message);
  if (name === 'AlreadyExistsError') return new EngineError('AlreadyExists', (err as Error).message);
  if (name === 'NotFoundError') return new EngineError('NotFound', (err as Error).message);
  return new EngineError('Internal', err instanceof Error ? err.message : String(err));
}
