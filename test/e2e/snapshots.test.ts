// Suspend and resume with memory snapshots on real gVisor (checkpoint/restore): seed 002's
// counter, a process holding memory plus a workspace file, forks, retention, reset, golden
// starts, and the errors (never suspended, deleted or corrupt snapshot, disk full).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, rmSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import {
  Sandbox,
  Snapshots,
  apply,
  Objects,
  ConflictError,
  InvalidError,
  NotFoundError,
  InsufficientStorageError,
} from '@asb/sdk';
import { startTestEngine, restartTestEngine, raw, type TestEngine } from './harness.ts';
import { sandboxYaml, templateYaml } from '../support/manifests.ts';

const fixture = (f: string) => readFileSync(new URL(`../../packages/api/test/fixtures/${f}`, import.meta.url), 'utf8');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The last "Count: N" the sandbox's main process printed (seed 002 reads the pod's log). */
async function lastCount(sb: Sandbox): Promise<number | undefined> {
  const { stdout } = await sb.commands.output('main');
  const counts = [...stdout.matchAll(/Count: (\d+)/g)].map((m) => Number(m[1]));
  return counts.at(-1);
}

describe('suspend and resume with memory snapshots', () => {
  let t: TestEngine;
  before(async () => {
    t = await startTestEngine();
    // Seed 002's template as written (no networkPolicy: upstream's default, the internet). Debian's
    // runsc 20221219 networks sandboxes on the host kernel's stack on this kernel, which it cannot
    // checkpoint (README, "Networking"): there, and only there, the template is made offline.
    const noNetstack = /20221219/.test(execFileSync(t.engine.config.runscPath, ['--version'], { encoding: 'utf8' }));
    const seed = fixture('seed002-counter-template.yaml');
    await apply(noNetstack ? seed.replace(/^spec:\n/m, 'spec:\n  networkPolicy: { egress: [] }\n') : seed, t.conn);
  });
  after(async () => {
    await t?.stop();
  });

  it('seed 002: the counter continues from where it stopped, neither reset nor advanced while suspended', async () => {
    await using sb = await Sandbox.create({ ...t.conn, template: 'python-counter-template' });
    await sleep(3000);
    const before = await lastCount(sb);
    assert.ok(before !== undefined && before >= 1, `the counter runs (${before})`);
    const suspended = await sb.suspend({ snapshot: true });
    assert.ok(suspended.snapshotId, 'suspend returns the snapshot id');
    assert.equal((await sb.refresh()).phase, 'Suspended');
    await sleep(4000);
    const resumed = await sb.resume();
    assert.equal(resumed.restoredFromSnapshot, true);
    assert.equal(resumed.snapshotId, suspended.snapshotId);
    const after = await lastCount(sb);
    assert.ok(after !== undefined && after >= before, `count after resume ${after} ≥ before ${before}`);
    // Suspended for 4 s: a counter that kept going (or restarted and caught up) would show it.
    assert.ok(
      after <= before + 2,
      `count after resume ${after} did not advance by the suspended interval (before ${before})`,
    );
    await sleep(2000);
    assert.ok((await lastCount(sb))! > after, 'and it keeps counting');
    const list = await sb.snapshots.list();
    assert.deepEqual(
      list.map((s) => s.id),
      [suspended.snapshotId],
    );
    assert.equal(list[0]!.info.template, 'python-counter-template');
    assert.ok(list[0]!.info.sizeBytes! > 0);
  });

  it('a restored sandbox is reached on its own socket, and suspends, resumes and snapshots again, state intact', async () => {
    // gVisor 2025 on runs the agent's save/restore hook (asb-spawn --save-restore-hook): the
    // restored Go agent serves the socket the restore gave it. Without the hook (Debian's runsc,
    // the node agent) the engine reaches it through a relay exec'd into the sandbox.
    const { runscPath, agent } = t.engine.config;
    const help = execFileSync(runscPath, ['help', 'checkpoint'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const hooked = agent === 'go' && help.includes('save-restore-exec-argv');
    await using sb = await Sandbox.create({ ...t.conn, warmPool: 'none' });
    await sb.commands.start(`python3 -c '
import os, time
n = 0
while True:
    n += 1
    open("/tmp/n.new", "w").write(str(n))
    os.replace("/tmp/n.new", "/tmp/n")  # a reader never sees the file truncated
    time.sleep(0.05)
'`);
    for (let cycle = 0; cycle < 3; cycle++) {
      await sleep(200);
      const before = Number((await sb.run('cat /tmp/n')).stdout);
      await sb.suspend({ snapshot: true });
      const resumed = await sb.resume();
      assert.equal(resumed.restoredFromSnapshot, true, `cycle ${cycle}: restored from the snapshot`);
      const after = Number((await sb.run('cat /tmp/n')).stdout);
      assert.ok(
        after >= before && after < before + 20,
        `cycle ${cycle}: the loop went on from ${before} (now ${after})`,
      );
      const relays = (await sb.run('ps -eo args')).stdout.split('\n').filter((l) => l.includes('--relay'));
      assert.equal(relays.length, hooked ? 0 : 1, `cycle ${cycle}: relays in the sandbox: ${JSON.stringify(relays)}`);
    }
    // Snapshots of the running sandbox (checkpoint and restore in place): gVisor runs the hook's
    // save only on the first checkpoint, so the agent must end the old connection at the restore.
    for (let i = 0; i < 4; i++) {
      await sb.snapshots.create();
      const relays = (await sb.run('ps -eo args')).stdout.split('\n').filter((l) => l.includes('--relay'));
      assert.equal(relays.length, hooked ? 0 : 1, `snapshot ${i}: relays in the sandbox: ${JSON.stringify(relays)}`);
    }
  });

  it('a snapshot keeps a running sandbox up where gVisor can: commands in flight finish, forks come back on their own socket', async (ctx) => {
    // Current gVisor checkpoints a sandbox and leaves it running (with the Go agent's hook);
    // Debian's runsc 20221219 cannot, and there the snapshot stops it and restores it at once.
    const { runscPath, agent } = t.engine.config;
    const help = execFileSync(runscPath, ['help', 'checkpoint'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    if (agent !== 'go' || !help.includes('save-restore-exec-argv'))
      return ctx.skip('this runsc cannot checkpoint a sandbox and leave it running');
    await using sb = await Sandbox.create({ ...t.conn, warmPool: 'none' });
    const wd = (await sb.run('pwd')).stdout.trim();
    for (let i = 0; i < 2; i++) {
      await sb.run(`echo ${i} > /tmp/at-snapshot`);
      await sb.run('true'); // the exec lane open: a command without cwd goes through it
      const viaLane = sb.run('sleep 0.4; echo lane');
      const viaAgent = sb.run('sleep 0.4; echo agent', { cwd: wd }); // with a cwd: through the agent
      await sleep(100);
      const snap = await sb.snapshots.create();
      assert.deepEqual(
        [(await viaLane).stdout, (await viaAgent).stdout],
        ['lane\n', 'agent\n'],
        `snapshot ${i}: the commands in flight finished`,
      );
      await sb.run(`echo after > /tmp/at-snapshot`);
      await using fork = await Sandbox.create({ ...t.conn, fromSnapshot: snap.id });
      assert.equal((await fork.run('cat /tmp/at-snapshot')).stdout, `${i}\n`, `snapshot ${i}: the fork's memory`);
      const relays = (await fork.run('ps -eo args')).stdout.split('\n').filter((l) => l.includes('--relay'));
      assert.deepEqual(relays, [], `snapshot ${i}: the fork is reached on its own socket`);
    }
    assert.equal((await sb.run('cat /tmp/at-snapshot')).stdout, 'after\n');
  });

  it('restores a process holding a large in-memory dict and the workspace file, both intact', async () => {
    await using sb = await Sandbox.create({ ...t.conn });
    await sb.files.write('notes.txt', 'written before the snapshot');
    const holder = await sb.commands.start(`python3 -c '
import sys, hashlib
d = {i: str(i) * 10 for i in range(300000)}
digest = hashlib.sha256(repr(sorted(d.items())).encode()).hexdigest()
print("ready", digest, flush=True)
for line in sys.stdin:
    print("again", hashlib.sha256(repr(sorted(d.items())).encode()).hexdigest(), len(d), flush=True)
'`);
    let first = '';
    // The whole line: with PYTHONUNBUFFERED (the runtime template's env) print() writes "ready",
    // the space and the digest apart, and a read may come between them.
    for (let i = 0; i < 100 && !/ready \w{64}\n/.test(first); i++) {
      await sleep(100);
      first = (await sb.commands.output(holder.id)).stdout;
    }
    const digest = first.match(/ready (\w+)/)?.[1];
    assert.ok(digest, `the holder started: ${first}`);
    const res = await sb.suspend({ snapshot: true });
    await sleep(500);
    assert.equal((await sb.resume()).restoredFromSnapshot, true);
    assert.equal(Buffer.from(await sb.files.read('notes.txt')).toString(), 'written before the snapshot');
    await sb.commands.sendStdin(holder.id, 'check\n');
    let out = '';
    for (let i = 0; i < 100 && !/again \w{64} \d+\n/.test(out); i++) {
      await sleep(100);
      out = (await sb.commands.output(holder.id)).stdout;
    }
    assert.match(out, new RegExp(`again ${digest} 300000`), 'same process, same dict after restore');
    assert.ok((await sb.snapshots.list()).some((s) => s.id === res.snapshotId));
  });

  it('forks a sandbox from a snapshot: it runs beside the original with independent state', async () => {
    await using original = await Sandbox.create({ ...t.conn });
    await original.files.write('shared.txt', 'v1');
    await original.run('echo 1 > /tmp/mem-state');
    const snap = await original.snapshots.create();
    // The original kept running through the snapshot.
    assert.equal((await original.run('cat /tmp/mem-state')).stdout.trim(), '1');
    await using fork = await Sandbox.create({ ...t.conn, fromSnapshot: snap.id });
    assert.notEqual(fork.id, original.id);
    assert.equal(fork.info.restoredFrom, snap.id);
    assert.equal((await fork.run('cat /tmp/mem-state')).stdout.trim(), '1', 'the fork has the tmpfs of the snapshot');
    assert.equal(Buffer.from(await fork.files.read('shared.txt')).toString(), 'v1');
    await fork.files.write('shared.txt', 'fork');
    await fork.run('echo fork > /tmp/mem-state');
    await original.files.write('shared.txt', 'original');
    assert.equal(Buffer.from(await original.files.read('shared.txt')).toString(), 'original');
    assert.equal(Buffer.from(await fork.files.read('shared.txt')).toString(), 'fork');
    assert.equal((await original.run('cat /tmp/mem-state')).stdout.trim(), '1');
    assert.equal((await fork.run('cat /tmp/mem-state')).stdout.trim(), 'fork');
  });

  it('carries volumes (volumeClaimTemplates) into snapshots and forks, each fork with its own copy', async () => {
    await apply(sandboxYaml('with-volume', { volumes: { data: { mountPath: '/data', storage: '32Mi' } } }), t.conn);
    const sb = await Sandbox.connect('with-volume', t.conn);
    await sb.run('echo original > /data/v.txt');
    const snap = await sb.snapshots.create();
    await using fork = await Sandbox.create({ ...t.conn, fromSnapshot: snap.id });
    assert.equal((await fork.run('cat /data/v.txt')).stdout, 'original\n');
    await fork.run('echo forked > /data/v.txt');
    assert.equal((await sb.run('cat /data/v.txt')).stdout, 'original\n');
    const fill = await fork.run('head -c 50000000 /dev/zero > /data/fill; rm -f /data/fill');
    assert.match(fill.stderr, /No space left on device/, "the fork's volume keeps its size");
    await sb.kill();
  });

  it('keeps at most max-snapshots per sandbox, oldest removed first; snapshots survive an engine restart', async () => {
    await apply(templateYaml('two-snapshots', { annotations: { 'sandbox.asb.dev/max-snapshots': '2' } }), t.conn);
    const sb = await Sandbox.create({ ...t.conn, template: 'two-snapshots' });
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await sb.snapshots.create()).id);
    assert.deepEqual(
      (await sb.snapshots.list()).map((s) => s.id),
      ids.slice(1),
    );
    assert.equal((await sb.run('echo alive')).stdout.trim(), 'alive');
    await sb.suspend({ snapshot: true });
    assert.equal((await sb.snapshots.list()).length, 2, "the suspend's snapshot counts too");
    // A new engine on the same home lists them and resumes from the suspend's snapshot.
    t = await restartTestEngine(t);
    const again = await Sandbox.connect(sb.id, t.conn);
    const all = (await new Snapshots(t.conn).list()).map((s) => s.id);
    assert.equal(all.filter((id) => ids.includes(id)).length, 1);
    assert.ok(all.includes(again.info.resumeSnapshot!));
    assert.equal((await again.resume()).snapshotId, again.info.resumeSnapshot);
    assert.equal((await again.run('echo alive')).stdout.trim(), 'alive');
    await again.kill();
  });

  it("resets a sandbox to its template's clean state in place", async () => {
    await using sb = await Sandbox.create({ ...t.conn });
    await sb.files.write('junk.txt', 'x');
    await sb.run('echo y > /tmp/junk');
    const bg = await sb.commands.start('sleep 1000');
    const info = await sb.reset();
    assert.equal(info.name, sb.id);
    assert.equal(info.uid, sb.info.uid, 'same sandbox, not a new one');
    assert.equal(await sb.files.exists('junk.txt'), false);
    assert.equal((await sb.run('test -e /tmp/junk; echo $?')).stdout.trim(), '1');
    assert.ok(!(await sb.commands.list()).some((p) => p.id === bg.id && p.running));
  });

  it('starts new sandboxes of a template from its golden snapshot (after setup), pool members too', async () => {
    await apply(templateYaml('golden'), t.conn);
    const setup = await Sandbox.create({ ...t.conn, template: 'golden' });
    await setup.files.write('deps/installed.txt', 'dependencies installed');
    await setup.run('echo warmed > /tmp/setup-state');
    const golden = await setup.snapshots.create();
    await setup.kill();
    const api = new Objects(t.conn);
    await api.patch('SandboxTemplate', 'golden', {
      metadata: { annotations: { 'sandbox.asb.dev/golden-snapshot': golden.id } },
    });
    await using a = await Sandbox.create({ ...t.conn, template: 'golden', warmPool: 'none' });
    assert.equal(a.info.restoredFrom, golden.id);
    assert.equal(Buffer.from(await a.files.read('deps/installed.txt')).toString(), 'dependencies installed');
    assert.equal((await a.run('cat /tmp/setup-state')).stdout.trim(), 'warmed');
    // Each start gets its own copy of the golden files.
    await a.files.write('deps/installed.txt', 'changed in a');
    // Warm pool members start from it too, and a claim gets one of them.
    await apply(
      `apiVersion: extensions.agents.x-k8s.io/v1alpha1
kind: SandboxWarmPool
metadata: { name: golden-pool }
spec: { replicas: 1, sandboxTemplateRef: { name: golden } }
`,
      t.conn,
    );
    for (let i = 0; i < 300 && (await api.get('SandboxWarmPool', 'golden-pool')).status?.readyReplicas !== 1; i++)
      await sleep(100);
    await using b = await Sandbox.create({ ...t.conn, template: 'golden' });
    assert.ok(b.id.startsWith('golden-pool-'), `served by the pool (${b.id})`);
    assert.equal(b.info.restoredFrom, golden.id);
    assert.equal(Buffer.from(await b.files.read('deps/installed.txt')).toString(), 'dependencies installed');
    await api.delete('SandboxWarmPool', 'golden-pool');
    // A reset goes back to the golden state, not to an empty sandbox.
    await b.files.write('deps/installed.txt', 'changed in b');
    await b.reset();
    assert.equal(Buffer.from(await b.files.read('deps/installed.txt')).toString(), 'dependencies installed');
  });

  it('says clearly what cannot be done, and changes nothing', async () => {
    await using sb = await Sandbox.create({ ...t.conn });
    // Resume of a sandbox never suspended.
    // A conflict with the sandbox's state: its own class (it was an InvalidError).
    await assert.rejects(
      sb.resume(),
      (err: Error) => err instanceof ConflictError && /not suspended/.test(err.message),
    );
    // Restore of a deleted snapshot, by fork and by resume.
    const gone = await sb.snapshots.create();
    await gone.delete();
    await assert.rejects(
      Sandbox.create({ ...t.conn, fromSnapshot: gone.id }),
      (err: Error) => err instanceof NotFoundError && /not found/.test(err.message),
    );
    const kept = await sb.suspend({ snapshot: true });
    await assert.rejects(
      new Snapshots(t.conn).get(kept.snapshotId!).then((s) => s.delete()),
      (err: Error) => /suspended sandbox/.test(err.message),
      'the snapshot of a suspended sandbox is not deleted under it',
    );
    // A corrupt snapshot: the resume is refused and the sandbox stays suspended.
    writeFileSync(join(t.home, 'snapshots', kept.snapshotId!, 'checkpoint', 'checkpoint.img'), '');
    await assert.rejects(
      sb.resume(),
      (err: Error) =>
        err instanceof ConflictError && /corrupt/.test(err.message) && /discard-snapshot/.test(err.message),
    );
    assert.equal((await sb.refresh()).phase, 'Suspended');
    const fresh = await sb.resume({ discardSnapshot: true });
    assert.equal(fresh.restoredFromSnapshot, false);
    assert.equal((await sb.run('echo back')).stdout.trim(), 'back');
    // A snapshot never crosses namespaces: not by fork, not by an applied annotation.
    const mine = await sb.snapshots.create();
    await assert.rejects(
      Sandbox.create({ ...t.conn, namespace: 'other', fromSnapshot: mine.id }),
      (err: Error) => err instanceof InvalidError && /namespace/.test(err.message),
    );
    const restore = { 'sandbox.asb.dev/restore-snapshot': mine.id };
    await apply(sandboxYaml('thief', { namespace: 'other', annotations: restore }), t.conn);
    await assert.rejects(
      Sandbox.connect('thief', { ...t.conn, namespace: 'other', waitReadyMs: 30_000 }),
      (err: Error) => /belongs to namespace "default"/.test(err.message),
    );
    await new Objects({ ...t.conn, namespace: 'other' }).delete('Sandbox', 'thief');
    // Unknown snapshot id, malformed body.
    assert.equal((await raw(t, '/v1/snapshots/snap-nope-000')).status, 404);
    assert.equal(
      (
        await raw(t, `/v1/sandboxes/default/${sb.id}/suspend`, {
          method: 'POST',
          body: '{not json',
          headers: { 'content-type': 'application/json' },
        })
      ).status,
      400,
    );
    assert.equal(
      (
        await raw(t, `/v1/sandboxes/default/${sb.id}/suspend`, {
          method: 'POST',
          body: '{"snapshot":"yes"}',
          headers: { 'content-type': 'application/json' },
        })
      ).status,
      422,
    );
  });

  it('leaks nothing: restored, forked and reset sandboxes that were deleted have no container left', async () => {
    const objects = async () => (await new Objects(t.conn).list('Sandbox')).length;
    const containers = () =>
      execFileSync('runsc', ['--root', join(t.home, 'runsc'), 'list', '--quiet'], { encoding: 'utf8' })
        .split('\n')
        .filter(Boolean).length;
    let last = '';
    for (let i = 0; i < 100; i++) {
      const [o, c] = [await objects(), containers()];
      if (o === c) return;
      last = `${c} containers for ${o} Sandbox objects`;
      await sleep(200);
    }
    assert.fail(last);
  });

  it('refuses a snapshot the disk has no room for; the sandbox keeps running with its state', async () => {
    // A second engine whose snapshot directory is a 16 MB tmpfs.
    const dir = join(t.home, 'tiny');
    mkdirSync(dir);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=16m', 'tmpfs', dir]);
    process.env.ASB_SNAPSHOT_DIR = dir;
    const small = await startTestEngine();
    delete process.env.ASB_SNAPSHOT_DIR;
    try {
      await using sb = await Sandbox.create({ ...small.conn });
      await sb.run('echo kept > /tmp/state');
      await assert.rejects(
        sb.suspend({ snapshot: true }),
        (err: Error) => err instanceof InsufficientStorageError && /keeps running/.test(err.message),
      );
      assert.equal((await sb.refresh()).phase, 'Running');
      assert.equal((await sb.run('cat /tmp/state')).stdout.trim(), 'kept');
      assert.deepEqual(await sb.snapshots.list(), []);
    } finally {
      await small.stop();
      execFileSync('umount', [dir]);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
