// sandbox.commands: run a command and stream its output; start background processes.
import { call, callJson, callReply, send, type ResolvedConnection } from './connection.ts';
import { TimeoutError } from './errors.ts';
import { DEFAULT_MAX_OUTPUT_CHARS, OutputChannel, ndjsonEvents, type OutputSink } from './output.ts';
// The wire types are the agent's own (packages/runtime/src/schemas.ts): one definition for both sides.
import { ProcessList, StartProcessResponse, type ProcessInfo } from '@asb/runtime/replies';
export type { ProcessInfo };

export interface RunOpts extends OutputOpts {
  /** Kill the command (its whole process group) after this long. @default 300_000 (the agent's default) */
  timeoutMs?: number;
  env?: Record<string, string>;
  /** Working directory, relative to the workspace or absolute inside it. */
  cwd?: string;
  /** Text written to the command's standard input, then closed. */
  stdin?: string;
  signal?: AbortSignal;
}

/** Where a command's output goes. The result keeps at most `maxOutputChars` of each stream;
 *  for all of it, whatever its size, stream it: `stdout`/`stderr` (bytes) or the callbacks (text). */
export interface OutputOpts {
  /** Called with each chunk of standard output, as text, as it arrives. */
  onStdout?: (data: string) => void;
  onStderr?: (data: string) => void;
  /** Standard output is written here as the exact bytes the command wrote (binary-safe), and the
   *  command is held back while this sink is full (process.stdout, a file stream). Not ended. */
  stdout?: OutputSink;
  stderr?: OutputSink;
  /** Characters of stdout and of stderr the result keeps, each. Longer output keeps its head and
   *  tail with the cut marked (`… [truncated: N characters omitted of M] …`) and sets `truncated`;
   *  0 keeps nothing (stream it instead). @default 16_777_216 */
  maxOutputChars?: number;
}

export interface CommandResult {
  stdout: string;
  stderr: string;
  exitCode: number;
  /** Present (true) when stdout or stderr was longer than `maxOutputChars` and was cut. */
  truncated?: true;
}

/** How long the end of an exec stream is waited for after its exit event. */
const STREAM_END_GRACE_MS = 1000;

