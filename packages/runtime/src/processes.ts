// Processes inside the sandbox: each command is `bash -c` in a process group of its own, so a
// timeout or a kill ends the whole tree. Foreground commands stream events to one listener;
// background processes keep a 1 MiB replay buffer and can be followed, signalled and fed stdin.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import { constants } from 'node:os';
import type { ExecEvent, ExecRequest, ExecuteResponse, ProcessInfo } from './schemas.ts';
import { AgentError } from './errors.ts';
import type { Confiner } from './confine.ts';

export interface ProcessOptions { defaultTimeoutMs: number; maxOutputBytes: number; replayBytes: number }

const SHELL = existsSync('/bin/bash') ? '/bin/bash' : '/bin/sh';
/** How long stdout/stderr may stay open after the process exited (a child left in the background
 *  can hold them) before the result is reported anyway. */
const DRAIN_GRACE_MS = 100;

/** The agent's own environment minus its internals: what every command starts from. */
export function baseEnv(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined && !k.startsWith('ASB_') && !k.startsWith('NODE_')) out[k] = v;
  return out;
}

export class Proc {
  readonly startedAt = new Date();
  exitCode: number | null = null;
  signal: string | null = null;
  running = true;
  timedOut = false;
  private replay: ExecEvent[] = [];
  private replayBytes = 0;
  private listeners = new Set<(ev: ExecEvent) => void>();
  readonly done: Promise<void>;
  private finish!: () => void;

  constructor(readonly id: string, readonly command: string, readonly child: ChildProcess, private readonly keepBytes: number) {
    this.done = new Promise((r) => { this.finish = r; });
  }
  get pid(): number { return this.child.pid ?? -1; }

  emit(ev: ExecEvent): void {
    if (this.keepBytes > 0) {
      this.replay.push(ev);
      this.replayBytes += 'data' in ev ? ev.data.length : 0;
      while (this.replayBytes > this.keepBytes && this.replay.length > 1) {
        const old = this.replay.shift()!;
        this.replayBytes -= 'data' in old ? old.data.length : 0;
      }
    }
    for (const l of this.listeners) l(ev);
    if (ev.type === 'exit') { this.running = false; this.finish(); }
  }

  /** Replays what is buffered, then (if follow) delivers new events until exit. */
  subscribe(listener: (ev: ExecEvent) => void, follow: boolean): () => void {
    for (const ev of this.replay) listener(ev);
    if (!follow || !this.running) return () => undefined;
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  info(): ProcessInfo {
    return { id: this.id, pid: this.pid, command: this.command, running: this.running, exitCode: this.exitCode, signal: this.signal, startedAt: this.startedAt.toISOString() };
  }

  /** Signals the whole process group. */
  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (!this.running || !this.child.pid) return;
    try { process.kill(-this.child.pid, signal); } catch { try { this.child.kill(signal); } catch { /* gone */ } }
  }
}

export class ProcessManager {
  private readonly procs = new Map<string, Proc>();
  private seq = 0;

  constructor(private readonly confiner: Confiner, private readonly opts: ProcessOptions, private readonly env = baseEnv()) {}

