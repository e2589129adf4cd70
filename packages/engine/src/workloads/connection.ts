// The engine's connection to a sandbox's agent: made when the sandbox starts (or is re-attached),
// waited on until the agent answers, replaced when it drops while the sandbox lives on, and told
// apart from the sandbox's own exit, which says why it failed.
import pLimit from 'p-limit';
import { ExecContextResponse, HealthResponse } from '@asb/runtime/replies';
import { AgentClient } from '../agent-client.ts';
import { EngineError } from '../errors.ts';
import { AGENT_KILLED_EXIT_CODE, type DriverHandle, type SandboxExit } from '../drivers/driver.ts';
import { tailOf } from '../sandbox-log.ts';
import { ExecLane } from './exec-lane.ts';
import { sandboxDir, type Workload, type WorkloadTable, type WorkloadsDeps } from './workload.ts';

/** A new exec lane answers its first command within this, or is not used. */
const LANE_PROBE_TIMEOUT_MS = 10_000;
/** After a lane failed to open, commands go to the agent for this long before another try. */
const LANE_RETRY_MS = 60_000;
/** Lanes being opened at once, engine-wide. Each is a `runsc exec` (a Go process that talks to the
 *  sandbox's sentry): 500 sandboxes' first commands at once started 500 of them, and 850 openings
 *  timed out on two cores. Queued ones wait their turn; their commands go to the agent meanwhile. */
const LANE_OPENS_AT_ONCE = 4;

/** A snapshot in place lets the lane's commands in flight run this long before it ends the lane. */
const LANE_DRAIN_MS = 1_000;

/** More lost agent connections than this within a minute mark a sandbox Failed. */
const RECONNECTS_PER_MINUTE = 5;

export type ConnectionDeps = Pick<WorkloadsDeps, 'config' | 'driver' | 'log' | 'metrics'> & { table: WorkloadTable };

export class AgentConnections {
  private readonly laneOpens = pLimit(LANE_OPENS_AT_ONCE);

  constructor(private readonly deps: ConnectionDeps) {}

  /** Connects to the agent, and watches the sandbox's exit. */
  connect(w: Workload, handle: DriverHandle, logFile: string): void {
    this.connectAgent(w, handle, logFile);
    void handle.exited.then((exit) => this.onExit(w, exit, logFile));
  }

  private connectAgent(w: Workload, handle: DriverHandle, logFile: string): void {
    w.handle = handle;
    w.logFile = logFile;
    // A lost connection does not mean a lost sandbox: its agent may live on (the connection
    // broke, a relay died). It is replaced at once, and requests meanwhile wait for it.
    const client: AgentClient = new AgentClient(handle.socket, (reason) => {
      if (w.agent === client && !w.exit && !w.stopping && w.phase !== 'Failed') void this.reconnect(w, reason);
    });
    w.agent = client;
  }

  /**
   * A new connection to the agent of a sandbox that still runs, through the relay (the driver's
   * attach). A sandbox whose connection drops more than RECONNECTS_PER_MINUTE times a minute is
   * failing (or its agent is hostile): it is marked Failed rather than re-attached without end.
   */
  reconnect(w: Workload, reason: string): Promise<AgentClient | undefined> {
    if (w.reconnecting) return w.reconnecting;
    w.reconnecting = this.attemptReconnect(w, reason).finally(() => {
      w.reconnecting = undefined;
    });
    return w.reconnecting;
  }

