// sandboxd's gRPC ProcessService (proto/process/v1/process.proto): Start streams a command's
// output until its ExitEvent, Execute buffers it, WriteStdin / SendSignal / ResizeTTY reach a
// process that Start is streaming, by the virtual id (1, 2, ...) its InitEvent gave. Each command
// runs in a process group of its own (spawner.ts), so a signal reaches the whole tree.
//
// As upstream: the command is exec'd as given (no shell), with the daemon's environment plus the
// request's env_vars, in cwd confined to the root dir (PERMISSION_DENIED when it escapes); a
// missing binary or directory is NOT_FOUND, a process ended by a signal reports exit code -1.
// Start with a `pty` runs the command on a pseudo-terminal, as upstream's creack/pty: a session
// leader with the pty's slave as its controlling terminal and fds 0-2, the size set when cols and
// rows are both non-zero; all output comes as stdout; WriteStdin writes to the master, its EOF
// closes the master (the terminal hangs up); ResizeTTY sets the size (FAILED_PRECONDITION without
// a pty or once it is closed). Node has no pty: the asb-spawn helper (native/asb-spawn.c) makes
// them, one instance of it started on the first such Start. Not as upstream: a cancelled call
// SIGKILLs the command's whole group, not its leader.
import { existsSync } from 'node:fs';
import { status as Code, type ServerUnaryCall, type ServerWritableStream, type sendUnaryData } from '@grpc/grpc-js';
import { ZygoteSpawner, type ChildHandle, type Spawner } from '../spawner.ts';
import { PathEscapes, type SandboxdPaths } from './paths.ts';
import type {
  ExecuteRequest,
  ExecuteResponse,
  ProcessConfig,
  ResizeTTYRequest,
  SendSignalRequest,
  StartRequest,
  StartResponse,
  WriteStdinRequest,
} from './proto.ts';

/** upstream's --stream-chunk-size default: the most bytes one stdout/stderr event carries. */
export const DEFAULT_STREAM_CHUNK_SIZE = 4096;

/** A gRPC error status, thrown by the helpers and answered by the handlers. */
export class RpcError extends Error {
  constructor(
    readonly code: Code,
    message: string,
  ) {
    super(message);
  }
}

class ManagedProcess {
  completed = false;
  stdinClosed = false;
  constructor(
    readonly id: number,
    readonly child: ChildHandle,
    readonly pty: boolean,
  ) {}
  signal(sig: NodeJS.Signals): void {
    if (!this.completed) this.child.signal(sig);
  }
}

export interface ProcessServiceOptions {
  paths: SandboxdPaths;
  spawner: Spawner;
  /** The daemon environment commands inherit. */
  env: NodeJS.ProcessEnv;
  streamChunkSize?: number;
  /** The asb-spawn binary that makes pseudo-terminals; without it Start with a pty is UNIMPLEMENTED. */
  ptyHelper?: string;
}

const SIGNALS: Record<string, NodeJS.Signals> = {
  SIGNAL_SIGINT: 'SIGINT',
  SIGNAL_SIGKILL: 'SIGKILL',
  SIGNAL_SIGTERM: 'SIGTERM',
};

/** How a spawn error reads as a status (upstream's mapCommandError). */
function spawnError(err: unknown, what: string): RpcError {
  const e = err as NodeJS.ErrnoException;
  if (e?.code === 'ENOENT' || e?.code === 'ENOTDIR')
    return new RpcError(Code.NOT_FOUND, `${what}: command or path not found: ${e.message}`);
  if (e?.code === 'EACCES' || e?.code === 'EPERM')
    return new RpcError(Code.PERMISSION_DENIED, `${what}: permission denied: ${e.message}`);
  return new RpcError(Code.INTERNAL, `${what}: ${e instanceof Error ? e.message : String(err)}`);
}

const exitCodeOf = (code: number | null) => code ?? -1;

export class ProcessService {
  private readonly processes = new Map<number, ManagedProcess>();
  /** Execute's children: not addressable, but shutdown ends them too. */
  private readonly unlisted = new Set<ChildHandle>();
  private lastId = 0;
  private readonly chunkSize: number;
  private ptySpawner: ZygoteSpawner | undefined;

  constructor(private readonly o: ProcessServiceOptions) {
    this.chunkSize = o.streamChunkSize && o.streamChunkSize > 0 ? o.streamChunkSize : DEFAULT_STREAM_CHUNK_SIZE;
  }

