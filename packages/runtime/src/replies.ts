import { z } from 'zod';

// What the agent answers, parsed by whoever reads them (the engine, the SDK), as the sandbox is the
// untrusted side. Loose objects: a newer agent may add fields; what is read is checked.
// A module of its own, apart from the request schemas: the agent only imports types from here, so
// these schemas stay out of its bundle and of the heap of every idle sandbox.

/** `truncated` and `timed_out` are present only when true, so upstream's exact shape is kept. */
export const ExecuteResponse = z.looseObject({
  stdout: z.string(),
  stderr: z.string(),
  exit_code: z.number(),
  truncated: z.boolean().optional(),
  timed_out: z.boolean().optional(),
});
export type ExecuteResponse = z.infer<typeof ExecuteResponse>;

/** One line of an NDJSON stream (/v1/exec, /v1/processes/{id}/output), in the order it happened.
 *  Output events say `encoding: "base64"` when their data is base64 (asked for with the request's
 *  `encoding`); without it, data is text. A client reads both, so an agent that predates the
 *  field (and answers text) is still understood. */
export const ExecEvent = z.discriminatedUnion('type', [
  z.object({ type: z.literal('start'), pid: z.number() }),
  z.object({ type: z.enum(['stdout', 'stderr']), data: z.string(), encoding: z.literal('base64').optional() }),
  z.object({
    type: z.literal('exit'),
    exitCode: z.number().nullable(),
    signal: z.string().nullable(),
    timedOut: z.boolean(),
    durationMs: z.number(),
  }),
]);
export type ExecEvent = z.infer<typeof ExecEvent>;

export const StartProcessResponse = z.looseObject({ id: z.string(), pid: z.number() });
export type StartProcessResponse = z.infer<typeof StartProcessResponse>;
export const ProcessInfo = z.looseObject({
  id: z.string(),
  pid: z.number(),
  command: z.string(),
  running: z.boolean(),
  exitCode: z.number().nullable(),
  signal: z.string().nullable(),
  startedAt: z.string(),
});
export type ProcessInfo = z.infer<typeof ProcessInfo>;
export const ProcessList = z.array(ProcessInfo);

export const HealthResponse = z.looseObject({ status: z.literal('ok'), message: z.string() });
export type HealthResponse = z.infer<typeof HealthResponse>;
/** GET /v1/exec-context (processes.ts ExecContext): parsed by the engine, to which the sandbox is
 *  the untrusted side. */
export const ExecContextResponse = z.object({
  env: z.record(z.string(), z.string()),
  cwd: z.string().startsWith('/'),
  shell: z.array(z.string()).min(1),
  defaultTimeoutMs: z.number().int().nonnegative(),
  maxOutputBytes: z.number().int().positive(),
});
export type ExecContextResponse = z.infer<typeof ExecContextResponse>;
export interface UploadResponse {
  message: string;
}
export const ExistsResponse = z.looseObject({ path: z.string(), exists: z.boolean() });
export type ExistsResponse = z.infer<typeof ExistsResponse>;
export const WriteFileResponse = z.looseObject({ path: z.string(), size: z.number() });
export type WriteFileResponse = z.infer<typeof WriteFileResponse>;
export const FileEntry = z.looseObject({
  name: z.string(),
  size: z.number(),
  type: z.enum(['file', 'directory']),
  mod_time: z.number(),
});
export type FileEntry = z.infer<typeof FileEntry>;
export const FileList = z.array(FileEntry);
export const FileStat = z.looseObject({
  name: z.string(),
  path: z.string(),
  type: z.enum(['file', 'directory', 'symlink', 'other']),
  size: z.number(),
  mode: z.number(),
  mtimeMs: z.number(),
});
export type FileStat = z.infer<typeof FileStat>;

/** Parses a reply of the sandbox with its schema: a reply that does not match is an error that
 *  says what was wrong with it (the first few issues), never a value of the wrong shape. */
export function parseReply<S extends z.ZodType>(schema: S, value: unknown, what: string): z.infer<S> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issues = r.error.issues.slice(0, 3).map((i) => `${i.path.length ? i.path.join('.') : '(reply)'}: ${i.message}`);
  const said = issues.join('; ');
  throw new MalformedReplyError(`${what}: the sandbox sent a malformed reply (${said}); it is not a runtime agent's`);
}

export class MalformedReplyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MalformedReplyError';
  }
}
