// sandbox.commands: run a command and stream its output; start background processes.
import { call, callJson, type ResolvedConnection } from './connection.ts';
import { TimeoutError } from './errors.ts';

export interface RunOpts {
  /** Kill the command (its whole process group) after this long. @default 300_000 (the agent's default) */
  timeoutMs?: number;
  /** Called with each chunk of standard output as it arrives. */
  onStdout?: (data: string) => void;
  onStderr?: (data: string) => void;
  env?: Record<string, string>;
  /** Working directory, relative to the workspace or absolute inside it. */
  cwd?: string;
  /** Text written to the command's standard input, then closed. */
  stdin?: string;
  signal?: AbortSignal;
}

export interface CommandResult { stdout: string; stderr: string; exitCode: number }

// The wire types are the agent's own (packages/runtime/src/schemas.ts): one definition for both sides.
import type { ExecEvent, ProcessInfo } from '@asb/runtime';
export type { ProcessInfo };

async function* ndjson(res: Response): AsyncGenerator<ExecEvent> {
  const decoder = new TextDecoder();
  let buf = '';
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buf += decoder.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (line.trim()) yield JSON.parse(line) as ExecEvent;
    }
  }
  if (buf.trim()) yield JSON.parse(buf) as ExecEvent;
}

export class Commands {
  constructor(private readonly conn: ResolvedConnection, private readonly target: { id: string; namespace: string }) {}

  /** Runs `bash -c cmd` and resolves with its output and exit code (non-zero is a result, not an error). */
  async run(cmd: string, opts: RunOpts = {}): Promise<CommandResult> {
    const body = { command: cmd, env: opts.env, cwd: opts.cwd, timeoutMs: opts.timeoutMs, stdin: opts.stdin };
    // The HTTP call may outlive the command's own timeout by the time it takes to report it.
    const httpTimeout = (opts.timeoutMs ?? 300_000) + 30_000;
    const res = await call(this.conn, '/v1/exec', `run "${cmd.slice(0, 80)}" in sandbox ${this.target.id}`, {
      method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' }, sandbox: this.target, timeoutMs: httpTimeout, signal: opts.signal,
    });
    let stdout = '';
    let stderr = '';
    for await (const ev of ndjson(res)) {
      if (ev.type === 'stdout') { stdout += ev.data; opts.onStdout?.(ev.data); }
      else if (ev.type === 'stderr') { stderr += ev.data; opts.onStderr?.(ev.data); }
      else if (ev.type === 'exit') {
        const result = { stdout, stderr, exitCode: ev.exitCode ?? 128 };
        if (ev.timedOut) {
          const err = new TimeoutError(`command timed out after ${opts.timeoutMs ?? 300_000} ms and was killed: "${cmd.slice(0, 80)}" (raise timeoutMs, or start it in the background)`, 504, 'Timeout');
          err.result = result;
          throw err;
        }
        return result;
      }
    }
    throw new TimeoutError(`the output stream of "${cmd.slice(0, 80)}" ended without an exit status (the sandbox may have stopped)`);
  }

  /** Starts a background process; its output is kept and can be followed. */
  async start(cmd: string, opts: Pick<RunOpts, 'env' | 'cwd' | 'timeoutMs'> = {}): Promise<{ id: string; pid: number }> {
    return callJson(this.conn, '/v1/processes', `start "${cmd.slice(0, 80)}"`, { json: { command: cmd, ...opts }, sandbox: this.target });
  }

  async list(): Promise<ProcessInfo[]> {
    return callJson(this.conn, '/v1/processes', 'list processes', { sandbox: this.target });
  }

  async kill(id: string, signal = 'SIGKILL'): Promise<void> {
    if (signal === 'SIGKILL') await call(this.conn, `/v1/processes/${encodeURIComponent(id)}`, `kill process ${id}`, { method: 'DELETE', sandbox: this.target });
    else await callJson(this.conn, `/v1/processes/${encodeURIComponent(id)}/signal`, `signal process ${id}`, { json: { signal }, sandbox: this.target });
  }

  async sendStdin(id: string, data: string | Uint8Array, opts: { eof?: boolean } = {}): Promise<void> {
    await call(this.conn, `/v1/processes/${encodeURIComponent(id)}/stdin${opts.eof ? '?eof=1' : ''}`, `write stdin of ${id}`, { method: 'POST', body: data as RequestInit['body'], sandbox: this.target });
  }

  /** The output a background process printed so far (and, with follow, until it exits). */
  async output(id: string, opts: { follow?: boolean; onStdout?: (d: string) => void; onStderr?: (d: string) => void } = {}): Promise<{ stdout: string; stderr: string; exitCode: number | null }> {
    const res = await call(this.conn, `/v1/processes/${encodeURIComponent(id)}/output${opts.follow ? '?follow=1' : ''}`, `output of ${id}`, { sandbox: this.target, timeoutMs: 24 * 3600_000 });
    let stdout = '';
    let stderr = '';
    let exitCode: number | null = null;
    for await (const ev of ndjson(res)) {
      if (ev.type === 'stdout') { stdout += ev.data; opts.onStdout?.(ev.data); }
      else if (ev.type === 'stderr') { stderr += ev.data; opts.onStderr?.(ev.data); }
      else if (ev.type === 'exit') exitCode = ev.exitCode;
    }
    return { stdout, stderr, exitCode };
  }
}