  /** The command's argv, environment and working directory, or the status refusing them. */
  private command(config: ProcessConfig | null): { argv: string[]; env: Record<string, string>; cwd: string } {
    if (!config?.command?.length) throw new RpcError(Code.INVALID_ARGUMENT, 'command is required');
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(this.o.env)) if (v !== undefined) env[k] = v;
    Object.assign(env, config.env_vars ?? {});
    let cwd = this.o.paths.root;
    if (config.cwd) {
      try {
        cwd = this.o.paths.resolve(config.cwd);
      } catch (err) {
        if (err instanceof PathEscapes) throw new RpcError(Code.PERMISSION_DENIED, `cwd: ${err.message}`);
        throw new RpcError(Code.INTERNAL, `cwd: ${(err as Error).message}`);
      }
    }
    return { argv: config.command, env, cwd };
  }

  /** The helper that makes ptys, started once (again if it died). */
  private ptyHelper(): ZygoteSpawner {
    const helper = this.o.ptyHelper;
    if (!helper || !existsSync(helper))
      throw new RpcError(
        Code.UNIMPLEMENTED,
        `PTY is not available: its helper asb-spawn is missing${helper ? ` (${helper})` : ''}; start the command without pty`,
      );
    if (!this.ptySpawner?.alive) this.ptySpawner = ZygoteSpawner.launch(helper);
    return this.ptySpawner;
  }

  /** Spawns and waits until the command runs (or failed to). `wire` attaches the caller's
   *  listeners from within the 'start' event: a spawner may emit output (even the exit) in the same
   *  tick (asb-spawn sends them in one read), before an awaiting caller would run. */
  private async spawn(
    config: ProcessConfig | null,
    keepStdin: boolean,
    what: string,
    wire: (child: ChildHandle) => void,
    pty?: { cols: number; rows: number },
  ): Promise<void> {
    const { argv, env, cwd } = this.command(config);
    const spawner: Spawner = pty ? this.ptyHelper() : this.o.spawner;
    const child = spawner.spawn(argv, { cwd, env, keepStdin, killGroupOnExit: false, pty });
    await new Promise<void>((resolve, reject) => {
      const failed = (err: Error) => reject(spawnError(err, what));
      child.once('error', failed);
      child.once('start', () => {
        child.off('error', failed);
        wire(child);
        resolve();
      });
    });
  }

  async start(call: ServerWritableStream<StartRequest, StartResponse>): Promise<void> {
    const req = call.request;
    const pty = req.pty ? { cols: req.pty.cols ?? 0, rows: req.pty.rows ?? 0 } : undefined;
    let streamed: Promise<void> | undefined;
    await this.spawn(
      req.config,
      true,
      pty ? 'failed to start command with PTY' : 'failed to start command',
      (child) => {
        streamed = this.stream(call, child, pty !== undefined);
      },
      pty,
    );
    await streamed;
  }

  /** Streams a command that just started to its Start call, until its ExitEvent. */
  private stream(
    call: ServerWritableStream<StartRequest, StartResponse>,
    child: ChildHandle,
    pty: boolean,
  ): Promise<void> {
    const id = ++this.lastId;
    const proc = new ManagedProcess(id, child, pty);
    // Registered before the InitEvent goes out, so a WriteStdin right after it finds the process.
    this.processes.set(id, proc);
    const onCancel = () => proc.signal('SIGKILL');
    call.once('cancelled', onCancel);
    // Flow control: a slow reader pauses the command's pipes rather than the daemon buffering.
    let paused = false;
    const send = (ev: StartResponse) => {
      if (!call.write(ev) && !paused) {
        paused = true;
        child.pause();
        call.once('drain', () => {
          paused = false;
          child.resume();
        });
      }
    };
    const output = (key: 'stdout' | 'stderr') => (b: Buffer) => {
      for (let at = 0; at < b.length; at += this.chunkSize)
        send({ [key]: b.subarray(at, at + this.chunkSize) } as StartResponse);
    };
    send({ init: { process_id: id } });
    child.on('stdout', output('stdout'));
    child.on('stderr', output('stderr'));
    return new Promise<void>((resolve) => {
      const finish = (exitCode: number, err?: Error) => {
        proc.completed = true;
        this.processes.delete(id);
        call.off('cancelled', onCancel);
        if (err) call.emit('error', { code: Code.INTERNAL, details: err.message });
        else {
          call.write({ exit: { exit_code: exitCode } });
          call.end();
        }
        resolve();
      };
      child.once('exit', (code: number | null) => finish(exitCodeOf(code)));
      child.once('error', (err: Error) => finish(-1, err));
    });
  }

  async execute(call: ServerUnaryCall<ExecuteRequest, ExecuteResponse>): Promise<ExecuteResponse> {
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    let child: ChildHandle | undefined;
    let exited: Promise<number | null> | undefined;
    await this.spawn(call.request.config, false, 'failed to execute command', (c) => {
      child = c;
      c.on('stdout', (b: Buffer) => stdout.push(b));
      c.on('stderr', (b: Buffer) => stderr.push(b));
      exited = new Promise<number | null>((resolve, reject) => {
        c.once('exit', resolve);
        c.once('error', (err: Error) => reject(spawnError(err, 'failed to execute command')));
      });
    });
    this.unlisted.add(child!);
    const onCancel = () => child!.signal('SIGKILL');
    call.once('cancelled', onCancel);
    try {
      const code = await exited!;
      return { exit_code: exitCodeOf(code), stdout: Buffer.concat(stdout), stderr: Buffer.concat(stderr) };
    } finally {
      this.unlisted.delete(child!);
      call.off('cancelled', onCancel);
    }
  }

  private find(id: number): ManagedProcess {
    const proc = this.processes.get(id);
    if (!proc) throw new RpcError(Code.NOT_FOUND, `process ${id} not found`);
    return proc;
  }

  writeStdin(req: WriteStdinRequest): object {
    const proc = this.find(req.process_id);
    if (req.payload === 'eof') {
      if (proc.stdinClosed) throw new RpcError(Code.INTERNAL, 'failed to close stdin: file already closed');
      proc.stdinClosed = true;
      proc.child.endStdin();
      return {};
    }
    if (req.input?.length) {
      if (proc.stdinClosed) throw new RpcError(Code.INTERNAL, 'failed to write stdin: file already closed');
      proc.child.writeStdin(req.input);
    }
    return {};
  }

  sendSignal(req: SendSignalRequest): object {
    const proc = this.find(req.process_id);
    const sig = SIGNALS[String(req.signal)];
    if (!sig) throw new RpcError(Code.INVALID_ARGUMENT, `unsupported or unspecified signal: ${String(req.signal)}`);
    proc.signal(sig);
    return {};
  }

  resizeTTY(req: ResizeTTYRequest): object {
    const proc = this.find(req.process_id);
    // stdinClosed: a pty's EOF closed its master (upstream's Setsize then fails the same way).
    if (!proc.pty || proc.completed || proc.stdinClosed || !proc.child.resize)
      throw new RpcError(Code.FAILED_PRECONDITION, 'failed to resize TTY: process is completed or has no active PTY');
    proc.child.resize(req.cols ?? 0, req.rows ?? 0);
    return {};
  }

  /** Signals every running command's group (daemon shutdown). */
  signalAll(sig: NodeJS.Signals): void {
    for (const p of this.processes.values()) p.signal(sig);
    for (const c of this.unlisted) c.signal(sig);
  }

  /** Ends the pty helper (daemon shutdown, once the commands ended). */
  close(): void {
    this.ptySpawner?.close();
    this.ptySpawner = undefined;
  }

  get running(): number {
    return this.processes.size + this.unlisted.size;
  }

  /** Calls being answered (daemon shutdown waits for them). */
  inflight = 0;

  /** The handlers @grpc/grpc-js calls, each answering a thrown RpcError as its status. */
  handlers() {
    const fail = (err: unknown) => {
      const e = err instanceof RpcError ? err : new RpcError(Code.INTERNAL, (err as Error)?.message ?? String(err));
      return { code: e.code, details: e.message };
    };
    const unary =
      <Req, Res>(fn: (call: ServerUnaryCall<Req, Res>) => Res | Promise<Res>) =>
      (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => {
        this.inflight++;
        Promise.resolve()
          .then(() => fn(call))
          .then(
            (res) => callback(null, res),
            (err: unknown) => callback(fail(err)),
          )
          .finally(() => this.inflight--);
      };
    return {
      Start: (call: ServerWritableStream<StartRequest, StartResponse>) => {
        this.inflight++;
        this.start(call)
          .catch((err: unknown) => call.emit('error', fail(err)))
          .finally(() => this.inflight--);
      },
      Execute: unary<ExecuteRequest, ExecuteResponse>((call) => this.execute(call)),
      WriteStdin: unary<WriteStdinRequest, object>((call) => this.writeStdin(call.request)),
      SendSignal: unary<SendSignalRequest, object>((call) => this.sendSignal(call.request)),
      ResizeTTY: unary<ResizeTTYRequest, object>((call) => this.resizeTTY(call.request)),
    };
  }
}
