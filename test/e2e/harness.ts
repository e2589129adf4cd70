// A real engine for end-to-end tests: in-process, on an ephemeral loopback port, with its own
// ASB_HOME, the real gVisor driver, and SDK connection options pointing at it.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { Engine, unmountAll, applyObjects } from '@asb/engine';
import type { AnyObject } from '@asb/api';
import type { ConnectionOpts } from '@asb/sdk';

export interface TestEngine { engine: Engine; conn: ConnectionOpts; home: string; stop(): Promise<void> }

export async function startTestEngine(opts: { driver?: 'gvisor' | 'bubblewrap'; home?: string } = {}): Promise<TestEngine> {
  const home = opts.home ?? mkdtempSync(join(tmpdir(), 'asb-e2e-'));
  const engine = new Engine({ home, port: 0, driver: opts.driver ?? 'gvisor' }, pino({ level: process.env.ASB_TEST_LOG ?? 'warn' }));
  await engine.start();
  return {
    engine, home, conn: { url: engine.url, token: engine.bearerToken },
    async stop() { await engine.stop({ deleteAll: true }); await unmountAll(home); rmSync(home, { recursive: true, force: true }); },
  };
}

/** Stops the engine as `asb engine stop` does (objects, files and snapshots stay) and starts a
 *  new one on the same home: what a restart keeps, the new engine finds. */
export async function restartTestEngine(t: TestEngine): Promise<TestEngine> {
  await t.engine.stop();
  return startTestEngine({ home: t.home });
}

/** Registers a template in the engine's store, as `asb apply` of a SandboxTemplate would. */
export async function putTemplate(t: TestEngine, name: string, container: { image: string; command?: string[]; limits?: Record<string, string> }): Promise<void> {
  // (limits may include ephemeral-storage: the workspace's disk quota)
  await applyObjects(t.engine.store, [{
    apiVersion: 'extensions.agents.x-k8s.io/v1beta1', kind: 'SandboxTemplate', metadata: { name, namespace: 'default' },
    spec: {
      podTemplate: { spec: { containers: [{ name: 'main', image: container.image, command: container.command, resources: { limits: container.limits } }] } },
      networkPolicyManagement: 'Managed', envVarsInjectionPolicy: 'Disallowed', volumeClaimTemplatesPolicy: 'Disallowed',
    },
  } as AnyObject]);
}

/** Raw HTTP to the engine with the router headers, for asserting status codes and bodies. */
export async function raw(t: TestEngine, path: string, init: { method?: string; body?: RequestInit['body']; headers?: Record<string, string>; sandbox?: string } = {}): Promise<{ status: number; body: any; text: string }> {
  const headers: Record<string, string> = { authorization: `Bearer ${t.engine.bearerToken}`, ...init.headers };
  if (init.sandbox) headers['x-sandbox-id'] = init.sandbox;
  const res = await fetch(t.engine.url + path, { method: init.method ?? 'GET', body: init.body, headers, duplex: 'half' } as RequestInit);
  const text = await res.text();
  let body: unknown;
  try { body = JSON.parse(text); } catch { body = undefined; }
  return { status: res.status, body, text };
}

export interface EngineProcess { pid: number; conn: { url: string; token: string }; home: string; stop(): Promise<void> }

/** `asb engine run` as its own process (the bundle in dist/), for what an in-process engine
 *  cannot show: its own memory (RSS), and that it survives what it is sent. */
export async function startEngineProcess(env: Record<string, string> = {}): Promise<EngineProcess> {
  const home = mkdtempSync(join(tmpdir(), 'asb-e2e-proc-'));
  const asb = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '../../bin/asb');
  const child = spawn(process.execPath, [asb, 'engine', 'run'], {
    env: { ...process.env, ASB_HOME: home, ASB_ENGINE_PORT: '0', ASB_LOG_LEVEL: 'warn', ...env }, stdio: ['ignore', 'ignore', 'inherit'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  const stateFile = join(home, 'engine.json');
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`asb engine run exited with ${child.exitCode}`);
    if (i > 600) { child.kill('SIGKILL'); throw new Error('asb engine run did not start within 60 s'); }
    if (existsSync(stateFile)) {
      const state = JSON.parse(readFileSync(stateFile, 'utf8')) as { url: string; pid: number };
      if (state.pid === child.pid) {
        return {
          pid: child.pid, home, conn: { url: state.url, token: readFileSync(join(home, 'token'), 'utf8').trim() },
          async stop() {
            if (child.exitCode === null) child.kill('SIGTERM');
            await exited;
            await unmountAll(home);
            rmSync(home, { recursive: true, force: true });
          },
        };
      }
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}