  private async attemptReconnect(w: Workload, reason: string): Promise<AgentClient | undefined> {
    const { driver, config, metrics, log, table } = this.deps;
    const now = Date.now();
    w.reconnects = (w.reconnects ?? []).filter((t) => now - t < 60_000);
    if (w.reconnects.length >= RECONNECTS_PER_MINUTE) {
      table.fail(w, `${reason}, and it had been reconnected ${w.reconnects.length} times within a minute`);
      metrics?.agentReconnects.inc({ outcome: 'failed' });
      return undefined;
    }
    w.reconnects.push(now);
    const paths = { dir: sandboxDir(config.home, w.namespace, w.name), logFile: w.logFile! };
    const handle = await driver.attach(w.containerId, paths).catch(() => undefined);
    if (w.exit || w.stopping) {
      handle?.socket.destroy();
      return undefined;
    }
    if (!handle) {
      table.fail(w, `${reason}; the sandbox cannot be reached again`);
      metrics?.agentReconnects.inc({ outcome: 'failed' });
      return undefined;
    }
    this.connectAgent(w, handle, w.logFile!);
    metrics?.agentReconnects.inc({ outcome: 'reconnected' });
    const about = { sandbox: w.name, namespace: w.namespace, reason };
    log.warn(about, 'agent connection lost; reconnected through the relay');
    return w.agent;
  }

  /**
   * The sandbox's exec lane when it is open. Otherwise undefined (the command goes to the agent),
   * and one is opened in the background for the commands after it: one opening at a time, and
   * after a failure not again for a minute.
   */
  execLane(w: Workload): ExecLane | undefined {
    if (w.execLaneHeld) return undefined;
    if (w.execLane?.alive) return w.execLane;
    if (w.execLane?.lostUnasked) {
      // Killed from inside, or ended as hostile: a new one, but each time later (1 s, 2 s, ...
      // up to a minute), so that a sandbox cannot make the engine exec lanes into it without end.
      w.execLaneLosses = (w.execLaneLosses ?? 0) + 1;
      w.execLaneRetryAt = Date.now() + Math.min(LANE_RETRY_MS, 1000 * 2 ** (w.execLaneLosses - 1));
      w.execLane = undefined;
    }
    void this.openExecLane(w);
    return undefined;
  }

  /** Opens the sandbox's exec lane unless it has one, or one is being opened (that one is
   *  waited for), or the last try failed within a minute. */
  openExecLane(w: Workload): Promise<void> {
    if (w.execLane?.alive || w.execLaneHeld) return Promise.resolve();
    w.execLane = undefined;
    if (!w.execLaneOpening && Date.now() >= (w.execLaneRetryAt ?? 0)) {
      w.execLaneOpening = this.laneOpens(() => (w.execLaneDialing = this.tryOpenExecLane(w))).finally(() => {
        w.execLaneOpening = undefined;
        w.execLaneDialing = undefined;
      });
    }
    return w.execLaneOpening ?? Promise.resolve();
  }

  /** Opens the lane, asking the agent for what a command starts from first. */
  private async tryOpenExecLane(w: Workload): Promise<void> {
    const { driver, config, log } = this.deps;
    const agent = w.agent;
    if (!config.execLane || !driver.execLane || !agent || agent.closed || w.stopping || w.exit || w.execLaneHeld)
      return;
    let lane: ExecLane | undefined;
    try {
      const context = await agent.json('GET', '/v1/exec-context', ExecContextResponse);
      if (!context.ok) throw new Error(`GET /v1/exec-context answered ${context.status}`);
      const socket = await driver.execLane(w.containerId, {
        dir: sandboxDir(config.home, w.namespace, w.name),
        logFile: w.logFile!,
      });
      lane = new ExecLane(socket, context.body);
      await withTimeout(lane.probe(), LANE_PROBE_TIMEOUT_MS, 'the exec lane did not answer');
      // The sandbox stopped, or its agent was replaced, meanwhile: this lane is not its own.
      if (w.stopping || w.exit || w.agent !== agent || w.execLaneHeld) await lane.close();
      else w.execLane = lane;
    } catch (err) {
      await lane?.close();
      w.execLaneRetryAt = Date.now() + LANE_RETRY_MS;
      const about = { sandbox: w.name, namespace: w.namespace, err: (err as Error).message };
      // A sandbox stopped while its lane was being opened cut the opening short: nothing to warn of.
      if (w.stopping || w.exit) log.debug(about, 'exec lane not opened: the sandbox stopped');
      else log.warn(about, 'exec lane not opened; commands go through the agent');
    }
  }

