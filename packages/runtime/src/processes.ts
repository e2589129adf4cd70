// Processes inside the sandbox: each command is `bash -c` in a process group of its own, so a
// timeout or a kill ends the whole tree. Foreground commands stream events to one listener;
// background processes keep a 1 MiB replay buffer and can be followed, signalled and fed stdin.
import { existsSync } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import { constants } from 'node:os';
import type { ExecEvent, ExecRequest, ExecuteResponse, ProcessInfo } from './schemas.ts';
import { AgentError } from './errors.ts';
import type { Confiner } from './confine.ts';
import { NodeSpawner, type ChildHandle, type Spawner } from './spawner.ts';
import { directArgv } from './direct-exec.ts';

export interface ProcessOptions { defaultTimeoutMs: number; maxOutputBytes: number; replayBytes: number }

// --norc: node's stdio pipes are socketpairs, and Debian's bash sources ~/.bashrc when its stdin
// is a socket (it takes it for rshd): a command's output must not depend on that.
const SHELL = existsSync('/bin/bash') ? ['/bin/bash', '--norc', '--noprofile'] : ['/bin/sh'];

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

  constructor(readonly id: string, readonly command: string, readonly child: ChildHandle, private readonly keepBytes: number) {
    this.done = new Promise((r) => { this.finish = r; });
  }
  get pid(): number { return this.child.pid; }

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
    if (this.running) this.child.signal(signal);
  }

  writeStdin(data: Uint8Array): void { this.child.writeStdin(data); }
  endStdin(): void { this.child.endStdin(); }
}

export class ProcessManager {
  private readonly procs = new Map<string, Proc>();
  private seq = 0;

  constructor(
    private readonly confiner: Confiner,
    private readonly opts: ProcessOptions,
    private readonly spawner: Spawner = new NodeSpawner(),
    private readonly env = baseEnv(),
  ) {}

  /** Starts a command; `argv` runs a program directly (the main process), else `bash -c command`. */
  spawn(req: ExecRequest & { argv?: string[] }, opts: { id?: string; keepBytes?: number; listener?: (ev: ExecEvent) => void } = {}): Proc {
    const cwd = req.cwd ? this.confiner.resolve(req.cwd) : this.confiner.base;
    if (req.cwd && !existsSync(cwd)) throw new AgentError('NotFound', `working directory "${req.cwd}" does not exist`);
    const background = !!opts.keepBytes;
    const child = this.spawner.spawn(req.argv ?? directArgv(req.command) ?? [...SHELL, '-c', req.command], {
      cwd, env: { ...this.env, ...req.env },
      keepStdin: background || req.stdin !== undefined,
      // A foreground command's leftovers (`cmd &` without the background API, a fork bomb) die
      // with it: they would otherwise hold the sandbox's process budget.
      killGroupOnExit: !background,
    });
    const id = opts.id ?? `p${++this.seq}`;
    const proc = new Proc(id, req.command, child, opts.keepBytes ?? 0);
    if (opts.listener) proc.subscribe(opts.listener, true);
    const started = Date.now();
    child.once('start', (pid: number) => proc.emit({ type: 'start', pid }));
    for (const stream of ['stdout', 'stderr'] as const) {
      const dec = new StringDecoder('utf8');
      child.on(stream, (b: Buffer) => { const data = dec.write(b); if (data) proc.emit({ type: stream, data }); });
    }
    if (req.stdin !== undefined) { child.writeStdin(Buffer.from(req.stdin)); child.endStdin(); }
    const timeoutMs = req.timeoutMs ?? this.opts.defaultTimeoutMs;
    const timer = setTimeout(() => { proc.timedOut = true; proc.kill('SIGKILL'); }, timeoutMs);
    child.once('exit', (code: number | null, signal: NodeJS.Signals | null) => {
      clearTimeout(timer);
      proc.signal = signal;
      proc.exitCode = proc.timedOut ? 124 : code ?? 128 + (signal ? constants.signals[signal] ?? 0 : 0);
      proc.emit({ type: 'exit', exitCode: proc.exitCode, signal, timedOut: proc.timedOut, durationMs: Date.now() - started });
    });
    child.once('error', (err: Error) => {
      clearTimeout(timer);
      // Worded as bash words it, since a direct exec stands in for `bash -c`.
      const notFound = /No such file or directory|ENOENT/.test(err.message);
      proc.emit({ type: 'stderr', data: notFound ? `bash: line 1: ${req.command.trim().split(/\s+/)[0]}: command not found\n` : `Failed to execute command: ${err.message}\n` });
      proc.exitCode = 127;
      proc.emit({ type: 'exit', exitCode: 127, signal: null, timedOut: false, durationMs: Date.now() - started });
    });
    if (background) this.procs.set(id, proc);
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
