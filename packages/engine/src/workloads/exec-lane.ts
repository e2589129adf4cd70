// The engine's lane for foreground commands: an asb-spawn exec'd into the running sandbox
// (`--exec-lane`), spoken to over its own socket, with the agent's own rules for a command
// (packages/runtime/src/processes.ts, the node agent's, which the Go agent matches event for
// event) run here in the engine.
//
// Why: under gVisor every thread a command's request and events cross costs wake-ups through the
// sentry. Measured in one engine sandbox on 2026-12-06 (bench/local.ts prints the same kind of
// numbers): a `vfork`+exec of /bin/true answered to the host takes ~10 ms, the same behind
// asb-spawn with vfork ~11 ms, while the same command through the agent (HTTP/2, its goroutines
// and threads) took 15-20 ms. The lane skips the agent, not its rules: the agent tells the engine
// its environment, working directory, shell and timeout (GET /v1/exec-context) once, and anything
// the lane cannot do exactly as the agent (a request with a cwd, which the agent resolves inside
// the sandbox; a body it cannot read whole) goes to the agent as before.
import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { ExecRequest, ExecuteRequest } from '@asb/runtime/schemas';
import type { ExecContextResponse } from '@asb/runtime/replies';
import { ProcessManager } from '@asb/runtime/processes';
import { ZygoteSpawner } from '@asb/runtime/spawner';

/** Request bodies up to this size are read here to decide; larger ones stream to the agent. */
export const EXEC_LANE_MAX_BODY = 64 * 1024;
/** Output held for one slow client beyond this is not asb-spawn's (it stops reading a command's
 *  pipes when asked, so a few frames in flight at most): the lane is taken for hostile and ended. */
const MAX_HELD_BYTES = 16 * 1024 * 1024;
/** How long the head of a command's stream (the response's headers and its start event) is held
 *  for the command's next event, so that a quick silent command (`true`, `mkdir`, `test -f`) is
 *  answered in one write instead of three. Every write to the client while the command runs wakes
 *  it, and on two cores that competes with gVisor running the command: held against flushed,
 *  alternated in one engine (2026-12-07), exec of `true` p50 0.2-0.4 ms lower.
 *  Output and the exit are never held: the first of them sends the head with it. */
export const STREAM_HEAD_HOLD_MS = 25;

export class ExecLane {
  private readonly spawner: ZygoteSpawner;
  private readonly procs: ProcessManager;
  /** Responses under way: cut, not completed with a made-up exit, when the lane is lost. */
  private readonly inFlight = new Set<ServerResponse>();
  private lost = false;
  /** The engine ended it (close()), rather than losing it. */
  private closedHere = false;

  constructor(
    private readonly socket: Socket,
    context: ExecContextResponse,
  ) {
    // Registered before the spawner's own listeners: the spawner answers a lost pipe with an
    // error event per command (a 127 exit), which must not reach a client as the command's end.
    const lose = () => {
      this.lost = true;
      for (const res of this.inFlight) res.destroy();
      this.inFlight.clear();
    };
    socket.once('close', lose);
    socket.once('error', lose);
    this.spawner = new ZygoteSpawner(socket, socket);
    const confiner = {
      base: context.cwd,
      resolve: (): string => {
        throw new Error('the exec lane takes no cwd'); // serve() sends those to the agent
      },
    };
    this.procs = new ProcessManager(
      confiner,
      {
        defaultTimeoutMs: context.defaultTimeoutMs,
        maxOutputBytes: context.maxOutputBytes,
        replayBytes: 0,
        shell: context.shell,
      },
      this.spawner,
      context.env,
    );
  }

  get alive(): boolean {
    return !this.lost && this.spawner.alive && !this.socket.destroyed;
  }

  /** Gone without the engine ending it: killed inside, or ended as hostile. */
  get lostUnasked(): boolean {
    return !this.alive && !this.closedHere;
  }

  /** Runs `true` (or fails to find it, which answers as well): resolves once asb-spawn has answered,
   *  rejects when the lane is gone first. */
  probe(): Promise<void> {
    return new Promise((resolve, reject) => {
      const child = this.spawner.spawn(['true'], {
        cwd: '/',
        env: { PATH: '/usr/local/bin:/usr/bin:/bin' },
        keepStdin: false,
        killGroupOnExit: true,
      });
      child.once('exit', () => resolve());
      child.once('error', (err: Error) =>
        this.alive ? resolve() : reject(new Error(`the exec lane closed: ${err.message}`)),
      );
    });
  }

