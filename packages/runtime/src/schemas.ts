// Every message that crosses the sandbox boundary, with its limits: the agent trusts no request,
// and the engine and the SDK import these same types (`@asb/runtime`), so both sides are written
// against one definition instead of two hand-kept copies.
import { z } from 'zod';

const MiB = 1024 * 1024;

/** Limits of JSON bodies. A body is read with a cap (app.ts) before it is parsed, so a client
 *  cannot make the agent buffer more than this whatever the fields say. */
export const LIMITS = {
  jsonBodyBytes: 20 * MiB,
  commandChars: MiB,
  envEntries: 256,
  envValueChars: MiB,
  stdinChars: 16 * MiB,
  pathChars: 4096,
} as const;

const env = z
  .record(
    z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'environment variable names are letters, digits and _')
      .max(256),
    z.string().max(LIMITS.envValueChars),
  )
  .refine((e) => Object.keys(e).length <= LIMITS.envEntries, `at most ${LIMITS.envEntries} environment variables`);

const command = z.string().min(1, 'command must not be empty').max(LIMITS.commandChars);
const cwd = z.string().max(LIMITS.pathChars);
const stdin = z.string().max(LIMITS.stdinChars);

/** Upstream's POST /execute (`{command}`), plus our optional fields. `timeout` is in seconds, as
 *  SANDBOX_EXEC_TIMEOUT_SECONDS is. */
export const ExecuteRequest = z.object({
  command,
  timeout: z.number().positive().max(86_400).optional(),
  env: env.optional(),
  cwd: cwd.optional(),
  stdin: stdin.optional(),
});
export type ExecuteRequest = z.infer<typeof ExecuteRequest>;

/** `truncated` and `timed_out` are present only when true, so upstream's exact shape is kept. */
export const ExecuteResponse = z.looseObject({
  stdout: z.string(),
  stderr: z.string(),
  exit_code: z.number(),
  truncated: z.boolean().optional(),
  timed_out: z.boolean().optional(),
});
export type ExecuteResponse = z.infer<typeof ExecuteResponse>;

/** How the output events of /v1/exec carry stdout and stderr: `utf8` text (invalid UTF-8 becomes
 *  U+FFFD; the default, compact for text) or `base64` of the exact bytes (binary-safe: what
 *  `asb exec ID -- cat image.png > image.png` needs). */
export const OUTPUT_ENCODINGS = ['utf8', 'base64'] as const;
export type OutputEncoding = (typeof OUTPUT_ENCODINGS)[number];

/** POST /v1/exec (streamed) and POST /v1/processes (background; no timeout unless given). */
export const ExecRequest = z.object({
  command,
  env: env.optional(),
  cwd: cwd.optional(),
  timeoutMs: z.number().int().positive().max(86_400_000).optional(),
  stdin: stdin.optional(),
  encoding: z.enum(OUTPUT_ENCODINGS).optional(),
});
export type ExecRequest = z.infer<typeof ExecRequest>;

export const SIGNALS = [
  'SIGTERM',
  'SIGKILL',
  'SIGINT',
  'SIGHUP',
  'SIGQUIT',
  'SIGUSR1',
  'SIGUSR2',
  'SIGSTOP',
  'SIGCONT',
] as const;
export const SignalRequest = z.object({ signal: z.enum(SIGNALS) });
export type SignalRequest = z.infer<typeof SignalRequest>;

/** `--main '<json argv>'`: the sandbox's main process (a template container's command + args). */
export const MainArgv = z
  .array(z.string().max(LIMITS.commandChars))
  .min(1, 'the main process needs a program')
  .max(4096);

// ---- replies: what the agent answers, parsed by whoever reads them (the engine, the SDK), as the
// sandbox is the untrusted side. Loose objects: a newer agent may add fields; what is read is checked.

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
