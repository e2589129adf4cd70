// A real engine as its own OS process (`asb engine start`, the daemon users run), for tests and
// benchmarks that measure the engine itself: its memory, its event loop, its survival. The
// in-process engine of harness.ts shares the test's heap and event loop, which would blur both.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { unmountAll } from '@asb/engine';

const ASB = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '../../bin/asb');

export interface EngineProcess {
  url: string;
  token: string;
  pid: number;
  home: string;
  /** Runs the CLI against this engine. */
  asb(...args: string[]): { status: number | null; stdout: string; stderr: string };
  /** Resident memory of the engine's process now, from /proc (bytes). */
  rssBytes(): number;
  /** Its peak resident memory so far (VmHWM). */
  peakRssBytes(): number;
  /** Its /metrics, as Prometheus text. */
  metrics(): Promise<string>;
  /** Its worst event-loop delay since the last scrape (prom-client resets the histogram), in ms. */
  eventLoopMaxMs(): Promise<number>;
  stop(): Promise<void>;
}

function statusField(pid: number, field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

export async function startEngineProcess(env: Record<string, string> = {}): Promise<EngineProcess> {
  const home = mkdtempSync(join(tmpdir(), 'asb-engine-'));
  const fullEnv = { ...process.env, ASB_HOME: home, ASB_ENGINE_PORT: '0', ASB_LOG_LEVEL: 'warn', ...env };
  const asb = (...args: string[]) => spawnSync(process.execPath, [ASB, ...args], { env: fullEnv, encoding: 'utf8', timeout: 300_000, maxBuffer: 64 * 1024 * 1024 });
  // ASB_TEST_ENGINE_NODE_ARGS: node flags for the daemon only (it re-runs the CLI's own flags),
  // such as `--cpu-prof --cpu-prof-dir=/tmp/prof` to see where its time goes.
  const nodeArgs = process.env.ASB_TEST_ENGINE_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
  const started = spawnSync(process.execPath, [...nodeArgs, ASB, 'engine', 'start', '-o', 'json'], { env: fullEnv, encoding: 'utf8', timeout: 300_000 });
  if (started.status !== 0) throw new Error(`asb engine start failed: ${started.stderr}`);
  const state = JSON.parse(started.stdout) as { url: string; pid: number; tokenFile: string };
  const token = readFileSync(state.tokenFile, 'utf8').trim();
  const metrics = async () => (await fetch(`${state.url}/metrics`, { headers: { authorization: `Bearer ${token}` } })).text();
  return {
    url: state.url, token, pid: state.pid, home, asb,
    rssBytes: () => statusField(state.pid, 'VmRSS'),
    peakRssBytes: () => statusField(state.pid, 'VmHWM'),
    metrics,
    async eventLoopMaxMs() {
      const m = /^nodejs_eventloop_lag_max_seconds (\S+)$/m.exec(await metrics());
      if (!m) throw new Error('the engine exports no nodejs_eventloop_lag_max_seconds');
      return Number(m[1]) * 1000;
    },
    async stop() {
      // Sandboxes first (as a user's `asb rm` would), then the daemon.
      const list = asb('ls', '-o', 'name');
      for (const name of list.status === 0 ? list.stdout.split('\n').filter(Boolean) : []) asb('rm', name);
      asb('engine', 'stop');
      await unmountAll(home);
      rmSync(home, { recursive: true, force: true });
    },
  };
}
