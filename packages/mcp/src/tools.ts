// The tools an agent gets: shell commands, code in four languages, files, and the sandbox's own
// lifecycle (reset, suspend, resume). Every tool works on the session's sandbox (session.ts).
// Failures of the user's code (non-zero exits, timeouts) are results the model can read; only a
// call that cannot be carried out at all is an error result, with a message that says why.
import { z } from 'zod';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { SandboxError, TimeoutError, NotFoundError, OutputKeeper, type Sandbox, type CommandResult } from '@asb/sdk';
import type { SandboxSession } from './session.ts';

export interface ToolLimits {
  /** Characters of stdout and of stderr returned per call; the middle of longer output is cut. */
  maxOutputChars: number;
  /** Bytes read_file returns at most. */
  maxReadBytes: number;
  /** Default and maximum command timeouts, seconds. */
  defaultTimeoutS: number;
  maxTimeoutS: number;
}

export const DEFAULT_LIMITS: ToolLimits = {
  maxOutputChars: 64_000,
  maxReadBytes: 1024 * 1024,
  defaultTimeoutS: 120,
  maxTimeoutS: 3600,
};

/** Keeps the head and the tail (where errors are) of long output, and says what was cut. For
 *  text already in memory; a command's output is cut the same way while it streams (run()'s
 *  maxOutputChars), so it is never held whole. */
export function capOutput(text: string, max: number): { text: string; truncated: boolean } {
  const keeper = new OutputKeeper(max);
  keeper.push(text);
  return keeper.result();
}

const LANGUAGES = {
  python: { file: 'main.py', run: 'python3 "$d/main.py"' },
  node: { file: 'main.mjs', run: 'node "$d/main.mjs"' },
  go: { file: 'main.go', run: 'GOFLAGS= go run "$d/main.go"' },
  bash: { file: 'main.sh', run: 'bash "$d/main.sh"' },
} as const;

const commandOutput = {
  exit_code: z.number().describe('exit code of the command (124 when it was killed at its timeout)'),
  stdout: z.string(),
  stderr: z.string(),
  timed_out: z.boolean(),
  truncated: z.boolean().describe('true when stdout or stderr was cut to the output cap'),
};

