// Every JSON body that crosses the sandbox boundary, with limits. The engine and the SDK import
// these types, so both sides are written against one definition.
import { z } from 'zod';

const MiB = 1024 * 1024;
const env = z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'environment variable names are letters, digits and _').max(256), z.string().max(MiB))
  .refine((e) => Object.keys(e).length <= 256, 'at most 256 environment variables');

/** Upstream's POST /execute, plus our optional fields. */
export const ExecuteRequest = z.object({
  command: z.string().min(1, 'command must not be empty').max(MiB),
  timeout: z.number().positive().max(86_400).optional(),
  env: env.optional(),
  cwd: z.string().max(4096).optional(),
  stdin: z.string().max(16 * MiB).optional(),
});
export type ExecuteRequest = z.infer<typeof ExecuteRequest>;

export interface ExecuteResponse { stdout: string; stderr: string; exit_code: number; truncated?: boolean; timed_out?: boolean }

/** POST /v1/exec and POST /v1/processes. */
export const ExecRequest = z.object({
  command: z.string().min(1, 'command must not be empty').max(MiB),
  env: env.optional(),
  cwd: z.string().max(4096).optional(),
  timeoutMs: z.number().int().positive().max(86_400_000).optional(),
  stdin: z.string().max(16 * MiB).optional(),
});
export type ExecRequest = z.infer<typeof ExecRequest>;

export const SignalRequest = z.object({
  signal: z.enum(['SIGTERM', 'SIGKILL', 'SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGSTOP', 'SIGCONT']),
});

export type ExecEvent =
  | { type: 'start'; pid: number }
  | { type: 'stdout' | 'stderr'; data: string }
  | { type: 'exit'; exitCode: number | null; signal: string | null; timedOut: boolean; durationMs: number };

export interface ProcessInfo { id: string; pid: number; command: string; running: boolean; exitCode: number | null; signal: string | null; startedAt: string }
export interface FileEntry { name: string; size: number; type: 'file' | 'directory'; mod_time: number }
export interface FileStat { name: string; path: string; type: 'file' | 'directory' | 'symlink' | 'other'; size: number; mode: number; mtimeMs: number }