/** The next of events, or undefined when it does not come within ms. */
async function nextWithin<T>(events: AsyncIterator<T>, ms: number): Promise<IteratorResult<T> | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)));
  try {
    return await Promise.race([events.next(), late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Reads an exec stream to its end: output to where opts send it, then the exit event. */
async function consume(
  body: AsyncIterable<Uint8Array>,
  opts: OutputOpts,
  what: string,
): Promise<{ result: CommandResult; exit?: { timedOut: boolean } }> {
  const max = opts.maxOutputChars ?? DEFAULT_MAX_OUTPUT_CHARS;
  const out = new OutputChannel(max, opts.onStdout, opts.stdout);
  const err = new OutputChannel(max, opts.onStderr, opts.stderr);
  let exit: { exitCode: number | null; timedOut: boolean } | undefined;
  const events = ndjsonEvents(body, what)[Symbol.asyncIterator]();
  try {
    for (;;) {
      // After the exit event the stream is read to its end, not cancelled: a cancelled response
      // takes its kept-alive connection with it, and the next call would open a new one. A
      // server that does not end it soon after is left behind.
      const next = exit ? await nextWithin(events, STREAM_END_GRACE_MS) : await events.next();
      if (!next || next.done) break;
      const ev = next.value;
      if (exit) continue;
      if (ev.type === 'stdout') await out.take(ev);
      else if (ev.type === 'stderr') await err.take(ev);
      else if (ev.type === 'exit') exit = { exitCode: ev.exitCode, timedOut: ev.timedOut };
    }
  } finally {
    // Ended, a no-op; left behind or thrown out of, the stream is cancelled (once a pending
    // read settles).
    void events.return(undefined).catch(() => {});
    out.detach();
    err.detach();
  }
  const [o, e] = [out.end(), err.end()];
  const result: CommandResult = {
    stdout: o.text,
    stderr: e.text,
    exitCode: exit?.exitCode ?? 128,
    ...(o.truncated || e.truncated ? { truncated: true as const } : {}),
  };
  return { result, exit };
}

export class Commands {
  constructor(
    private readonly conn: ResolvedConnection,
    private readonly target: { id: string; namespace: string },
  ) {}

  /** Runs `bash -c cmd` and resolves with its output and exit code (non-zero is a result, not an error). */
  async run(cmd: string, opts: RunOpts = {}): Promise<CommandResult> {
    // Bytes (base64 on the wire) when a sink takes them: text would turn non-UTF-8 into U+FFFD.
    const encoding = opts.stdout || opts.stderr ? 'base64' : undefined;
    const body = { command: cmd, env: opts.env, cwd: opts.cwd, timeoutMs: opts.timeoutMs, stdin: opts.stdin, encoding };
    // The HTTP call may outlive the command's own timeout by the time it takes to report it.
    const httpTimeout = (opts.timeoutMs ?? 300_000) + 30_000;
    const what = `run "${cmd.slice(0, 80)}" in sandbox ${this.target.id}`;
    const res = await send(this.conn, '/v1/exec', what, {
      method: 'POST',
      body: JSON.stringify(body),
      headers: { 'content-type': 'application/json' },
      sandbox: this.target,
      timeoutMs: httpTimeout,
      signal: opts.signal,
    });
    const { result, exit } = await consume(res, opts, what);
    if (!exit)
      throw new TimeoutError(
        `the output stream of "${cmd.slice(0, 80)}" ended without an exit status (the sandbox may have stopped)`,
      );
    if (exit.timedOut) {
      const err = new TimeoutError(
        `command timed out after ${opts.timeoutMs ?? 300_000} ms and was killed: "${cmd.slice(0, 80)}" (raise timeoutMs, or start it in the background)`,
        504,
        'Timeout',
      );
      err.result = result;
      throw err;
    }
    return result;
  }

  /** Starts a background process; its output is kept and can be followed. */
  async start(
    cmd: string,
    opts: Pick<RunOpts, 'env' | 'cwd' | 'timeoutMs'> = {},
  ): Promise<{ id: string; pid: number }> {
    const what = `start "${cmd.slice(0, 80)}"`;
    const json = { command: cmd, ...opts };
    return callReply(this.conn, '/v1/processes', what, StartProcessResponse, { json, sandbox: this.target });
  }

  async list(): Promise<ProcessInfo[]> {
    return callReply(this.conn, '/v1/processes', 'list processes', ProcessList, { sandbox: this.target });
  }

  async kill(id: string, signal = 'SIGKILL'): Promise<void> {
    if (signal === 'SIGKILL')
      await call(this.conn, `/v1/processes/${encodeURIComponent(id)}`, `kill process ${id}`, {
        method: 'DELETE',
        sandbox: this.target,
      });
    else
      await callJson(this.conn, `/v1/processes/${encodeURIComponent(id)}/signal`, `signal process ${id}`, {
        json: { signal },
        sandbox: this.target,
      });
  }

  async sendStdin(id: string, data: string | Uint8Array, opts: { eof?: boolean } = {}): Promise<void> {
    await call(
      this.conn,
      `/v1/processes/${encodeURIComponent(id)}/stdin${opts.eof ? '?eof=1' : ''}`,
      `write stdin of ${id}`,
      { method: 'POST', body: data, sandbox: this.target },
    );
  }

  /** The output a background process printed so far (and, with follow, until it exits). */
  async output(
    id: string,
    opts: OutputOpts & { follow?: boolean } = {},
  ): Promise<Omit<CommandResult, 'exitCode'> & { exitCode: number | null }> {
    const what = `output of ${id}`;
    const res = await send(
      this.conn,
      `/v1/processes/${encodeURIComponent(id)}/output${opts.follow ? '?follow=1' : ''}`,
      what,
      { sandbox: this.target, timeoutMs: 24 * 3600_000 },
    );
    const { result, exit } = await consume(res, opts, what);
    return { ...result, exitCode: exit ? result.exitCode : null };
  }
}
