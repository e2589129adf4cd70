// Processes inside the sandbox: each command is `bash -c` (or a direct exec, direct-exec.ts) in a
// process group of its own, so a timeout or a kill ends the whole tree. A foreground command
// streams its events to the one caller that asked for it; a background process keeps the last
// 1 MiB of its output for replay and can be followed, signalled and fed stdin.
import { existsSync } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import { constants, homedir } from 'node:os';
import type { ExecRequest } from './schemas.ts';
import type { ExecContextResponse, ExecEvent, ExecuteResponse, ProcessInfo } from './replies.ts';
import { AgentError } from './errors.ts';
import type { Confiner } from './confine.ts';
import { NodeSpawner, type ChildHandle, type Spawner } from './spawner.ts';
import { directArgv } from './direct-exec.ts';

export interface ProcessOptions {
  /** Of foreground commands (/execute, /v1/exec); background processes have none unless asked. */
  defaultTimeoutMs: number;
  /** Per stream of a buffered /execute. */
  maxOutputBytes: number;
  /** Output a background process keeps for replay. */
  replayBytes: number;
  /** What runs a command with shell syntax: bash where the sandbox has it (the default looks in
   *  this process's filesystem; the engine's exec lane is told the agent's). */
  shell?: string[];
}

/** What the engine needs to start a foreground command as the agent would, without it (its exec
 *  lane, packages/engine/src/workloads/exec-lane.ts): GET /v1/exec-context. */
export type ExecContext = ExecContextResponse;

// --norc: node's stdio pipes are socketpairs, and Debian's bash sources ~/.bashrc when its stdin
// is a socket (it takes it for rshd): a command's output must not depend on that.
const SHELL = existsSync('/bin/bash') ? ['/bin/bash', '--norc', '--noprofile'] : ['/bin/sh'];

const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** The agent's configuration (ASB_*, SANDBOX_*) and node's own plumbing, which would change how
 *  a `node` command the user runs behaves (NODE_CHANNEL_FD makes it expect an IPC channel).
 *  NODE_ENV, NODE_OPTIONS, NODE_PATH stay: they come from the template, for the user's programs. */
const INTERNAL = /^(ASB_|SANDBOX_|NODE_CHANNEL_|NODE_UNIQUE_ID$|NODE_TEST_CONTEXT$)/;

function homeDir(): string {
  try {
    return homedir();
  } catch {
    return '/';
  } // no passwd entry for our uid
}

/** What every command's environment starts from: PATH, HOME and LANG (unless the agent has
 *  them), and the agent's own environment, which is the template's, minus the agent's internals. */
export function baseEnv(env: NodeJS.ProcessEnv = process.env, home = env.HOME ?? homeDir()): Record<string, string> {
  const out: Record<string, string> = { PATH: DEFAULT_PATH, HOME: home, LANG: 'C.UTF-8' };
  for (const [k, v] of Object.entries(env)) if (v !== undefined && !INTERNAL.test(k)) out[k] = v;
  return out;
}

/** The bytes of output an event carries. */
const bytesOf = (ev: Extract<ExecEvent, { data: string }>) =>
  Buffer.from(ev.data, ev.encoding === 'base64' ? 'base64' : 'utf8');
const byteLength = (ev: ExecEvent) =>
  !('data' in ev) ? 0 : ev.encoding === 'base64' ? Math.floor((ev.data.length * 3) / 4) : Buffer.byteLength(ev.data);

export class Proc {
  readonly startedAt = new Date();
  exitCode: number | null = null;
  signal: string | null = null;
  running = true;
  timedOut = false;
  private replay: ExecEvent[] = [];
  private replayBytes = 0;
  private listeners = new Set<(ev: ExecEvent) => void>();
  /** Settles once the process has a pid (or failed to start): spawners learn it asynchronously. */
  readonly started: Promise<void>;
  readonly done: Promise<void>;
  private markStarted!: () => void;
  private finish!: () => void;

  constructor(
    readonly id: string,
    readonly command: string,
    readonly child: ChildHandle,
    private readonly keepBytes: number,
  ) {
    this.started = new Promise((r) => {
      this.markStarted = r;
    });
    this.done = new Promise((r) => {
      this.finish = r;
    });
  }
  get pid(): number {
    return this.child.pid;
  }

