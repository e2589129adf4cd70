// How the agent starts processes. Two implementations of one small interface:
// - ZygoteSpawner: asks asb-spawn (native/asb-spawn.c), the sandbox's PID 1 and a tiny process,
//   to fork. Under gVisor a fork costs in proportion to the forking process's memory, and as PID 1
//   it reaps the orphans that node would leave as zombies.
// - NodeSpawner: node's child_process, where the helper is absent (Kubernetes images, tests).
// A pseudo-terminal (SpawnOptions.pty) only comes from asb-spawn: node has none. sandboxd, which
// uses NodeSpawner, runs asb-spawn as a plain child of its own for those (ZygoteSpawner.launch).
// Both put each command in a process group of its own and report exit only after its output is
// drained (or 100 ms after exit when a background child holds the pipes, counted while not
// paused). pause() stops reading a command's output when its reader is slow: the pipe fills and
// the command blocks, rather than the agent buffering output without bound.
import { EventEmitter } from 'node:events';
import { spawn, type ChildProcess } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import net from 'node:net';
import { constants } from 'node:os';

export interface SpawnOptions {
  cwd: string;
  env: Record<string, string>;
  keepStdin: boolean;
  killGroupOnExit: boolean;
  /** Run on a new pseudo-terminal (ZygoteSpawner only): its size when cols and rows are both set;
   *  stdout carries all output, endStdin() closes (hangs up) the terminal. */
  pty?: { cols: number; rows: number };
}

/** Events: 'start' (pid), 'stdout' (Buffer), 'stderr' (Buffer), 'exit' (code | null, signal | null), 'error' (Error). */
export interface ChildHandle extends EventEmitter {
  readonly pid: number;
  writeStdin(data: Uint8Array): void;
  endStdin(): void;
  /** Signals the whole process group. */
  signal(sig: NodeJS.Signals): void;
  pause(): void;
  resume(): void;
  /** A pty's new window size (TIOCSWINSZ); nothing without one. */
  resize?(cols: number, rows: number): void;
}

export interface Spawner {
  spawn(argv: string[], opts: SpawnOptions): ChildHandle;
}

const DRAIN_GRACE_MS = 100;
/** The largest event frame asb-spawn sends: one read of 64 KiB, and its header. */
const MAX_FRAME_BYTES = 64 * 1024 + 5;

class NodeChild extends EventEmitter implements ChildHandle {
  pid = -1;
  private paused = false;
  constructor(
    private readonly child: ChildProcess,
    killGroupOnExit: boolean,
  ) {
    super();
    let done = false;
    let closed = false;
    const report = (code: number | null, signal: NodeJS.Signals | null) => {
      if (done) return;
      done = true;
      this.emit('exit', code, signal);
      if (killGroupOnExit) this.signal('SIGKILL');
    };
    child.once('spawn', () => {
      this.pid = child.pid!;
      this.emit('start', this.pid);
    });
    child.stdout!.on('data', (b: Buffer) => this.emit('stdout', b));
    child.stderr!.on('data', (b: Buffer) => this.emit('stderr', b));
    child.stdin!.on('error', () => undefined); // the command may exit without reading its stdin
    child.once('close', (code, signal) => {
      closed = true;
      report(code, signal);
    });
    const afterGrace = (code: number | null, signal: NodeJS.Signals | null) =>
      setTimeout(() => {
        if (closed) return;
        // Output still in the pipes waits for its reader: the grace starts again on resume.
        if (this.paused) {
          this.once('resumed', () => afterGrace(code, signal));
          return;
        }
        child.stdout!.destroy();
        child.stderr!.destroy();
        report(code, signal);
      }, DRAIN_GRACE_MS).unref();
    child.once('exit', afterGrace);
    child.once('error', (err) => {
      if (!done) {
        done = true;
        this.emit('error', err);
      }
    });
  }
  writeStdin(data: Uint8Array): void {
    this.child.stdin!.write(data);
  }
  endStdin(): void {
    this.child.stdin!.end();
  }
  pause(): void {
    this.paused = true;
    this.child.stdout!.pause();
    this.child.stderr!.pause();
  }
  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.child.stdout!.resume();
    this.child.stderr!.resume();
    this.emit('resumed');
  }
  signal(sig: NodeJS.Signals): void {
    if (this.pid <= 0) return;
    try {
      process.kill(-this.pid, sig);
    } catch {
      try {
        this.child.kill(sig);
      } catch {
        /* gone */
      }
    }
  }
}

