// The engine's errors carry a wire reason (@asb/api's one table of reasons and HTTP statuses).
// Bodies mirror Kubernetes' Status and upstream's router (`detail`), so Kubernetes-minded and
// upstream clients both find the message.
import { STATUS_OF, type Reason } from '@asb/api';

export { STATUS_OF, type Reason };
export interface FieldCause {
  field: string;
  message: string;
}

export class EngineError extends Error {
  constructor(
    readonly reason: Reason,
    message: string,
    readonly causes: FieldCause[] = [],
  ) {
    super(message);
    this.name = 'EngineError';
  }
  get status(): number {
    return STATUS_OF[this.reason];
  }
}

export function statusBody(reason: Reason, message: string, causes: FieldCause[] = []) {
  return {
    kind: 'Status',
    apiVersion: 'v1',
    status: 'Failure',
    reason,
    code: STATUS_OF[reason],
    message,
    detail: message,
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
