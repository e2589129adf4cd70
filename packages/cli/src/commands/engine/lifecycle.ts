// asb engine run|start|stop|status. `run` serves in the foreground; `start` runs it as a daemon
// whose log goes to $ASB_HOME/engine.log, and returns when it answers /healthz.
import { spawn } from 'node:child_process';
import { openSync, readFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Engine, defaultHome, stateFile, type EngineState } from '@asb/engine';
import type { Ctx } from '../../context.ts';
import { print, formatTable } from '../../output.ts';
import { withProgress } from '../../progress.ts';

export function readState(home = defaultHome()): EngineState | undefined {
  try {
    return JSON.parse(readFileSync(stateFile(home), 'utf8')) as EngineState;
  } catch {
    return undefined;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export async function healthy(url: string): Promise<boolean> {
  try {
    return (await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(1000) })).ok;
  } catch {
    return false;
  }
}

export async function engineRun(flags: { port?: string; host?: string }): Promise<number> {
  const engine = new Engine({ port: flags.port ? Number(flags.port) : undefined, host: flags.host });
  const stop = async (sig: string) => {
    engine.log.info({ signal: sig }, 'stopping');
    await engine.stop();
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop('SIGTERM'));
  process.once('SIGINT', () => void stop('SIGINT'));
  await engine.start();
  return new Promise<number>(() => undefined); // serves until a signal
}

export async function engineStart(ctx: Ctx, flags: { port?: string }): Promise<number> {
  const home = defaultHome();
  const current = readState(home);
  if (current && alive(current.pid) && (await healthy(current.url))) {
    if (!ctx.quiet) process.stderr.write(`engine already running at ${current.url} (pid ${current.pid})\n`);
    print(ctx.format, current, () => current.url);
    return 0;
  }
  mkdirSync(home, { recursive: true, mode: 0o700 });
  const log = openSync(join(home, 'engine.log'), 'a', 0o600);
  // Re-run this same program (bundle or sources, with the same loader flags) as the daemon.
  const args = [...process.execArgv, process.argv[1]!, 'engine', 'run', ...(flags.port ? ['--port', flags.port] : [])];
  const child = spawn(process.execPath, args, { detached: true, stdio: ['ignore', log, log] });
  child.unref();
  const state = await withProgress('starting the engine', waitForEngine(home, child.pid!), { quiet: ctx.quiet });
  print(
    ctx.format,
    state,
    () => `engine running at ${state.url} (pid ${state.pid}, driver ${state.driver}); log: ${join(home, 'engine.log')}`,
  );
  return 0;
}

async function waitForEngine(home: string, pid: number, timeoutMs = 30_000): Promise<EngineState> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const st = readState(home);
    if (st && st.pid === pid && (await healthy(st.url))) return st;
    if (!alive(pid)) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const tail = (() => {
    try {
      return readFileSync(join(home, 'engine.log'), 'utf8').split('\n').slice(-15).join('\n');
    } catch {
      return '';
    }
  })();
  throw new Error(`the engine did not start; last lines of ${join(home, 'engine.log')}:\n${tail}`);
}

export async function engineStop(ctx: Ctx): Promise<number> {
  const st = readState();
  if (!st || !alive(st.pid)) {
    if (!ctx.quiet) process.stderr.write('engine is not running\n');
    return 0;
  }
  process.kill(st.pid, 'SIGTERM');
  await withProgress(
    'stopping the engine (its sandboxes stop; objects and files stay)',
    (async () => {
      while (alive(st.pid)) await new Promise((r) => setTimeout(r, 50));
    })(),
    { quiet: ctx.quiet },
  );
  if (!ctx.quiet) process.stderr.write(`engine stopped (pid ${st.pid})\n`);
  return 0;
}

export async function engineStatus(ctx: Ctx): Promise<number> {
  const st = readState();
  const running = !!st && alive(st.pid) && (await healthy(st.url));
  let info: Record<string, unknown> = {};
  if (running) {
    try {
      const token = readFileSync(st.tokenFile, 'utf8').trim();
      info = (await (
        await fetch(`${st.url}/v1/info`, { headers: { authorization: `Bearer ${token}` } })
      ).json()) as Record<string, unknown>;
    } catch {
      /* status still answers without info */
    }
  }
  const data = { running, ...(st ?? {}), ...info };
  print(ctx.format, data, () =>
    running
      ? formatTable(
          ['url', 'pid', 'driver', 'runtime', 'token file'],
          [
            [
              st.url,
              String(st.pid),
              `${(info.driver as string | undefined) ?? st.driver}`,
              `${(info.runtime as string | undefined) ?? ''}`,
              st.tokenFile,
            ],
          ],
        )
      : 'engine is not running (start it with `asb engine start`)',
  );
  return running ? 0 : 3;
}
