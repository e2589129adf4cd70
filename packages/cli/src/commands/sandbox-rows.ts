// Pure row builders, exported so tests check what `asb ls` prints without a terminal.
import type { SandboxInfo } from '@asb/sdk';
import { age } from '../output.ts';

export const SANDBOX_HEADERS = ['name', 'namespace', 'template', 'phase', 'ready', 'startup', 'age'];

export function sandboxRow(s: SandboxInfo, now = Date.now()): string[] {
  return [
    s.name,
    s.namespace,
    s.template ?? '',
    s.phase,
    s.ready ? 'True' : 'False',
    s.startupMs !== undefined ? `${s.startupMs}ms` : '',
    age(s.createdAt, now),
  ];
}