  /**
   * Closes the sandbox's agent connection and exec lane (it stops, or goes into a snapshot, and
   * is marked stopping); resolves once the lane has ended (ExecLane.close), a lane being opened
   * included: a checkpoint must find no lane's host socket in the sandbox.
   */
  async close(w: Workload): Promise<void> {
    w.agent?.close();
    // One being opened closes what it opened, the sandbox being stopping; one still queued will
    // open nothing, so it is not waited for.
    await w.execLaneDialing;
    const lane = w.execLane;
    w.execLane = undefined;
    await lane?.close();
  }

  /**
   * Ends the sandbox's exec lane and opens none until releaseExecLane (a checkpoint in place must
   * find no lane's host socket in the sandbox); commands go to the agent meanwhile, and the lane's
   * commands in flight get LANE_DRAIN_MS to finish.
   */
  async holdExecLane(w: Workload): Promise<void> {
    w.execLaneHeld = true;
    await w.execLaneDialing; // one being opened closes what it opened, seeing the hold
    const lane = w.execLane;
    w.execLane = undefined;
    await lane?.idle(LANE_DRAIN_MS);
    await lane?.close();
  }

  /** Lets the lane open again, and opens it: the next command finds it ready. */
  releaseExecLane(w: Workload): void {
    w.execLaneHeld = false;
    void this.openExecLane(w);
  }

  /** Until the agent answers `GET /` with 200; throws, with the sandbox log's tail, when it does
   *  not within readyTimeoutMs or the sandbox exits first. */
  async waitReady(w: Workload, logFile: string): Promise<void> {
    const { readyTimeoutMs } = this.deps.config;
    const deadline = Date.now() + readyTimeoutMs;
    let lastError = '';
    while (Date.now() < deadline && !w.stopping) {
      if (w.exit) break;
      try {
        const timeoutMs = Math.max(100, deadline - Date.now());
        const res = await w.agent!.json('GET', '/', HealthResponse, undefined, timeoutMs);
        if (res.status === 200) return;
        lastError = `agent answered ${res.status}`;
      } catch (err) {
        lastError = (err as Error).message;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    if (w.stopping) return;
    const tail = tailOf(logFile);
    const why = w.exit ? ` (its process exited with code ${w.exit.code})` : ` within ${readyTimeoutMs} ms`;
    const log = tail ? `\n--- sandbox log ---\n${tail}` : '';
    const reason = w.exit ? 'Internal' : 'Timeout';
    throw new EngineError(reason, `the sandbox did not become ready${why}: ${lastError}${log}`);
  }

  private onExit(w: Workload, exit: SandboxExit, logFile: string): void {
    if (w.exit) return; // one exit, however many connections watched for it
    w.exit = exit;
    void this.close(w);
    if (w.stopping) return;
    this.deps.log.warn({ sandbox: w.name, namespace: w.namespace, exit, log: tailOf(logFile, 800) }, 'sandbox exited');
    const why = exitReason(w, exit, logFile);
    // The exit says why better than the lost connection that was noticed before it.
    if (w.phase === 'Failed') {
      w.message = why;
      this.deps.table.changed(w);
    } else this.deps.table.fail(w, why);
  }
}

/** A sentence for the Sandbox's status: why its processes ended. */
function exitReason(w: Workload, exit: SandboxExit, logFile: string): string {
  if (exit.oomKilled) {
    return (
      `the sandbox was killed at its memory limit (${w.limits.memoryBytes} bytes); ` +
      'raise resources.limits.memory in the template'
    );
  }
  if (exit.code === AGENT_KILLED_EXIT_CODE || exit.initSignal !== undefined) {
    const signal =
      exit.initSignal !== undefined
        ? `killed by signal ${exit.initSignal}`
        : (/killed by signal (\d+)/.exec(tailOf(logFile, 400))?.[0] ?? 'by a signal');
    return `the sandbox agent was killed (${signal}), which ends the sandbox: a process in it may have killed it`;
  }
  return `the sandbox's processes ended (exit code ${exit.code}${exit.signal ? `, signal ${exit.signal}` : ''})`;
}

/** `p`, or a rejection with `why` after `ms`. */
function withTimeout<T>(p: Promise<T>, ms: number, why: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${why} within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
