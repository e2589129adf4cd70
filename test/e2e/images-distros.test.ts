// The agent in every kind of base image, and the isolation suite's attacks from inside an image:
// a real Debian bookworm (debootstrap, with Python; it runs as root, as an image without a User
// does on Kubernetes), and a musl image (a program on musl's loader, no glibc anywhere). Both are
// pushed to a real registry on loopback and pulled by the engine.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { release } from 'node:os';
import { Sandbox, apply } from '@asb/sdk';
import { startTestEngine, type TestEngine } from './harness.ts';
import { pushImage, startRegistry, type TestRegistry } from '../../packages/oci/test/support/registry.ts';
import { debian, debianRootfs, musl } from '../support/images.ts';
import { templateYaml } from '../support/manifests.ts';

describe('base images: Debian (debootstrap) and musl', async () => {
  const rootfs = await debianRootfs();
  const muslImage = await musl();
  const skip = typeof rootfs !== 'string' ? rootfs.skip : 'skip' in muslImage ? muslImage.skip : (false as const);
  let reg: TestRegistry;
  let t: TestEngine;
  let sb: Sandbox;
  const secretDir = '/root/.asb-test-secret-images';
  before(async () => {
    if (skip) return;
    mkdirSync(secretDir, { recursive: true });
    writeFileSync(`${secretDir}/token`, 'TOP-SECRET-VALUE');
    reg = await startRegistry();
    await pushImage(reg, 'asb-test/debian', 'bookworm', [debian(rootfs as string)]);
    await pushImage(reg, 'asb-test/musl', '1', [muslImage as Exclude<typeof muslImage, { skip: string }>]);
    t = await startTestEngine();
    const image = `${reg.host}/asb-test/debian:bookworm`;
    await apply(templateYaml('debian', { image }), t.conn);
    await apply(
      templateYaml('debian-small', { image, limits: { memory: '256Mi', 'ephemeral-storage': '64Mi' } }),
      t.conn,
    );
    sb = await Sandbox.create({ ...t.conn, template: 'debian' });
  });
  after(async () => {
    await t?.stop();
    await reg?.stop();
    rmSync(secretDir, { recursive: true, force: true });
  });

  const ok = async (s: Sandbox, cmd: string) => {
    const r = await s.run(cmd);
    assert.equal(r.exitCode, 0, `${cmd}: ${r.stderr}`);
    return r.stdout;
  };

  it("runs Debian's own software: its bash, its Python, nothing of the host's", { skip }, async () => {
    assert.match(await ok(sb, 'cat /etc/debian_version'), /^12\./);
    assert.match(await ok(sb, 'echo $BASH_VERSION'), /^5\.2/, "commands run in the image's bash");
    // Debian's Python 3.11 from the image, at /usr/bin (the host's is elsewhere, and not visible).
    assert.match(
      await ok(sb, `python3 -c 'import sys; print(sys.executable, sys.version.split()[0])'`),
      /^\/usr\/bin\/python3 3\.11\.\d+\n$/,
    );
    assert.match(await ok(sb, 'apt-get --version | head -1'), /^apt 2\.6/);
    assert.equal(
      await ok(sb, 'test -e /usr/local/go && echo host || echo none'),
      'none\n',
      "the host's Go is not here",
    );
    assert.equal(await ok(sb, 'id -u; pwd'), '0\n/app\n', 'root in /app, as on Kubernetes for an image without User');
    await sb.files.write('data/in.txt', 'through the file API');
    assert.equal(await ok(sb, 'cat /app/data/in.txt'), 'through the file API');
    await ok(sb, 'python3 -c \'open("/app/data/out.bin", "wb").write(bytes(range(256)))\'');
    assert.deepEqual(
      Buffer.from(await sb.files.read('data/out.bin', { format: 'bytes' })),
      Buffer.from([...Array(256).keys()]),
    );
  });

  it('runs a program on musl, with no glibc in the image', { skip }, async () => {
    await using m = await Sandbox.create({ ...t.conn, image: `${reg.host}/asb-test/musl:1` });
    assert.equal(await ok(m, 'hello'), 'hello from musl\n');
    assert.equal(await ok(m, 'test -e /lib/x86_64-linux-gnu/libc.so.6 && echo glibc || echo none'), 'none\n');
    assert.equal(await ok(m, 'cat /etc/os-release'), 'ID=asb-test-musl\n');
  });

  // The isolation suite (isolation.test.ts), from inside an image whose code is root.
  it(
    "sees gVisor's kernel and nothing of the host: no secrets, no checkout, no network but loopback",
    { skip },
    async () => {
      assert.notEqual((await ok(sb, 'uname -r')).trim(), release());
      assert.match(await ok(sb, 'dmesg'), /gVisor/);
      for (const path of [`${secretDir}/token`, process.cwd(), '/work', '/etc/ssh', '/root/.ssh']) {
        const r = await sb.run(`cat ${path} 2>&1 || ls ${path} 2>&1`);
        assert.doesNotMatch(r.stdout, /TOP-SECRET-VALUE/);
        assert.match(r.stdout, /No such file or directory/, `${path} inside the sandbox: ${r.stdout}`);
      }
      assert.equal(
        await ok(sb, `python3 -c 'import socket; print([n for _, n in socket.if_nameindex()])'`),
        "['lo']\n",
      );
      const net = await sb.run(`python3 -c "import socket; socket.create_connection(('1.1.1.1', 53), timeout=2)"`);
      assert.notEqual(net.exitCode, 0);
    },
  );

  it("writes anywhere in its root as root, and every write stays in the sandbox's own layer", { skip }, async () => {
    await ok(sb, 'echo evil > /usr/bin/evil && echo evil > /etc/evil && rm /etc/debian_version');
    assert.equal(existsSync('/usr/bin/evil'), false, "the host's /usr");
    assert.equal(existsSync('/etc/evil'), false, "the host's /etc");
    await using other = await Sandbox.create({ ...t.conn, template: 'debian' });
    assert.equal(await ok(other, 'test -e /usr/bin/evil || test -e /etc/evil || echo clean'), 'clean\n');
    assert.match(await ok(other, 'cat /etc/debian_version'), /^12\./, 'what one sandbox removed, the other still has');
  });

  it('holds root code to its disk quota, memory limit and pids limit, and the engine serves on', { skip }, async () => {
    await using small = await Sandbox.create({ ...t.conn, template: 'debian-small' });
    // The root filesystem's writable layer is the template's ephemeral-storage (64 MiB).
    const fill = await small.run('dd if=/dev/zero of=/var/big bs=1M count=100 2>&1; echo "dd=$?"');
    assert.match(fill.stdout, /No space left on device/);
    assert.match(fill.stdout, /dd=1/);
    assert.equal(await ok(small, 'rm /var/big && echo room > /var/ok && cat /var/ok'), 'room\n');
    const hog = await small
      .run(`python3 -c "x=[]\nwhile True: x.append(bytearray(16*1024*1024))"`, { timeoutMs: 60_000 })
      .then(
        (r) => r.exitCode,
        (err: Error) => err,
      );
    if (typeof hog === 'number') assert.notEqual(hog, 0, 'the hog lived on past the memory limit');
    else {
      // Or the whole sandbox was stopped at the limit (so gVisor 20221219 does): it says so.
      let info = await small.refresh();
      for (let i = 0; i < 50 && !(info.phase === 'Failed' && /memory limit/.test(info.message)); i++) {
        await new Promise((r) => setTimeout(r, 100));
        info = await small.refresh();
      }
      assert.match(info.message, /memory limit/, `the hog: ${hog}; the sandbox: ${info.phase} ${info.message}`);
    }
    await using bomber = await Sandbox.create({ ...t.conn, template: 'debian' });
    await bomber.run('bomb() { bomb | bomb & }; bomb; sleep 2', { timeoutMs: 20_000 }).catch(() => undefined);
    assert.equal(await ok(sb, 'echo unharmed'), 'unharmed\n');
    await using fresh = await Sandbox.create({ ...t.conn, template: 'debian' });
    assert.equal(await ok(fresh, 'echo new'), 'new\n');
  });

  it("root code that plays gVisor's save/restore hook deafens only its own sandbox", { skip }, async () => {
    // The hook's socket takes root's word (gVisor runs the hook as root): here the sandbox's code
    // is root too, and can park its own agent's connection to the engine. That must cost nobody
    // else anything: the engine and every other sandbox serve on.
    await using victim = await Sandbox.create({ ...t.conn, template: 'debian' });
    await using bystander = await Sandbox.create({ ...t.conn, template: 'debian' });
    await victim
      .run(
        `python3 -c '
import socket
s = socket.socket(socket.AF_UNIX)
s.connect("\\0asb-agent-hook")
s.sendall(b"save\\n")
print(s.recv(200).decode().strip())
'`,
        { timeoutMs: 5_000 },
      )
      .catch(() => undefined);
    assert.equal(await ok(bystander, 'echo serving'), 'serving\n');
    await using fresh = await Sandbox.create({ ...t.conn, template: 'debian' });
    assert.equal(await ok(fresh, 'echo new'), 'new\n');
  });
});
