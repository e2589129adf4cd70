// Isolation under real gVisor: what a hostile command inside a sandbox can and cannot reach.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, rmSync, mkdirSync } from 'node:fs';
import { release } from 'node:os';
import { Sandbox, UnavailableError } from '@asb/sdk';
import { startTestEngine, putTemplate, type TestEngine } from './harness.ts';

describe('a sandbox under gVisor', () => {
  let t: TestEngine;
  let sb: Sandbox;
  const secretDir = '/root/.asb-test-secret';
  before(async () => {
    mkdirSync(secretDir, { recursive: true });
    writeFileSync(`${secretDir}/token`, 'TOP-SECRET-VALUE');
    t = await startTestEngine();
    sb = await Sandbox.create({ ...t.conn, template: 'python-runtime-template' });
  });
  after(async () => {
    await t?.stop();
    rmSync(secretDir, { recursive: true, force: true });
  });

  it("sees gVisor's kernel, not the host's", async () => {
    const uname = await sb.run('uname -r');
    assert.equal(uname.exitCode, 0);
    assert.notEqual(uname.stdout.trim(), release());
    const dmesg = await sb.run('dmesg');
    assert.match(dmesg.stdout, /gVisor/);
  });

  it('cannot read host secrets, home directories or the project checkout', async () => {
    for (const path of [`${secretDir}/token`, '/etc/shadow', '/root', process.cwd(), '/etc/ssh', '/var/lib', '/work']) {
      const r = await sb.run(`cat ${path} 2>&1 || ls ${path} 2>&1`);
      assert.doesNotMatch(r.stdout, /TOP-SECRET-VALUE/);
      assert.match(
        r.stdout,
        /No such file or directory/,
        `${path} should not exist inside the sandbox, got: ${r.stdout}`,
      );
    }
    // /home holds only the sandbox user's own (tmpfs) home, none of the host's.
    assert.equal((await sb.run('ls -A /home')).stdout, 'sandbox\n');
    assert.equal((await sb.run('ls -A /etc | sort | tr "\\n" " "')).stdout.includes('shadow'), false);
  });

  it('has no network interface but loopback', async () => {
    const r = await sb.run('ls /sys/class/net 2>/dev/null || cat /proc/net/dev');
    const ifaces = r.stdout
      .split(/\s+/)
      .filter(
        (w) =>
          /^[a-z][a-z0-9]*:?$/.test(w) &&
          !/^(inter|face|bytes|packets|errs|drop|fifo|frame|compressed|multicast|colls|carrier|receive|transmit)/.test(
            w,
          ),
      )
      .map((w) => w.replace(':', ''));
    assert.deepEqual([...new Set(ifaces)], ['lo']);
    const py = await sb.run(`python3 -c "import socket; s=socket.create_connection(('1.1.1.1', 53), timeout=2)"`);
    assert.notEqual(py.exitCode, 0);
  });

  it('cannot write outside its workspace, and writes inside stay in the sandbox', async () => {
    for (const path of ['/usr/evil', '/etc/evil', '/evil', '/.asb/evil']) {
      const r = await sb.run(`echo x > ${path}`);
      assert.notEqual(r.exitCode, 0, `writing ${path} should fail`);
    }
    const ok = await sb.run('echo inside > /app/inside.txt && echo tmp > /tmp/t && cat /app/inside.txt /tmp/t');
    assert.equal(ok.stdout, 'inside\ntmp\n');
  });

  it('runs commands as an unprivileged user with a clean environment', async () => {
    const r = await sb.run('id -u; env');
    const [uid, ...env] = r.stdout.trim().split('\n');
    assert.equal(uid, '1000');
    const names = env.map((l) => l.split('=')[0]);
    for (const leaked of ['ASB_HOME', 'npm_config_cache', 'NODE_OPTIONS', 'SSH_AUTH_SOCK', 'USER'])
      assert.ok(!names.includes(leaked), `${leaked} leaked into the sandbox`);
  });

  it("cannot take the engine's connection away through the agent's save/restore hook", async () => {
    // Only gVisor's hook, run as root, may tell the agent to stop serving the engine's socket.
    const r = await sb.run(`python3 -c '
import socket
s = socket.socket(socket.AF_UNIX)
try:
    s.connect("\\0asb-agent-hook")
except OSError as e:
    print("no hook socket:", e); raise SystemExit(0)
s.sendall(b"save\\n")
print(s.recv(200).decode().strip())
'`);
    assert.equal(r.exitCode, 0, r.stderr);
    if (t.engine.config.agent === 'go') assert.match(r.stdout, /only the save\/restore hook \(root\) may ask/);
    assert.equal((await sb.run('echo still here')).stdout, 'still here\n');
    // Still on its first connection: a parked one would have been replaced through a relay.
    assert.doesNotMatch((await sb.run('ps -eo args')).stdout, /--relay/);
  });

  it('stops a fork bomb at the pids limit without harming other sandboxes or the engine', async () => {
    const bystander = await Sandbox.create({ ...t.conn });
    const bomber = await Sandbox.create({ ...t.conn });
    const r = await bomber.run('bomb() { bomb | bomb & }; bomb; sleep 2; echo survived', { timeoutMs: 20_000 }).then(
      (x) => x,
      (e) => e,
    );
    const after = await bomber.run('echo still-here').then(
      (x) => x.stdout,
      (e) => e,
    );
    if (typeof after !== 'string') {
      // Under gVisor's ptrace platform the bomb can exhaust the sandbox's own host budget: the
      // sandbox is then stopped, refuses further calls as unavailable, and says why.
      assert.ok(after instanceof UnavailableError, `unexpected ${after}; bomb result ${JSON.stringify(r)}`);
      assert.equal((await bomber.refresh()).phase, 'Failed');
    } else {
      // gVisor refused the forks (RLIMIT_NPROC) and the sandbox lives on.
      assert.equal(after, 'still-here\n');
    }
    assert.equal((await bystander.run('echo unharmed')).stdout, 'unharmed\n');
    const fresh = await Sandbox.create({ ...t.conn });
    assert.equal((await fresh.run('echo new')).stdout, 'new\n');
    await Promise.all([bystander.kill(), bomber.kill(), fresh.kill()]);
  });
});