  /** Starts a command; `argv` runs a program directly (the main process), else `bash -c command`. */
  spawn(req: ExecRequest & { argv?: string[] }, opts: { id?: string; keepBytes?: number; listener?: (ev: ExecEvent) => void } = {}): Proc {
    const cwd = req.cwd ? this.confiner.resolve(req.cwd) : this.confiner.base;
    if (req.cwd && !existsSync(cwd)) throw new AgentError('NotFound', `working directory "${req.cwd}" does not exist`);
    const [file, args] = req.argv ? [req.argv[0]!, req.argv.slice(1)] : [SHELL, ['-c', req.command]];
    const child = spawn(file, args, { cwd, env: { ...this.env, ...req.env }, detached: true, stdio: ['pipe', 'pipe', 'pipe'] });
    const id = opts.id ?? `p${++this.seq}`;
    const proc = new Proc(id, req.command, child, opts.keepBytes ?? 0);
    if (opts.listener) proc.subscribe(opts.listener, true);
    const started = Date.now();
    child.once('spawn', () => proc.emit({ type: 'start', pid: child.pid! }));
    for (const stream of ['stdout', 'stderr'] as const) {
      const dec = new StringDecoder('utf8');
      child[stream]!.on('data', (b: Buffer) => { const data = dec.write(b); if (data) proc.emit({ type: stream, data }); });
    }
    child.stdin!.on('error', () => undefined); // the command may exit without reading its stdin
    if (req.stdin !== undefined) child.stdin!.end(req.stdin);
    else if (!opts.keepBytes) child.stdin!.end();
    const timeoutMs = req.timeoutMs ?? this.opts.defaultTimeoutMs;
    const timer = setTimeout(() => { proc.timedOut = true; proc.kill('SIGKILL'); }, timeoutMs);
    let closed = false;
    const report = (code: number | null, signal: NodeJS.Signals | null) => {
      if (!proc.running) return;
      clearTimeout(timer);
      proc.signal = signal;
      proc.exitCode = proc.timedOut ? 124 : code ?? 128 + (signal ? constants.signals[signal] ?? 0 : 0);
      proc.emit({ type: 'exit', exitCode: proc.exitCode, signal, timedOut: proc.timedOut, durationMs: Date.now() - started });
    };
    // A foreground command's leftovers (`cmd &` without the background API, a fork bomb) die with
    // it: they would otherwise hold the sandbox's process budget. Background processes keep theirs.
    const reapGroup = () => { if (!opts.keepBytes && child.pid) { try { process.kill(-child.pid, 'SIGKILL'); } catch { /* group gone */ } } };
    child.once('close', (code, signal) => { closed = true; report(code, signal); reapGroup(); });
    child.once('exit', (code, signal) => {
      setTimeout(() => { if (!closed) { child.stdout!.destroy(); child.stderr!.destroy(); report(code, signal); reapGroup(); } }, DRAIN_GRACE_MS).unref();
    });
    child.once('error', (err) => {
      clearTimeout(timer);
      proc.emit({ type: 'stderr', data: `Failed to execute command: ${err.message}\n` });
      proc.exitCode = 127;
      proc.emit({ type: 'exit', exitCode: 127, signal: null, timedOut: false, durationMs: Date.now() - started });
    });
    if (opts.keepBytes) this.procs.set(id, proc);
    return proc;
  }

  /** Runs to completion and buffers the output (upstream's /execute). */
  async runBuffered(req: ExecRequest): Promise<ExecuteResponse> {
    let stdout = '';
    let stderr = '';
    let truncated = false;
    const max = this.opts.maxOutputBytes;
    const proc = this.spawn(req, {
      listener: (ev) => {
        if (ev.type !== 'stdout' && ev.type !== 'stderr') return;
        const cur = ev.type === 'stdout' ? stdout : stderr;
        const room = max - cur.length;
        if (room <= 0) { truncated = true; return; }
        const add = ev.data.length > room ? (truncated = true, ev.data.slice(0, room)) : ev.data;
        if (ev.type === 'stdout') stdout += add; else stderr += add;
      },
    });
    await proc.done;
    if (proc.timedOut) stderr += `\nCommand timed out after ${req.timeoutMs ?? this.opts.defaultTimeoutMs} ms and was killed.\n`;
    return { stdout, stderr, exit_code: proc.exitCode ?? 1, ...(truncated ? { truncated } : {}), ...(proc.timedOut ? { timed_out: true } : {}) };
  }

  start(req: ExecRequest & { argv?: string[] }, id?: string): Proc {
    if (id && this.procs.get(id)?.running) throw new AgentError('Conflict', `process "${id}" is already running`);
    return this.spawn(req, { id, keepBytes: this.opts.replayBytes });
  }

  get(id: string): Proc {
    const p = this.procs.get(id);
    if (!p) throw new AgentError('NotFound', `no process "${id}"; GET /v1/processes lists them`);
    return p;
  }

  list(): ProcessInfo[] { return [...this.procs.values()].map((p) => p.info()); }

  remove(id: string): void {
    this.get(id).kill('SIGKILL');
    this.procs.delete(id);
  }
}
