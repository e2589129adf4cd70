// The real engines of end-to-end tests, each on an ephemeral loopback port with its own ASB_HOME
// and the real gVisor driver (or bubblewrap): in-process (startTestEngine), or as its own OS
// process (startEngineProcess), the daemon users run.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { Engine, unmountAll, applyObjects } from '@asb/engine';
import type { ConnectionOpts } from '@asb/sdk';
import type { NetworkPolicySpec } from '@asb/api';

// The suites name the seeds' runtime images, which no registry here serves: the host table stands
// in for them (ASB_HOST_IMAGES), unless a test says otherwise for its engine.
process.env.ASB_HOST_IMAGES ??= '1';

export interface TestEngine {
  engine: Engine;
  conn: ConnectionOpts;
  home: string;
  stop(): Promise<void>;
}

export async function startTestEngine(
  opts: { driver?: 'gvisor' | 'bubblewrap'; home?: string; hostImages?: boolean; logger?: pino.Logger } = {},
): Promise<TestEngine> {
  const home = opts.home ?? mkdtempSync(join(tmpdir(), 'asb-e2e-'));
  const engine = new Engine(
    { home, port: 0, driver: opts.driver ?? 'gvisor', hostImages: opts.hostImages },
    opts.logger ?? pino({ level: process.env.ASB_TEST_LOG ?? 'warn' }),
  );
  await engine.start();
  return {
    engine,
    home,
    conn: { url: engine.url, token: engine.bearerToken },
    async stop() {
      await engine.stop({ deleteAll: true });
      await unmountAll(home);
      rmSync(home, { recursive: true, force: true });
    },
  };
}

/** Stops the engine as `asb engine stop` does (objects, files and snapshots stay) and starts a
 *  new one on the same home: what a restart keeps, the new engine finds. */
export async function restartTestEngine(t: TestEngine): Promise<TestEngine> {
  await t.engine.stop();
  return startTestEngine({ home: t.home });
}

/** Registers a template in the engine's store, as `asb apply` of a SandboxTemplate would. */
export async function putTemplate(
  t: TestEngine,
  name: string,
  container: { image: string; command?: string[]; limits?: Record<string, string> },
  /** The template's networkPolicy: offline (no egress) unless a test says otherwise; `managed`
   *  leaves it out (upstream's default: the internet). */
  networkPolicy: NetworkPolicySpec | 'managed' = { egress: [] },
  /** Its annotations (ours: sandbox.asb.dev/allowed-domains, credentials). */
  annotations?: Record<string, string>,
): Promise<void> {
  // (limits may include ephemeral-storage: the workspace's disk quota)
  await applyObjects(t.engine.store, [
    {
      apiVersion: 'extensions.agents.x-k8s.io/v1beta1',
      kind: 'SandboxTemplate',
      metadata: { name, namespace: 'default', ...(annotations && { annotations }) },
      spec: {
        podTemplate: {
          spec: {
            containers: [
              {
                name: 'main',
                image: container.image,
                command: container.command,
                resources: { limits: container.limits },
              },
            ],
          },
        },
        networkPolicyManagement: 'Managed',
        ...(networkPolicy === 'managed' ? {} : { networkPolicy }),
        envVarsInjectionPolicy: 'Disallowed',
        volumeClaimTemplatesPolicy: 'Disallowed',
      },
    },
  ]);
}

/** Raw HTTP to the engine with the router headers, for asserting status codes and bodies. */
export async function raw(
  t: TestEngine,
  path: string,
  init: { method?: string; body?: RequestInit['body']; headers?: Record<string, string>; sandbox?: string } = {},
): Promise<{ status: number; body: any; text: string }> {
  const headers: Record<string, string> = { authorization: `Bearer ${t.engine.bearerToken}`, ...init.headers };
  if (init.sandbox) headers['x-sandbox-id'] = init.sandbox;
  const res = await fetch(t.engine.url + path, {
    method: init.method ?? 'GET',
    body: init.body,
    headers,
    duplex: 'half',
  });
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: res.status, body, text };
}

const ASB = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '../../bin/asb');

export interface EngineProcess {
  url: string;
  token: string;
  /** SDK connection options for this engine. */
  conn: ConnectionOpts & { url: string; token: string };
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
  /** With `heapSnapshots`: the JS heap and external memory it holds right after a full collection
   *  (a heap snapshot, which SIGUSR2 asks for, collects first), in bytes. Unlike its RSS, this does
   *  not depend on when V8 chooses to collect or to give pages back. */
  heldBytes(): Promise<number>;
  /** Its worst event-loop delay since the last scrape (prom-client resets the histogram), in ms. */
  eventLoopMaxMs(): Promise<number>;
  /** Sends the engine `signal` (SIGKILL: a crash, nothing released) and resolves once it is gone. */
  kill(signal: NodeJS.Signals): Promise<void>;
  /** Deletes its sandboxes (as `asb rm` would), stops it, reaps what is left and removes its home. */
  stop(): Promise<void>;
}