describe('memory and disk limits', () => {
  let t: TestEngine;
  before(async () => {
    t = await startTestEngine();
    await putTemplate(t, 'small', {
      image: 'python:3.13-slim',
      limits: { memory: '256Mi', 'ephemeral-storage': '64Mi' },
    });
  });

  it("gives the workspace a disk quota from ephemeral-storage: a full disk is ENOSPC, not the host's disk", async () => {
    const sb = await Sandbox.create({ ...t.conn, template: 'small' });
    const fill = await sb.run('dd if=/dev/zero of=big bs=1M count=100 2>&1; echo "dd=$?"');
    assert.match(fill.stdout, /No space left on device/);
    assert.match(fill.stdout, /dd=1/);
    assert.equal((await sb.run('rm big && echo small > ok.txt && cat ok.txt')).stdout, 'small\n');
    await sb.kill();
  });
  after(async () => {
    await t?.stop();
  });

  it('kills a memory hog at the limit and the engine keeps serving', async () => {
    const sb = await Sandbox.create({ ...t.conn, template: 'small' });
    const hog = await sb
      .run(`python3 -c "x=[]\nwhile True: x.append(bytearray(16*1024*1024))"`, { timeoutMs: 60_000 })
      .then(
        (r) => ({ ok: true, r }),
        (err) => ({ ok: false, err }),
      );
    // Either the hog alone dies (non-zero exit) or the whole sandbox is stopped at the limit.
    if (hog.ok) assert.notEqual((hog as any).r.exitCode, 0);
    // A stopped sandbox says why once its exit is seen (the lost connection is noticed first).
    let info = await sb.refresh().catch(() => undefined);
    for (let i = 0; i < 50 && info?.phase === 'Failed' && !/memory limit/.test(info.message); i++) {
      await new Promise((r) => setTimeout(r, 100));
      info = await sb.refresh();
    }
    if (info && info.phase === 'Failed') assert.match(info.message, /memory limit/);
    const other = await Sandbox.create({ ...t.conn, template: 'small' });
    assert.equal((await other.run('echo alive')).stdout, 'alive\n');
  });
});
