// kill -9 of the engine while claims are being served: nothing acknowledged is lost, running
// sandboxes are re-adopted with their processes, orphans are reaped, the pool refills.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Sandbox, Objects, apply, type ConnectionOpts } from '@asb/sdk';
import { unmountAll } from '@asb/engine';

const ASB = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '../../bin/asb');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try { const v = await fn(); if (v) return v; } catch (err) { last = err; }
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}

describe('a crashed engine', () => {
  const home = mkdtempSync(join(tmpdir(), 'asb-crash-'));
  const env = { ...process.env, ASB_HOME: home, ASB_ENGINE_PORT: '0', ASB_LOG_LEVEL: 'warn' };
  let engine: ChildProcess | undefined;

  /** `asb engine run` in the foreground, as its own process, so that it can be killed for real. */
  async function startEngine(): Promise<ConnectionOpts> {
    const before = existsSync(join(home, 'engine.json')) ? readFileSync(join(home, 'engine.json'), 'utf8') : '';
    engine = spawn(process.execPath, [ASB, 'engine', 'run'], { env, stdio: ['ignore', 'ignore', 'inherit'] });
    const state = await waitFor('the engine to start', async () => {
      const text = existsSync(join(home, 'engine.json')) ? readFileSync(join(home, 'engine.json'), 'utf8') : '';
      if (!text || text === before) return false;
      const st = JSON.parse(text) as { url: string; pid: number };
      return st.pid === engine!.pid ? st : false;
    });
    return { url: state.url, token: readFileSync(join(home, 'token'), 'utf8').trim() };
  }

  after(async () => {
    if (engine && engine.exitCode === null) {
      engine.kill('SIGTERM');
      await new Promise((r) => engine!.once('exit', r));
    }
    try { execFileSync('runsc', ['--root', join(home, 'runsc'), 'list', '--quiet'], { encoding: 'utf8' }).split('\n').filter(Boolean)
      .forEach((id) => execFileSync('runsc', ['--root', join(home, 'runsc'), 'delete', '--force', id])); } catch { /* none */ }
    await unmountAll(home);
    rmSync(home, { recursive: true, force: true });
  });

  it('loses nothing acknowledged, re-adopts running sandboxes and reaps the rest', async () => {
    let conn = await startEngine();
    await apply(`apiVersion: extensions.agents.x-k8s.io/v1alpha1
kind: SandboxWarmPool
metadata: { name: pool }
spec: { replicas: 3, sandboxTemplateRef: { name: python-runtime-template } }
`, conn);
    const api = () => new Objects(conn);
    await waitFor('3 ready members', async () => (await api().get('SandboxWarmPool', 'pool')).status?.readyReplicas === 3);
    const keeper = await Sandbox.create({ ...conn, name: 'keeper', warmPool: 'none' });
    await keeper.files.write('state.txt', 'survives');
    const bg = await keeper.commands.start('sleep 1000');
    // An expiry timer that must fire after the restart, not be forgotten with the old process.
    const expiring = await Sandbox.create({ ...conn, name: 'expiring', ttlSeconds: 8 });

    // Claims in flight when the engine dies: some acknowledged, some not.
    const acknowledged: string[] = [];
    const inflight = Array.from({ length: 8 }, (_, i) => Sandbox.create({ ...conn, name: `c${i}` }).then((sb) => { acknowledged.push(sb.info.claim!); }, () => undefined));
    await sleep(400);
    engine!.kill('SIGKILL');
    await new Promise((r) => engine!.once('exit', r));
    await Promise.all(inflight);

    conn = await startEngine();
    // Every acknowledged claim is still there and gets (or keeps) a ready sandbox.
    for (const name of acknowledged) assert.ok(await api().get('SandboxClaim', name), `claim ${name} survived`);
    await waitFor('every claim to be ready', async () => {
      const claims = await api().list('SandboxClaim');
      return claims.length >= acknowledged.length && claims.every((c) => c.status?.conditions?.some((x) => x.type === 'Ready' && x.status === 'True'));
    }, 120_000);
    // The sandbox that was running was re-adopted: same process, same file.
    const again = await Sandbox.connect('keeper', conn);
    assert.equal(await again.files.read('state.txt').then((b) => Buffer.from(b).toString()), 'survives');
    const ps = await again.commands.list();
    assert.ok(ps.some((p) => p.id === bg.id && p.pid === bg.pid && p.running), `background process ${bg.pid} still running: ${JSON.stringify(ps)}`);
    // The expiry timer resumed: the claim with a ttl goes, with its sandbox.
    await waitFor('the ttl claim to expire', async () => {
      const names = (await api().list('SandboxClaim')).map((c) => c.metadata.name);
      return !names.includes(expiring.info.claim!);
    }, 60_000);
    await waitFor('the pool to be whole again', async () => (await api().get('SandboxWarmPool', 'pool')).status?.readyReplicas === 3, 120_000);
    // Nothing leaked: one container per Sandbox object, nothing else.
    await waitFor('containers to match objects', async () => {
      const objects = (await api().list('Sandbox')).map((s) => s.metadata.name).sort();
      const containers = execFileSync('runsc', ['--root', join(home, 'runsc'), 'list', '--quiet'], { encoding: 'utf8' }).split('\n').filter(Boolean);
      return containers.length === objects.length;
    }, 60_000);
  });
});