export class NodeSpawner implements Spawner {
  spawn(argv: string[], opts: SpawnOptions): ChildHandle {
    if (opts.pty) throw new Error('no pseudo-terminal without the asb-spawn helper');
    const child = spawn(argv[0]!, argv.slice(1), {
      cwd: opts.cwd,
      env: opts.env,
      detached: true,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const handle = new NodeChild(child, opts.killGroupOnExit);
    if (!opts.keepStdin) child.stdin.end();
    return handle;
  }
}

const enum Req {
  Spawn = 1,
  Stdin = 2,
  Signal = 3,
  Pause = 4,
  Resume = 5,
  Resize = 6,
}
const enum Ev {
  Started = 1,
  Stdout = 2,
  Stderr = 3,
  Exit = 4,
  Failed = 5,
}

class ZygoteChild extends EventEmitter implements ChildHandle {
  pid = -1;
  constructor(
    private readonly zygote: ZygoteSpawner,
    readonly id: number,
  ) {
    super();
  }
  writeStdin(data: Uint8Array): void {
    if (data.length) this.zygote.send(Req.Stdin, this.id, Buffer.from(data));
  }
  endStdin(): void {
    this.zygote.send(Req.Stdin, this.id, Buffer.alloc(0));
  }
  pause(): void {
    this.zygote.send(Req.Pause, this.id, Buffer.alloc(0));
  }
  resume(): void {
    this.zygote.send(Req.Resume, this.id, Buffer.alloc(0));
  }
  resize(cols: number, rows: number): void {
    const b = Buffer.alloc(4);
    b.writeUInt16LE(cols & 0xffff, 0);
    b.writeUInt16LE(rows & 0xffff, 2);
    this.zygote.send(Req.Resize, this.id, b);
  }
  signal(sig: NodeJS.Signals): void {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(constants.signals[sig]);
    this.zygote.send(Req.Signal, this.id, b);
  }
}

/** strerror's text (the FAILED event's "argv0: message") as an errno code. */
const ERRNO_TEXT: Record<string, string> = {
  'No such file or directory': 'ENOENT',
  'Not a directory': 'ENOTDIR',
  'Permission denied': 'EACCES',
  'Operation not permitted': 'EPERM',
};

export class ZygoteSpawner implements Spawner {
  private readonly out: Writable;
  private readonly children = new Map<number, ZygoteChild>();
  private seq = 0;
  private buf: Buffer = Buffer.alloc(0);
  private dead: Error | undefined;
  private process: ChildProcess | undefined;
  private readonly fail: (why: string) => void;
  private readonly events: Readable;

  /** Talks to the asb-spawn that started this agent, over the pipes it left on these fds. */
  constructor(eventsFd: number, requestsFd: number);
  /** Talks to an asb-spawn over these streams (launch). */
  constructor(events: Readable, requests: Writable);
  constructor(eventsIn: number | Readable, requestsOut: number | Writable) {
    const events =
      typeof eventsIn === 'number' ? new net.Socket({ fd: eventsIn, readable: true, writable: false }) : eventsIn;
    this.out =
      typeof requestsOut === 'number'
        ? new net.Socket({ fd: requestsOut, readable: false, writable: true })
        : requestsOut;
    this.events = events;
    events.on('data', (chunk: Buffer) => this.onData(chunk));
    const fail = (why: string) => {
      this.dead ??= new Error(why);
      for (const c of this.children.values()) c.emit('error', this.dead);
      this.children.clear();
    };
    this.fail = fail;
    events.once('close', () =>
      fail(`the spawner (${typeof eventsIn === 'number' ? 'PID 1' : 'asb-spawn'}) closed its pipe`),
    );
    events.on('error', (err) => fail(`spawner pipe: ${err.message}`));
    this.out.on('error', (err) => fail(`spawner pipe: ${err.message}`));
  }

  /** Runs the asb-spawn binary at `path` as a child of this process (not as PID 1: it serves
   *  requests on its stdin, events on its stdout) and talks to it; it exits when close() ends its
   *  stdin, or when this process is gone. */
  static launch(path: string): ZygoteSpawner {
    const child = spawn(path, [], { stdio: ['pipe', 'pipe', 'inherit'], detached: true });
    const z = new ZygoteSpawner(child.stdout, child.stdin);
    z.process = child;
    child.once('error', (err) => child.stdout.destroy(err));
    // Neither it nor its pipes keep this process alive: its commands' callers do.
    child.unref();
    for (const s of [child.stdin, child.stdout] as unknown as { unref?: () => void }[]) s.unref?.();
    return z;
  }

  /** Ends a launched helper (its stdin's EOF): it exits, leaving its commands running. */
  close(): void {
    this.process?.stdin?.end();
  }

  /** From ASB_SPAWNER_FDS="events,requests", set by asb-spawn --init. */
  static fromEnv(env: NodeJS.ProcessEnv = process.env): ZygoteSpawner | undefined {
    const m = /^(\d+),(\d+)$/.exec(env.ASB_SPAWNER_FDS ?? '');
    return m ? new ZygoteSpawner(Number(m[1]), Number(m[2])) : undefined;
  }

  get alive(): boolean {
    return this.dead === undefined;
  }

  send(type: Req, id: number, payload: Buffer): void {
    const head = Buffer.alloc(9);
    head.writeUInt32LE(5 + payload.length, 0);
    head.writeUInt8(type, 4);
    head.writeUInt32LE(id, 5);
    this.out.write(payload.length ? Buffer.concat([head, payload]) : head);
  }

  spawn(argv: string[], opts: SpawnOptions): ChildHandle {
    const id = (this.seq = (this.seq + 1) >>> 0);
    const child = new ZygoteChild(this, id);
    if (this.dead) {
      queueMicrotask(() => child.emit('error', this.dead));
      return child;
    }
    this.children.set(id, child);
    const env = Object.entries(opts.env).map(([k, v]) => `${k}=${v}`);
    const head = Buffer.alloc(opts.pty ? 13 : 9);
    head.writeUInt32LE(argv.length, 0);
    head.writeUInt32LE(env.length, 4);
    head.writeUInt8((opts.keepStdin ? 1 : 0) | (opts.killGroupOnExit ? 2 : 0) | (opts.pty ? 4 : 0), 8);
    if (opts.pty) {
      head.writeUInt16LE(opts.pty.cols & 0xffff, 9);
      head.writeUInt16LE(opts.pty.rows & 0xffff, 11);
    }
    const strings = Buffer.from([opts.cwd, ...argv, ...env].map((s) => `${s}\0`).join(''), 'utf8');
    this.send(Req.Spawn, id, Buffer.concat([head, strings]));
    return child;
  }

  private onData(chunk: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    while (this.buf.length >= 9) {
      const len = this.buf.readUInt32LE(0);
      if (len < 5 || len > MAX_FRAME_BYTES) {
        // Not asb-spawn's framing (its largest event is one 64 KiB read): whoever writes this is
        // not to be buffered for.
        this.fail(`spawner pipe: a frame of ${len} bytes`);
        this.buf = Buffer.alloc(0);
        this.events.destroy();
        return;
      }
      if (this.buf.length < 4 + len) break;
      const type = this.buf.readUInt8(4) as Ev;
      const id = this.buf.readUInt32LE(5);
      const payload = this.buf.subarray(9, 4 + len);
      this.buf = this.buf.subarray(4 + len);
      const child = this.children.get(id);
      if (!child) continue;
      if (type === Ev.Started) {
        child.pid = payload.readUInt32LE(0);
        child.emit('start', child.pid);
      } else if (type === Ev.Stdout) child.emit('stdout', Buffer.from(payload));
      else if (type === Ev.Stderr) child.emit('stderr', Buffer.from(payload));
      else if (type === Ev.Exit) {
        this.children.delete(id);
        const code = payload.readInt32LE(0);
        const signal =
          code < 0
            ? ((Object.entries(constants.signals).find(([, n]) => n === -code)?.[0] as NodeJS.Signals | undefined) ??
              null)
            : null;
        child.emit('exit', code >= 0 ? code : null, signal);
      } else if (type === Ev.Failed) {
        this.children.delete(id);
        const err: NodeJS.ErrnoException = new Error(payload.toString('utf8'));
        const code = ERRNO_TEXT[err.message.slice(err.message.lastIndexOf(': ') + 2)];
        if (code) err.code = code;
        child.emit('error', err);
      }
    }
  }
}
