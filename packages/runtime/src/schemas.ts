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
