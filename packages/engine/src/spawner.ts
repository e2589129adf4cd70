// Commands the engine runs to their end (runsc kill, delete, state; umount; cp; du), started by
// a long-lived helper (native/spawner, built to dist/asb-spawner) rather than node's
// child_process: node's spawn blocks the event loop until the child has exec'd, 3-4 ms each in
// the engine here and three for every sandbox torn down, taken from whatever claim or command
// runs beside it. Through the helper a command costs the loop a line of JSON each way. Without
// the helper (not built, or ASB_SPAWNER=off), node's execFile runs them as before. The helper also
// makes the mounts of a sandbox's start itself (mountFs: an ext4 image on a loop device, an image's
// overlay) by system calls, ~1 ms where mount(8) takes 4-14.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';

export interface RunOptions {
  /** Milliseconds before the command is sent SIGTERM (as execFile's `timeout`). */
  timeout?: number;
  /** Bytes of stdout, and of stderr, past which the command is killed (execFile's default: 1 MiB). */
  maxBuffer?: number;
  cwd?: string;
}

export interface RunResult {
  stdout: string;
  stderr: string;
}

/** A command that failed, shaped as execFile's error: its exit code (or errno name when it did
 *  not start), signal and output. */
export class CommandError extends Error {
  constructor(
    message: string,
    readonly cmd: string,
    readonly stdout: string,
    readonly stderr: string,
    readonly code: number | string | null,
    readonly signal: string | null,
    readonly killed: boolean,
  ) {
    super(message);
    this.name = 'CommandError';
  }
}

/** A mount (the helper's mount.go): `loop` attaches `source`, a file, to a loop device first. */
export interface MountRequest {
  source: string;
  target: string;
  fstype: string;
  flags?: Array<'nosuid' | 'nodev' | 'noexec' | 'noatime' | 'ro'>;
  /** File-system options (overlayfs's lowerdir=..., upperdir=..., workdir=...). */
  data?: string;
  loop?: boolean;
}

interface Reply {
  id: number;
  code: number | null;
  signal?: string;
  stdout: string;
  stderr: string;
  error?: string;
  errno?: string;
  killed?: boolean;
}

interface Pending {
  cmd: string;
  resolve: (r: RunResult) => void;
  reject: (e: Error) => void;
}

const execFileAsync = promisify(execFile);

export class Spawner {
  private child: ChildProcess | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();

  /** Whether commands go through the helper: looked for once, not at every command. */
  readonly usesHelper: boolean;

  /** `path`: the helper binary; undefined, or a path that does not exist, runs commands with execFile. */
  constructor(private readonly path: string | undefined) {
    this.usesHelper = path !== undefined && existsSync(path);
  }

  run(file: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
    const child = this.helper();
    if (!child) return execFileAsync(file, [...args], { ...opts, encoding: 'utf8' });
    const cmd = [file, ...args].join(' ');
    return this.ask(child, cmd, {
      argv: [file, ...args],
      dir: opts.cwd,
      timeoutMs: opts.timeout,
      maxBuffer: opts.maxBuffer,
    });
  }

  /**
   * Mounts a file system: by the helper's own system calls (~1 ms) when there is a helper, else
   * (or where the kernel has no LOOP_CONFIGURE) by mount(8), 4-14 ms.
   */
  async mount(m: MountRequest): Promise<void> {
    const child = this.helper();
    if (child) {
      try {
        await this.ask(child, `mount ${m.source} ${m.target}`, { mount: m });
        return;
      } catch (err) {
        if (!(err instanceof CommandError && err.code === 'ENOTTY')) throw err;
      }
    }
    const options = [...(m.loop ? ['loop'] : []), ...(m.flags ?? []), ...(m.data ? [m.data] : [])].join(',');
    await this.run('mount', ['-t', m.fstype, ...(options ? ['-o', options] : []), m.source, m.target], {
      timeout: 30_000,
    });
  }

