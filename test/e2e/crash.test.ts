// kill -9 of the engine while claims are being served: nothing acknowledged is lost, running
// sandboxes are re-adopted with their processes, orphans are reaped, the pool refills.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { Sandbox, Objects, apply } from '@asb/sdk';
import { startEngineProcess, type EngineProcess } from './harness.ts';
import { sleep, waitFor } from '../support/wait.ts';

describe('a crashed engine', () => {
  let engine: EngineProcess | undefined;
  after(async () => {
    await engine?.stop();
  });

  it('loses nothing acknowledged, re-adopts running sandboxes and reaps the rest', async () => {
    engine = await startEngineProcess();
    const home = engine.home;
    let conn = engine.conn;
    await apply(
      `apiVersion: extensions.agents.x-k8s.io/v1alpha1
kind: SandboxWarmPool
metadata: { name: pool }
spec: { replicas: 3, sandboxTemplateRef: { name: python-runtime-template } }
`,
      conn,
    );
    const api = () => new Objects(conn);
    await waitFor(
      '3 ready members',
      async () => (await api().get('SandboxWarmPool', 'pool')).status?.readyReplicas === 3,
    );
    const keeper = await Sandbox.create({ ...conn, name: 'keeper', warmPool: 'none' });
    await keeper.files.write('state.txt', 'survives');
    const bg = await keeper.commands.start('sleep 1000');
    // An expiry timer that must fire after the restart, not be forgotten with the old process.
    const expiring = await Sandbox.create({ ...conn, name: 'expiring', ttlSeconds: 8 });

    // Claims in flight when the engine dies: some acknowledged, some not.
    const acknowledged: string[] = [];
    const inflight = Array.from({ length: 8 }, (_, i) =>
      Sandbox.create({ ...conn, name: `c${i}` }).then(
        (sb) => {
          acknowledged.push(sb.info.claim!);
        },
        () => undefined,
      ),
    );
    await sleep(400);
    await engine.kill('SIGKILL');
    await Promise.all(inflight);

    engine = await startEngineProcess({}, { home });
    conn = engine.conn;
    // Every acknowledged claim is still there and gets (or keeps) a ready sandbox.
    for (const name of acknowledged) assert.ok(await api().get('SandboxClaim', name), `claim ${name} survived`);
    await waitFor(
      'every claim to be ready',
      async () => {
        const claims = await api().list('SandboxClaim');
        return (
          claims.length >= acknowledged.length &&
          claims.every((c) => c.status?.conditions?.some((x) => x.type === 'Ready' && x.status === 'True'))
        );
      },
      120_000,
    );
    // The sandbox that was running was re-adopted: same process, same file.
    const again = await Sandbox.connect('keeper', conn);
    assert.equal(await again.files.read('state.txt').then((b) => Buffer.from(b).toString()), 'survives');
    const ps = await again.commands.list();
    assert.ok(
      ps.some((p) => p.id === bg.id && p.pid === bg.pid && p.running),
      `background process ${bg.pid} still running: ${JSON.stringify(ps)}`,
    );
    // The expiry timer resumed: the claim with a ttl goes, with its sandbox.
    await waitFor(
      'the ttl claim to expire',
      async () => {
        const names = (await api().list('SandboxClaim')).map((c) => c.metadata.name);
        return !names.includes(expiring.info.claim!);
      },
      60_000,
    );
    await waitFor(
      'the pool to be whole again',
      async () => (await api().get('SandboxWarmPool', 'pool')).status?.readyReplicas === 3,
      120_000,
    );
    // Nothing leaked: one container per Sandbox object, nothing else.
    await waitFor(
      'containers to match objects',
      async () => {
        const objects = (await api().list('Sandbox')).map((s) => s.metadata.name).sort();
        const containers = execFileSync('runsc', ['--root', join(home, 'runsc'), 'list', '--quiet'], {
          encoding: 'utf8',
        })
          .split('\n')
          .filter(Boolean);
        return containers.length === objects.length;
      },
      60_000,
    );
  });
});