function statusField(pid: number, field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

/** Whether `pid` still runs (a zombie, killed but not yet reaped, does not). */
function running(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/**
 * `asb engine start` (the daemon users run, its log in $ASB_HOME/engine.log), for tests and
 * benchmarks that measure the engine itself (its memory, its event loop, its survival; an
 * in-process engine shares the test's heap and event loop, which would blur both) or kill it.
 * With `home`, it starts on an existing one (as after a crash): what the last engine left, it finds.
 */
export async function startEngineProcess(
  env: Record<string, string> = {},
  opts: { home?: string; heapSnapshots?: boolean } = {},
): Promise<EngineProcess> {
  const home = opts.home ?? mkdtempSync(join(tmpdir(), 'asb-engine-'));
  const snapshots = join(home, 'heap-snapshots');
  const fullEnv = { ...process.env, ASB_HOME: home, ASB_ENGINE_PORT: '0', ASB_LOG_LEVEL: 'warn', ...env };
  const asb = (...args: string[]) =>
    spawnSync(process.execPath, [ASB, ...args], {
      env: fullEnv,
      encoding: 'utf8',
      timeout: 300_000,
      maxBuffer: 64 * 1024 * 1024,
    });
  // ASB_TEST_ENGINE_NODE_ARGS: node flags for the daemon only (it re-runs the CLI's own flags),
  // such as `--cpu-prof --cpu-prof-dir=/tmp/prof` to see where its time goes.
  const nodeArgs = process.env.ASB_TEST_ENGINE_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
  if (opts.heapSnapshots) nodeArgs.push('--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${snapshots}`);
  const started = spawnSync(process.execPath, [...nodeArgs, ASB, 'engine', 'start', '-o', 'json'], {
    env: fullEnv,
    encoding: 'utf8',
    timeout: 300_000,
  });
  if (started.status !== 0) throw new Error(`asb engine start failed: ${started.stderr}`);
  const state = JSON.parse(started.stdout) as { url: string; pid: number; tokenFile: string };
  const token = readFileSync(state.tokenFile, 'utf8').trim();
  const metrics = async () =>
    (await fetch(`${state.url}/metrics`, { headers: { authorization: `Bearer ${token}` } })).text();
  const kill = async (signal: NodeJS.Signals) => {
    try {
      process.kill(state.pid, signal);
    } catch {
      /* gone already */
    }
    while (running(state.pid)) await new Promise((r) => setTimeout(r, 50));
  };
  return {
    url: state.url,
    token,
    conn: { url: state.url, token },
    pid: state.pid,
    home,
    asb,
    kill,
    rssBytes: () => statusField(state.pid, 'VmRSS'),
    peakRssBytes: () => statusField(state.pid, 'VmHWM'),
    metrics,
    async heldBytes() {
      if (!opts.heapSnapshots) throw new Error('heldBytes() needs startEngineProcess(…, { heapSnapshots: true })');
      mkdirSync(snapshots, { recursive: true });
      process.kill(state.pid, 'SIGUSR2');
      // Node collects and takes the snapshot, then creates the file and writes it, all on the
      // engine's main thread: once the file has stopped growing, the collection is over. (A scrape
      // sent while the engine is blocked could outwait its headers timeout.)
      let size = -1;
      for (const until = Date.now() + 120_000; ;) {
        if (Date.now() > until) throw new Error('the engine wrote no heap snapshot within two minutes');
        await new Promise((r) => setTimeout(r, 500));
        const [file] = readdirSync(snapshots);
        if (!file) continue;
        const now = statSync(join(snapshots, file)).size;
        if (now > 0 && now === size) break;
        size = now;
      }
      const text = await metrics();
      rmSync(snapshots, { recursive: true, force: true });
      const metric = (name: string) => {
        const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
        if (!m) throw new Error(`the engine exports no ${name}`);
        return Number(m[1]);
      };
      return metric('nodejs_heap_size_used_bytes') + metric('nodejs_external_memory_bytes');
    },
    async eventLoopMaxMs() {
      const m = /^nodejs_eventloop_lag_max_seconds (\S+)$/m.exec(await metrics());
      if (!m) throw new Error('the engine exports no nodejs_eventloop_lag_max_seconds');
      return Number(m[1]) * 1000;
    },
    async stop() {
      // Sandboxes first (as a user's `asb rm` would), then the daemon.
      if (running(state.pid)) {
        const list = asb('ls', '-o', 'name');
        for (const name of list.status === 0 ? list.stdout.split('\n').filter(Boolean) : []) asb('rm', name);
        asb('engine', 'stop');
        await kill('SIGTERM');
      }
      // What a killed engine left running (its gVisor sandboxes outlive it), so that nothing of
      // this test outlives it.
      // Each container on its own: one `delete` that fails (runsc's deadline, under load) must not
      // leave the rest running after their home is gone (it did: three sandboxes, for 25 minutes).
      const runsc = (...args: string[]) =>
        execFileSync('runsc', ['--root', join(home, 'runsc'), ...args], { encoding: 'utf8' });
      let left: string[] = [];
      if (existsSync(join(home, 'runsc'))) {
        try {
          left = runsc('list', '--quiet').split('\n').filter(Boolean);
        } catch {
          /* none */
        }
      }
      for (const id of left) {
        try {
          runsc('delete', '--force', id);
        } catch {
          /* retried below */
        }
      }
      for (const id of left) {
        try {
          runsc('kill', '--all', id, 'KILL');
          runsc('delete', '--force', id);
        } catch {
          /* gone */
        }
      }
      await unmountAll(home);
      rmSync(home, { recursive: true, force: true });
    },
  };
}