  emit(ev: ExecEvent): void {
    if (this.keepBytes > 0) {
      // Whole events are dropped from the front: a replay never starts in the middle of a chunk.
      this.replay.push(ev);
      this.replayBytes += byteLength(ev);
      while (this.replayBytes > this.keepBytes && this.replay.length > 1)
        this.replayBytes -= byteLength(this.replay.shift()!);
    }
    if (ev.type === 'start') this.markStarted();
    if (ev.type === 'exit') {
      this.running = false;
      this.markStarted();
      this.finish();
    }
    for (const l of this.listeners) l(ev);
    if (ev.type === 'exit') this.listeners.clear();
  }

  /** Replays what is kept, then (with follow, while running) delivers new events until exit. */
  subscribe(listener: (ev: ExecEvent) => void, follow: boolean): () => void {
    for (const ev of this.replay) listener(ev);
    if (!follow || !this.running) return () => undefined;
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  info(): ProcessInfo {
    return {
      id: this.id,
      pid: this.pid,
      command: this.command,
      running: this.running,
      exitCode: this.exitCode,
      signal: this.signal,
      startedAt: this.startedAt.toISOString(),
    };
  }

  /** Signals the whole process group. */
  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (this.running) this.child.signal(signal);
  }

  writeStdin(data: Uint8Array): void {
    this.child.writeStdin(data);
  }
  endStdin(): void {
    this.child.endStdin();
  }
  /** Flow control for the one reader of a foreground command (see spawner.ts). */
  pause(): void {
    if (this.running) this.child.pause();
  }
  resume(): void {
    if (this.running) this.child.resume();
  }
}

interface SpawnOpts {
  id?: string;
  background?: boolean;
  listener?: (ev: ExecEvent) => void;
}

export class ProcessManager {
  private readonly procs = new Map<string, Proc>();
  private seq = 0;

  constructor(
    private readonly confiner: Pick<Confiner, 'base' | 'resolve'>,
    private readonly opts: ProcessOptions,
    private readonly spawner: Spawner = new NodeSpawner(),
    private readonly env = baseEnv(),
  ) {}

  execContext(): ExecContext {
    const { base } = this.confiner;
    const { defaultTimeoutMs, maxOutputBytes } = this.opts;
    return { env: this.env, cwd: base, shell: this.opts.shell ?? SHELL, defaultTimeoutMs, maxOutputBytes };
  }

  /** Starts a command; `argv` runs a program directly (the main process), else `bash -c command`.
   *  `listener` is subscribed before any event can happen. */
  spawn(req: ExecRequest & { argv?: string[] }, opts: SpawnOpts = {}): Proc {
    const cwd = req.cwd ? this.confiner.resolve(req.cwd) : this.confiner.base;
    if (req.cwd && !existsSync(cwd)) throw new AgentError('NotFound', `working directory "${req.cwd}" does not exist`);
    const background = opts.background === true;
    const child = this.spawner.spawn(
      req.argv ?? directArgv(req.command) ?? [...(this.opts.shell ?? SHELL), '-c', req.command],
      {
        cwd,
        env: { ...this.env, ...req.env },
        keepStdin: background || req.stdin !== undefined,
        // A foreground command's leftovers (`cmd &` without the background API, a fork bomb) die
        // with it: they would otherwise hold the sandbox's process budget.
        killGroupOnExit: !background,
      },
    );
    const id = opts.id ?? `p${++this.seq}`;
    const proc = new Proc(id, req.command, child, background ? this.opts.replayBytes : 0);
    if (opts.listener) proc.subscribe(opts.listener, true);
    this.wire(proc, child, req, background ? req.timeoutMs : (req.timeoutMs ?? this.opts.defaultTimeoutMs));
    if (background) this.procs.set(id, proc);
    return proc;
  }

