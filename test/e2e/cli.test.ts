// The asb command, as a user runs it: a real engine daemon started by `asb engine start`.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ASB = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '../../bin/asb');

describe('asb', () => {
  const home = mkdtempSync(join(tmpdir(), 'asb-cli-'));
  const env = { ...process.env, ASB_HOME: home, ASB_ENGINE_PORT: '0' };
  const asb = (...args: string[]) =>
    spawnSync(process.execPath, [ASB, ...args], { env, encoding: 'utf8', timeout: 120_000 });

  before(() => {
    const r = asb('engine', 'start');
    assert.equal(r.status, 0, r.stderr);
  });
  after(() => {
    asb('engine', 'stop');
    rmSync(home, { recursive: true, force: true });
  });

  it('keeps its token private', () => {
    assert.equal(statSync(join(home, 'token')).mode & 0o777, 0o600);
  });

  it('runs a command and exits with its code', () => {
    const ok = asb('run', '--', 'echo', 'hello from asb');
    assert.equal(ok.status, 0, ok.stderr);
    assert.equal(ok.stdout, 'hello from asb\n');
    const fail = asb('run', '--', 'sh -c "echo oops >&2; exit 7"');
    assert.equal(fail.status, 7);
    assert.equal(fail.stderr, 'oops\n');
  });

  it('creates, execs, copies, lists as json and removes', () => {
    const id = asb('create', '-o', 'name').stdout.trim();
    assert.match(id, /^sandbox-[0-9a-f]{8}$/);
    const src = join(home, 'in.txt');
    writeFileSync(src, 'round trip\n');
    assert.equal(asb('cp', src, `${id}:in.txt`).status, 0);
    assert.equal(asb('exec', id, '--', 'cat in.txt').stdout, 'round trip\n');
    const out = join(home, 'out.txt');
    assert.equal(asb('cp', `${id}:in.txt`, out).status, 0);
    assert.equal(readFileSync(out, 'utf8'), 'round trip\n');
    const list = JSON.parse(asb('ls', '-o', 'json').stdout);
    assert.ok(list.items.some((s: { name: string; ready: boolean }) => s.name === id && s.ready));
    assert.equal(asb('rm', id).status, 0);
    const gone = asb('exec', id, '--', 'true');
    assert.equal(gone.status, 4);
    assert.match(gone.stderr, /not found/);
  });

  it("applies seed 004's template and warm pool, and gets, describes, scales and deletes kubectl-style", async () => {
    const fixtures = join(
      import.meta.dirname ?? new URL('.', import.meta.url).pathname,
      '../../packages/api/test/fixtures',
    );
    const ns = ['-n', 'agent-sandbox-demo'];
    for (const f of ['seed004-template.yaml', 'seed004-warmpool.yaml']) {
      const r = asb('apply', '-f', join(fixtures, f));
      assert.equal(r.status, 0, r.stderr);
    }
    const readyPool = async (n: number) => {
      for (let i = 0; i < 600; i++) {
        const pool = JSON.parse(asb(...ns, 'get', 'swp', 'python-warmpool', '-o', 'json').stdout);
        if (pool.status?.readyReplicas === n) return;
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.fail(`the pool never had ${n} ready members`);
    };
    await readyPool(2);
    assert.match(
      asb(...ns, 'get', 'sandboxwarmpools').stdout,
      /^NAME\s+READY\s+DESIRED\s+TEMPLATE\s+AGE\npython-warmpool\s+2\s+2\s+python-runtime-template\s/,
    );
    const info = JSON.parse(asb(...ns, 'create', '-t', 'python-runtime-template', '-o', 'json').stdout);
    assert.match(info.name, /^python-warmpool-/, 'served from the pool');
    assert.match(
      asb(...ns, 'get', 'sandboxclaims').stdout,
      new RegExp(`${info.claim}\\s+True\\s+${info.name}\\s+DependenciesReady`),
    );
    const described = asb(...ns, 'describe', 'sandboxclaim', info.claim);
    assert.equal(described.status, 0, described.stderr);
    assert.match(described.stdout, /Events:[\s\S]*SandboxAdopted[\s\S]*Adopted warm pool Sandbox/);
    assert.equal(asb(...ns, 'scale', 'swp', 'python-warmpool', '--replicas', '0').status, 0);
    await readyPool(0);
    const names = asb(...ns, 'get', 'sandboxes', '-o', 'name')
      .stdout.trim()
      .split('\n');
    assert.deepEqual(names, [`sandbox/${info.name}`], 'scaling the pool to 0 kept the claimed sandbox only');
    assert.equal(asb(...ns, 'delete', 'sandboxclaim', info.claim).stdout, `sandboxclaim/${info.claim} deleted\n`);
    const missing = asb(...ns, 'get', 'sandboxclaim', info.claim);
    assert.equal(missing.status, 4);
    assert.match(missing.stderr, /not found/);
    assert.match(asb('get', 'gizmos').stderr, /unknown resource type "gizmos"/);
  });

  it('suspends with a snapshot, resumes, forks, lists, resets and removes snapshots', () => {
    const id = asb('create', '-o', 'name').stdout.trim();
    assert.equal(asb('exec', id, '--', 'echo in-memory > /tmp/state').status, 0);
    const suspended = asb('suspend', id, '--snapshot');
    assert.equal(suspended.status, 0, suspended.stderr);
    const snapId = suspended.stdout.match(/snapshot (snap-[a-z0-9-]+)/)?.[1];
    assert.ok(snapId, suspended.stdout);
    const again = asb('suspend', id);
    assert.equal(again.status, 1);
    assert.match(again.stderr, /already suspended/);
    const resumed = asb('resume', id);
    assert.equal(resumed.status, 0, resumed.stderr);
    assert.match(resumed.stdout, new RegExp(`resumed from snapshot ${snapId}`));
    assert.equal(asb('exec', id, '--', 'cat /tmp/state').stdout, 'in-memory\n');
    const ls = asb('snapshot', 'ls', id);
    assert.match(ls.stdout, /^ID\s+SANDBOX\s+TEMPLATE\s+REASON\s+SIZE\s+AGE/);
    assert.match(ls.stdout, new RegExp(`${snapId}\\s+${id}\\s+python-runtime-template\\s+suspend`));
    const fork = asb('create', '--from-snapshot', snapId, '-o', 'name');
    assert.equal(fork.status, 0, fork.stderr);
    assert.equal(asb('exec', fork.stdout.trim(), '--', 'cat /tmp/state').stdout, 'in-memory\n');
    assert.equal(asb('reset', id).status, 0);
    assert.equal(asb('exec', id, '--', 'test -e /tmp/state').status, 1);
    assert.equal(asb('snapshot', 'rm', snapId).status, 0);
    assert.equal(asb('snapshot', 'ls', '-o', 'name').stdout.includes(snapId), false);
    assert.equal(asb('rm', id, fork.stdout.trim()).status, 0);
  });

  it("shows a main process's output with asb logs (seed 002's counter)", async () => {
    const tpl = join(home, 'counter.yaml');
    writeFileSync(tpl, readFileSync(new URL('../../examples/seed002/python-counter-template.yaml', import.meta.url)));
    assert.equal(asb('apply', '-f', tpl).status, 0);
    const id = asb('create', '-t', 'python-counter-template', '-o', 'name').stdout.trim();
    await new Promise((r) => setTimeout(r, 2500));
    const logs = asb('logs', id);
    assert.equal(logs.status, 0, logs.stderr);
    assert.match(logs.stdout, /^Count: 0\nCount: 1\n/);
    const none = asb('logs', asb('create', '-o', 'name').stdout.trim());
    assert.equal(none.status, 4);
    assert.match(none.stderr, /no main process/);
  });

  it("reports the engine's status", () => {
    const st = JSON.parse(asb('engine', 'status', '-o', 'json').stdout);
    assert.equal(st.running, true);
    assert.equal(st.driver, 'gvisor');
  });

  it('refuses a bad output format before calling anything', () => {
    const r = asb('ls', '-o', 'xml');
    assert.equal(r.status, 1);
    assert.match(r.stderr, /unknown output format/);
  });
});