export function registerTools(server: McpServer, session: SandboxSession, limits: ToolLimits = DEFAULT_LIMITS): void {
  const timeout = z
    .number()
    .positive()
    .max(limits.maxTimeoutS)
    .optional()
    .describe(
      `seconds before the command (its whole process tree) is killed; default ${limits.defaultTimeoutS}, at most ${limits.maxTimeoutS}`,
    );

  /** Runs `fn` on the session's sandbox; a sandbox deleted from outside is made again once. */
  const withSandbox = (fn: (sb: Sandbox) => Promise<CallToolResult>): Promise<CallToolResult> =>
    session.during(async () => {
      for (let attempt = 0; ; attempt++) {
        let sb: Sandbox;
        let note: string | undefined;
        try {
          ({ sandbox: sb, note } = await session.sandbox());
        } catch (err) {
          return failure(`could not get a sandbox for this session: ${(err as Error).message}`);
        }
        try {
          const result = await fn(sb);
          if (note)
            result.content.unshift({
              type: 'text',
              text: `note: a new sandbox was created (${note}); files and processes from before are gone`,
            });
          return result;
        } catch (err) {
          if (
            err instanceof NotFoundError &&
            attempt === 0 &&
            /sandbox/.test(err.message) &&
            !(await sb.refresh().then(
              () => true,
              () => false,
            ))
          ) {
            session.forget('the previous sandbox was deleted from outside this session');
            continue;
          }
          return failure(err instanceof SandboxError ? err.message : `unexpected error: ${(err as Error).message}`);
        }
      }
    });

  const runResult = async (
    sb: Sandbox,
    command: string,
    opts: { timeoutS?: number; cwd?: string; env?: Record<string, string>; stdin?: string },
  ): Promise<CallToolResult> => {
    const timeoutS = opts.timeoutS ?? limits.defaultTimeoutS;
    let result: CommandResult;
    let timedOut = false;
    try {
      // Cut while it streams: the server holds ~2 × maxOutputChars per stream whatever the command prints.
      result = await sb.run(command, {
        timeoutMs: Math.round(timeoutS * 1000),
        cwd: opts.cwd,
        env: opts.env,
        stdin: opts.stdin,
        maxOutputChars: limits.maxOutputChars,
      });
    } catch (err) {
      if (!(err instanceof TimeoutError) || !err.result) throw err;
      result = { ...err.result, exitCode: 124 };
      timedOut = true;
    }
    const structured = {
      exit_code: result.exitCode,
      stdout: result.stdout,
      stderr: result.stderr,
      timed_out: timedOut,
      truncated: result.truncated === true,
    };
    const lines = [
      timedOut ? `killed after ${timeoutS} s (timeout); output until then:` : `exit code ${result.exitCode}`,
    ];
    if (result.stdout) lines.push(`--- stdout ---\n${result.stdout}`);
    if (result.stderr) lines.push(`--- stderr ---\n${result.stderr}`);
    if (!result.stdout && !result.stderr) lines.push('(no output)');
    return { content: [{ type: 'text', text: lines.join('\n') }], structuredContent: structured };
  };

  server.registerTool(
    'run_command',
    {
      title: 'Run a shell command',
      description:
        "Runs a command with bash in this conversation's sandbox (an isolated Linux machine under gVisor, no network) and returns its exit code, stdout and stderr. The sandbox persists across calls: files, installed packages and the working directory contents stay. The working directory defaults to the workspace (/app). A non-zero exit code is a normal result. Long output is cut in the middle.",
      inputSchema: {
        command: z.string().min(1).max(100_000).describe('the command line, run as `bash -c`'),
        timeout_seconds: timeout,
        cwd: z
          .string()
          .max(4096)
          .optional()
          .describe('working directory, relative to the workspace or absolute inside it'),
        env: z
          .record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name'), z.string())
          .optional()
          .describe('extra environment variables'),
      },
      outputSchema: commandOutput,
      annotations: { destructiveHint: true, openWorldHint: false },
    },
    ({ command, timeout_seconds, cwd, env }) =>
      withSandbox((sb) => runResult(sb, command, { timeoutS: timeout_seconds, cwd, env })),
  );

  server.registerTool(
    'run_code',
    {
      title: 'Run a program from source',
      description:
        'Runs source code in the sandbox: python (python3), node (an ES module), go (`go run`, standard library only: there is no network) or bash. The program runs with the workspace as its working directory, so files it writes there stay for later calls. Returns exit code, stdout and stderr.',
      inputSchema: {
        language: z.enum(['python', 'node', 'go', 'bash']),
        code: z.string().min(1).max(1_000_000).describe("the program's source text"),
        timeout_seconds: timeout,
      },
      outputSchema: commandOutput,
      annotations: { destructiveHint: true, openWorldHint: false },
    },
    ({ language, code, timeout_seconds }) =>
      withSandbox((sb) => {
        const lang = LANGUAGES[language];
        // The source goes in on stdin (no quoting), into a fresh directory under /tmp.
        const command = `d=$(mktemp -d) && cat > "$d/${lang.file}" && ${lang.run} </dev/null`;
        return runResult(sb, command, { timeoutS: timeout_seconds, stdin: code });
      }),
  );

  server.registerTool(
    'write_file',
    {
      title: 'Write a file',
      description:
        "Writes a file in the sandbox's workspace (parent directories are created). Text as UTF-8, or binary given as base64.",
      inputSchema: {
        path: z.string().min(1).max(4096).describe('path relative to the workspace (/app), or absolute inside it'),
        content: z.string().max(16 * 1024 * 1024),
        encoding: z.enum(['utf8', 'base64']).default('utf8'),
      },
      annotations: { destructiveHint: true, idempotentHint: true, openWorldHint: false },
    },
    ({ path, content, encoding }) =>
      withSandbox(async (sb) => {
        if (encoding === 'base64' && !/^[A-Za-z0-9+/\s]*={0,2}\s*$/.test(content))
          return failure('content is not valid base64');
        const data = encoding === 'base64' ? new Uint8Array(Buffer.from(content, 'base64')) : content;
        const res = await sb.files.write(path, data);
        return { content: [{ type: 'text', text: `wrote ${res.size} bytes to ${res.path}` }] };
      }),
  );

  server.registerTool(
    'read_file',
    {
      title: 'Read a file',
      description: `Reads a file from the sandbox. Text comes back as text; binary content (or encoding "base64") as base64. At most ${limits.maxReadBytes} bytes: larger files are cut, and the result says so.`,
      inputSchema: {
        path: z.string().min(1).max(4096).describe('path relative to the workspace (/app), or absolute inside it'),
        encoding: z.enum(['auto', 'utf8', 'base64']).default('auto'),
      },
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    ({ path, encoding }) =>
      withSandbox(async (sb) => {
        const stat = await sb.files.stat(path);
        if (stat.type === 'directory') return failure(`${path} is a directory: use list_directory`);
        // Only what is shown is read: a 2 GB file costs the server 1 MiB, not 2 GB.
        const shown = await readHead(await sb.files.read(path, { format: 'stream' }), limits.maxReadBytes);
        const size = Math.max(stat.size, shown.length);
        const cut = size > shown.length ? `\n… [truncated: showing ${shown.length} of ${size} bytes]` : '';
        const binary = encoding === 'base64' || (encoding === 'auto' && !isText(shown));
        if (binary) {
          return {
            content: [
              { type: 'text', text: `${path}: ${size} bytes, binary, base64 below${cut}` },
              {
                type: 'resource',
                resource: {
                  uri: fileUri(path),
                  mimeType: 'application/octet-stream',
                  blob: Buffer.from(shown).toString('base64'),
                },
              },
            ],
          };
        }
        return { content: [{ type: 'text', text: new TextDecoder().decode(shown) + cut }] };
      }),
  );

  server.registerTool(
    'list_directory',
    {
      title: 'List a directory',
      description: 'Lists a directory in the sandbox: names, types and sizes.',
      inputSchema: {
        path: z
          .string()
          .max(4096)
          .default('.')
          .describe('directory, relative to the workspace (/app) or absolute inside it'),
      },
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    ({ path }) =>
      withSandbox(async (sb) => {
        const entries = await sb.files.list(path);
        const text = entries.length
          ? entries
              .map(
                (e) =>
                  `${e.type === 'directory' ? 'd' : '-'} ${String(e.size).padStart(10)}  ${e.name}${e.type === 'directory' ? '/' : ''}`,
              )
              .join('\n')
          : '(empty)';
        return { content: [{ type: 'text', text }], structuredContent: { entries } };
      }),
  );

  server.registerTool(
    'reset_sandbox',
    {
      title: 'Reset the sandbox',
      description:
        "Returns the sandbox to its template's clean state: every process ends, the workspace and /tmp are emptied. Use it to start over.",
      inputSchema: {},
      annotations: { destructiveHint: true, openWorldHint: false },
    },
    () =>
      withSandbox(async (sb) => {
        await sb.reset();
        return { content: [{ type: 'text', text: `sandbox ${sb.id} reset to its template's clean state` }] };
      }),
  );

  server.registerTool(
    'suspend_sandbox',
    {
      title: 'Suspend the sandbox',
      description:
        'Suspends the sandbox to free resources. With snapshot (the default) its running processes and memory are saved and come back exactly on resume; without, processes end and files stay.',
      inputSchema: { snapshot: z.boolean().default(true) },
      annotations: { openWorldHint: false },
    },
    ({ snapshot }) =>
      withSandbox(async (sb) => {
        const res = await sb.suspend({ snapshot });
        return {
          content: [
            {
              type: 'text',
              text: res.snapshotId
                ? `sandbox ${sb.id} suspended; snapshot ${res.snapshotId}`
                : `sandbox ${sb.id} suspended (processes ended, files kept)`,
            },
          ],
        };
      }),
  );

  server.registerTool(
    'resume_sandbox',
    {
      title: 'Resume the sandbox',
      description:
        'Resumes a suspended sandbox, restoring its processes and memory from the snapshot its suspend took.',
      inputSchema: {},
      annotations: { openWorldHint: false },
    },
    () =>
      withSandbox(async (sb) => {
        const res = await sb.resume();
        return {
          content: [
            {
              type: 'text',
              text: res.restoredFromSnapshot
                ? `sandbox ${sb.id} resumed from snapshot ${res.snapshotId}`
                : `sandbox ${sb.id} resumed with fresh processes (files kept)`,
            },
          ],
        };
      }),
  );
}

export const fileUri = (path: string) =>
  `sandbox://files/${path.replace(/^\/+/, '').split('/').map(encodeURIComponent).join('/')}`;

function failure(message: string): CallToolResult {
  return { isError: true, content: [{ type: 'text', text: message }] };
}

/** The first `max` bytes of a stream; the rest is not read (the transfer is cancelled). */
async function readHead(stream: ReadableStream<Uint8Array>, max: number): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = stream.getReader();
  try {
    while (size < max) {
      const { value, done } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.length;
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
  return Buffer.concat(chunks).subarray(0, max);
}

/** UTF-8 without NUL bytes reads as text. */
export function isText(bytes: Uint8Array): boolean {
  if (bytes.includes(0)) return false;
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    return true;
  } catch {
    return false;
  }
}