  /**
   * Starts `argv` with a connection to the Unix socket `socket` (a path the caller listens on) as
   * its stdin and stdout and its stderr appended to `log`, and kills it once it has written `until`
   * (what it started runs on without it): through the helper, off the event loop. Resolves true
   * then; false when there is no helper (the caller starts it itself); rejects when it ended first
   * or did not write `until` within `timeoutMs`.
   */
  async detach(argv: string[], d: { socket: string; log: string; until: string; timeoutMs: number }): Promise<boolean> {
    const child = this.helper();
    if (!child) return false;
    const { timeoutMs, ...detach } = d;
    await this.ask(child, argv.join(' '), { argv, timeoutMs, detach });
    return true;
  }

  private ask(child: ChildProcess, cmd: string, request: Record<string, unknown>): Promise<RunResult> {
    const id = this.nextId++;
    return new Promise<RunResult>((resolve, reject) => {
      this.pending.set(id, { cmd, resolve, reject });
      this.holdOpen(true);
      child.stdin!.write(`${JSON.stringify({ id, ...request })}\n`);
    });
  }

  /** Ends the helper once the commands in flight have ended (it exits at the end of its input). */
  close(): void {
    this.child?.stdin?.end();
    this.child = undefined;
  }

  private helper(): ChildProcess | undefined {
    if (this.child) return this.child;
    if (!this.usesHelper) return undefined;
    const child = spawn(this.path!, [], { stdio: ['pipe', 'pipe', 'inherit'] });
    this.child = child;
    const fail = (why: string) => {
      if (this.child === child) this.child = undefined;
      for (const [id, p] of this.pending) {
        this.pending.delete(id);
        p.reject(new CommandError(`Command failed: ${p.cmd}\n${why}`, p.cmd, '', '', null, null, false));
      }
      this.holdOpen(false);
    };
    child.on('error', (err) => fail(`asb-spawner: ${err.message}`));
    child.on('exit', (code, signal) => fail(`asb-spawner exited (${signal ?? `code ${code}`})`));
    child.stdin.on('error', () => undefined); // its exit says what happened
    createInterface({ input: child.stdout }).on('line', (line) => this.settle(line));
    this.holdOpen(false);
    return child;
  }

  private settle(line: string): void {
    let reply: Reply;
    try {
      reply = JSON.parse(line) as Reply;
    } catch {
      return;
    }
    const p = this.pending.get(reply.id);
    if (!p) return;
    this.pending.delete(reply.id);
    if (this.pending.size === 0) this.holdOpen(false);
    if (reply.code === 0 && !reply.error) {
      p.resolve({ stdout: reply.stdout, stderr: reply.stderr });
      return;
    }
    const why = reply.error ?? reply.stderr;
    const code = reply.errno ?? reply.code;
    p.reject(
      new CommandError(
        `Command failed: ${p.cmd}\n${why}`,
        p.cmd,
        reply.stdout,
        reply.stderr,
        code,
        reply.signal ?? null,
        reply.killed ?? false,
      ),
    );
  }

  /** The helper keeps the engine's process alive only while a command is in flight. */
  private holdOpen(hold: boolean): void {
    const child = this.child;
    if (!child) return;
    const out = child.stdout as Socket | null;
    if (hold) {
      child.ref();
      out?.ref();
    } else {
      child.unref();
      out?.unref();
      (child.stdin as Socket | null)?.unref();
    }
  }
}

let shared = new Spawner(undefined);

/** Where the helper is (the engine sets it at start, next to its other binaries). */
export function useSpawner(path: string | undefined): void {
  if (shared.usesHelper && path !== undefined) return; // one helper per process is enough
  shared.close();
  shared = new Spawner(process.env.ASB_SPAWNER === 'off' ? undefined : path);
}

/** Runs a command to its end: through the helper when there is one, else with execFile. */
export function runCommand(file: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return shared.run(file, args, opts);
}

/** Starts a command that is then killed, what it started living on (Spawner.detach). */
export function detachCommand(
  argv: string[],
  d: { socket: string; log: string; until: string; timeoutMs: number },
): Promise<boolean> {
  return shared.detach(argv, d);
}

/** Mounts a file system: through the helper's system calls when there is one, else mount(8). */
export function mountFs(m: MountRequest): Promise<void> {
  return shared.mount(m);
}