  /** The request in `body` when the lane is up and can run it exactly as the agent would: JSON,
   *  valid for `schema`, and without a cwd (the agent resolves that inside the sandbox). */
  private requestIn<T extends { cwd?: string }>(
    body: Buffer,
    schema: { safeParse(v: unknown): { success: true; data: T } | { success: false } },
  ): T | undefined {
    if (!this.alive) return undefined;
    let json: unknown;
    try {
      json = JSON.parse(body.toString('utf8'));
    } catch {
      return undefined;
    }
    const parsed = schema.safeParse(json);
    return parsed.success && parsed.data.cwd === undefined ? parsed.data : undefined;
  }

  /**
   * Serves POST /v1/exec with `body` (the request's, read whole), as the agent would answer it,
   * and returns true; or returns false, having done nothing, when the agent must answer it (the
   * lane is gone, the body is not a request the lane runs exactly as the agent: not JSON, not
   * valid, or with a cwd).
   */
  serve(body: Buffer, res: ServerResponse): boolean {
    const req = this.requestIn(body, ExecRequest);
    if (!req) return false;
    const proc = this.procs.spawn(req);
    this.inFlight.add(res);
    res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
    // Not flushed: the head goes with the command's first event after its start, or when the hold
    // ends (STREAM_HEAD_HOLD_MS), whichever comes first.
    res.cork();
    let holding = true;
    const release = () => {
      if (!holding) return;
      holding = false;
      clearTimeout(holdTimer);
      res.uncork();
    };
    const holdTimer = setTimeout(release, STREAM_HEAD_HOLD_MS);
    // One event a line, as the agent's ndjsonResponse writes them, with its flow control: while
    // the client is behind, the command is held (its pipes fill and it blocks in write).
    let ended = false;
    let held = false;
    const unsubscribe = proc.subscribe((ev) => {
      if (ended) return;
      const more = res.write(`${JSON.stringify(ev)}\n`);
      if (res.writableLength > MAX_HELD_BYTES) {
        // Output past a pause it was asked for: not asb-spawn speaking. Its commands are cut.
        this.socket.destroy();
        return;
      }
      if (ev.type === 'exit') {
        ended = true;
        res.end();
        release(); // after end(): the head, the events and the stream's end in one write
        return;
      }
      if (ev.type !== 'start') release();
      if (!more && !held) {
        held = true;
        proc.pause();
        res.once('drain', () => {
          held = false;
          proc.resume();
        });
      }
    }, true);
    res.once('close', () => {
      this.inFlight.delete(res);
      release();
      if (ended) return;
      // As the agent: a command whose caller went away is killed, tree and all; resumed, so that
      // its pipes drain and its exit is seen.
      ended = true;
      unsubscribe();
      proc.kill('SIGKILL');
      proc.resume();
    });
    return true;
  }

  /**
   * Serves upstream's POST /execute with `body` (read whole) as the agent would: the command run
   * to its end, its output buffered up to the agent's limit, one JSON answer. Returns false as
   * serve() does. A lane lost meanwhile cuts the answer (the spawner's loss would read as 127).
   */
  serveExecute(body: Buffer, res: ServerResponse): boolean {
    const parsed = this.requestIn(body, ExecuteRequest);
    if (!parsed) return false;
    const { timeout, ...req } = parsed;
    this.inFlight.add(res);
    res.once('close', () => this.inFlight.delete(res));
    void this.procs
      .runBuffered({ ...req, timeoutMs: timeout !== undefined ? Math.round(timeout * 1000) : undefined })
      .then((result) => {
        if (this.lost || res.destroyed) return;
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(result));
      });
    return true;
  }

  /** Resolves once no command is in flight on the lane, or after `ms` regardless. */
  async idle(ms: number): Promise<void> {
    const until = Date.now() + ms;
    while (this.inFlight.size > 0 && this.alive && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
  }

  /**
   * Ends the lane: asb-spawn exits at its stdin's end (commands it started run on, under PID 1).
   * Resolves once it has (gVisor closes its end of the socket then), or after `ms` regardless: a
   * checkpoint must not find the lane's host socket in the sandbox.
   */
  close(ms = 2_000): Promise<void> {
    this.lost = true;
    this.closedHere = true;
    if (this.socket.destroyed) return Promise.resolve();
    const ended = new Promise<void>((resolve) => {
      const timer = setTimeout(() => this.socket.destroy(), ms);
      this.socket.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
    });
    this.socket.resume(); // read to the end, or the close never comes
    this.socket.end();
    return ended;
  }
}