  private wire(proc: Proc, child: ChildHandle, req: ExecRequest, timeoutMs: number | undefined): void {
    const started = Date.now();
    child.once('start', (pid: number) => proc.emit({ type: 'start', pid }));
    const flushes: Array<() => void> = [];
    for (const stream of ['stdout', 'stderr'] as const) {
      if (req.encoding === 'base64') {
        child.on(stream, (b: Buffer) => {
          if (b.length) proc.emit({ type: stream, data: b.toString('base64'), encoding: 'base64' });
        });
        continue;
      }
      const dec = new StringDecoder('utf8'); // a UTF-8 character split across reads stays whole
      child.on(stream, (b: Buffer) => {
        const data = dec.write(b);
        if (data) proc.emit({ type: stream, data });
      });
      // An incomplete character at the very end is a U+FFFD, not nothing.
      flushes.push(() => {
        const data = dec.end();
        if (data) proc.emit({ type: stream, data });
      });
    }
    if (req.stdin !== undefined) {
      child.writeStdin(Buffer.from(req.stdin));
      child.endStdin();
    }
    const timer =
      timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            proc.timedOut = true;
            proc.kill('SIGKILL');
          }, timeoutMs);
    child.once('exit', (code: number | null, signal: NodeJS.Signals | null) => {
      clearTimeout(timer);
      proc.signal = signal;
      proc.exitCode = proc.timedOut ? 124 : (code ?? 128 + (signal ? (constants.signals[signal] ?? 0) : 0));
      for (const flush of flushes) flush();
      proc.emit({
        type: 'exit',
        exitCode: proc.exitCode,
        signal,
        timedOut: proc.timedOut,
        durationMs: Date.now() - started,
      });
    });
    child.once('error', (err: Error) => {
      clearTimeout(timer);
      // Worded as bash words it, since a direct exec stands in for `bash -c`.
      const notFound = /No such file or directory|ENOENT/.test(err.message);
      proc.emit({
        type: 'stderr',
        data: notFound
          ? `bash: line 1: ${req.command.trim().split(/\s+/)[0]}: command not found\n`
          : `Failed to execute command: ${err.message}\n`,
      });
      proc.exitCode = 127;
      proc.emit({ type: 'exit', exitCode: 127, signal: null, timedOut: false, durationMs: Date.now() - started });
    });
  }

  /** Runs to completion and buffers the output (upstream's /execute), each stream up to
   *  maxOutputBytes: the rest is dropped and `truncated` set, so one noisy command cannot
   *  exhaust the agent's memory. */
  async runBuffered(req: ExecRequest): Promise<ExecuteResponse> {
    const max = this.opts.maxOutputBytes;
    const out = { stdout: [] as Buffer[], stderr: [] as Buffer[] };
    const size = { stdout: 0, stderr: 0 };
    let truncated = false;
    const proc = this.spawn(req, {
      listener: (ev) => {
        if (ev.type !== 'stdout' && ev.type !== 'stderr') return;
        const room = max - size[ev.type];
        if (room <= 0) {
          truncated = true;
          return;
        }
        let b = bytesOf(ev);
        if (b.length > room) {
          truncated = true;
          b = b.subarray(0, room);
        }
        out[ev.type].push(b);
        size[ev.type] += b.length;
      },
    });
    await proc.done;
    let stderr = Buffer.concat(out.stderr).toString();
    if (proc.timedOut)
      stderr += `\nCommand timed out after ${req.timeoutMs ?? this.opts.defaultTimeoutMs} ms and was killed.\n`;
    return {
      stdout: Buffer.concat(out.stdout).toString(),
      stderr,
      exit_code: proc.exitCode ?? 1,
      ...(truncated ? { truncated } : {}),
      ...(proc.timedOut ? { timed_out: true } : {}),
    };
  }

  /** A background process, listed and addressable by id until deleted. */
  start(req: ExecRequest & { argv?: string[] }, id?: string): Proc {
    if (id && this.procs.get(id)?.running) throw new AgentError('Conflict', `process "${id}" is already running`);
    return this.spawn(req, { id, background: true });
  }

  get(id: string): Proc {
    const p = this.procs.get(id);
    if (!p) throw new AgentError('NotFound', `no process "${id}"; GET /v1/processes lists them`);
    return p;
  }

  list(): ProcessInfo[] {
    return [...this.procs.values()].map((p) => p.info());
  }

  /** Kills the process group and forgets the process. */
  remove(id: string): void {
    this.get(id).kill('SIGKILL');
    this.procs.delete(id);
  }
}
