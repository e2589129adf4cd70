// The agent's error reasons: those of the one wire table (@asb/api/reasons, statuses with them)
// that the agent answers. Bodies are upstream's FastAPI shape (`detail`) plus a stable `reason`.
import { STATUS_OF, type Reason as WireReason } from '@asb/api/reasons';

export type Reason = Extract<
  WireReason,
  | 'PathOutsideSandbox'
  | 'MalformedJSON'
  | 'Invalid'
  | 'PermissionDenied'
  | 'NotFound'
  | 'PayloadTooLarge'
  | 'Conflict'
  | 'InsufficientStorage'
  | 'Internal'
  | 'BadGateway'
>;

export { STATUS_OF };

/** Every error response's body. `message` repeats `detail` for upstream clients, whose server
 *  answered some errors as `{"message": ...}`. */
export interface ErrorBody {
  detail: string;
  reason: Reason;
  message: string;
}

export class AgentError extends Error {
  constructor(
    readonly reason: Reason,
    message: string,
  ) {
    super(message);
    this.name = 'AgentError';
  }
  get status(): number {
    return STATUS_OF[this.reason];
  }
  body(): ErrorBody {
    return { detail: this.message, reason: this.reason, message: this.message };
  }
}

export function toAgentError(err: unknown): AgentError {
  if (err instanceof AgentError) return err;
  const e = err as NodeJS.ErrnoException;
  if (e?.code === 'EACCES' || e?.code === 'EPERM' || e?.code === 'EROFS')
    return new AgentError(
      'PermissionDenied',
      `permission denied: ${e.path ?? ''} (the sandbox user cannot write there)`,
    );
  if (e?.code === 'ENOENT') return new AgentError('NotFound', 'File not found');
  if (e?.code === 'ENOTDIR') return new AgentError('NotFound', 'Path is not a directory');
  if (e?.code === 'EISDIR') return new AgentError('Conflict', 'Path is a directory');
  if (e?.code === 'ELOOP' || e?.code === 'ENAMETOOLONG')
    return new AgentError(
      'Invalid',
      `path cannot be resolved: ${e.code === 'ELOOP' ? 'too many symbolic links' : 'name too long'}`,
    );
  if (e?.code === 'ENOTEMPTY') return new AgentError('Conflict', 'Directory is not empty (pass recursive=1)');
  if (e?.code === 'EEXIST') return new AgentError('Conflict', `${e.path ? `"${e.path}"` : 'the path'} exists already`);
  if (e?.code === 'ENOSPC' || e?.code === 'EDQUOT')
    return new AgentError(
      'InsufficientStorage',
      "no space left on the sandbox's disk (its ephemeral-storage limit, or the volume's size)",
    );
  return new AgentError('Internal', e instanceof Error ? e.message : String(err));
}
