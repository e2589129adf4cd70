// The engine's commands through the real helper (dist/asb-spawner, built by `npm run build`) over
// real pipes: what they print and how they end arrive as execFile would report them, several run
// at once, a timeout and an output cap kill, a helper that dies fails what was in flight and is
// started again for the next command, and without the helper execFile does the same work.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CommandError, Spawner, type RunResult } from '../src/spawner.ts';
import { listenOnce } from '../src/drivers/socketpair.ts';

const HELPER = fileURLToPath(new URL('../../../dist/asb-spawner', import.meta.url));

async function failure(p: Promise<RunResult>): Promise<CommandError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.ok(err instanceof Error, 'the command should have failed');
  return err as CommandError;
}

describe('spawner', () => {
  it('the helper is built (npm run build)', () => {
    assert.ok(existsSync(HELPER), `${HELPER} is missing: run npm run build`);
  });

  for (const [label, path] of [
    ['through the helper', HELPER],
    ['with execFile (no helper)', undefined],
  ] as const) {
    describe(label, () => {
      const spawner = new Spawner(path);
      after(() => spawner.close());

      it('returns what the command printed', async () => {
        assert.equal(spawner.usesHelper, path !== undefined);
        const out = await spawner.run('sh', ['-c', 'echo out; echo err >&2']);
        assert.deepEqual(out, { stdout: 'out\n', stderr: 'err\n' });
      });

      it('fails with the exit code and the output of a command that fails', async () => {
        const err = await failure(spawner.run('sh', ['-c', 'echo partial; echo "no such thing" >&2; exit 3']));
        assert.equal(err.code, 3);
        assert.equal(err.stdout, 'partial\n');
        assert.equal(err.stderr, 'no such thing\n');
        assert.match(err.message, /no such thing/);
      });

      it('says ENOENT for a program that does not exist', async () => {
        const err = await failure(spawner.run('/nonexistent/program', []));
        assert.equal(err.code, 'ENOENT');
      });

      it('kills a command at its timeout', async () => {
        const t0 = performance.now();
        const err = await failure(spawner.run('sleep', ['10'], { timeout: 200 }));
        assert.equal(err.killed, true);
        assert.equal(err.signal, 'SIGTERM');
        assert.ok(performance.now() - t0 < 5_000, 'killed long before sleep would have ended');
      });

      it('kills a command whose output passes maxBuffer', async () => {
        const err = await failure(spawner.run('head', ['-c', '5000000', '/dev/zero'], { maxBuffer: 1000 }));
        assert.ok(err.stdout.length <= 1000, `kept ${err.stdout.length} bytes`);
      });

      it('runs commands side by side, each answer to its own call', async () => {
        const t0 = performance.now();
        const outs = await Promise.all(
          Array.from({ length: 8 }, (_, i) => spawner.run('sh', ['-c', `sleep 0.3; echo ${i}`])),
        );
        assert.deepEqual(
          outs.map((o) => o.stdout),
          outs.map((_, i) => `${i}\n`),
        );
        assert.ok(performance.now() - t0 < 2_000, 'eight 0.3 s commands ran at once, not one after another');
      });

      it('mounts an ext4 image on a loop device and an overlay, with their flags; a bad mount fails saying why', async (t) => {
        if (process.getuid?.() !== 0) return t.skip('mounting needs root');
        const dir = mkdtempSync(join(tmpdir(), 'asb-spawner-mount-'));
        const [img, disk, merged] = ['disk.img', 'disk', 'merged'].map((n) => join(dir, n)) as [string, string, string];
        try {
          execFileSync('truncate', ['-s', '64M', img]);
          execFileSync('mkfs.ext4', ['-q', '-F', '-O', '^has_journal', img]);
          mkdirSync(disk);
          await spawner.mount({
            source: img,
            target: disk,
            fstype: 'ext4',
            flags: ['nosuid', 'nodev', 'noatime'],
            loop: true,
          });
          for (const d of ['lower', 'upper', 'work']) mkdirSync(join(disk, d));
          writeFileSync(join(disk, 'lower', 'from-lower'), 'below');
          mkdirSync(merged);
          await spawner.mount({
            source: 'overlay',
            target: merged,
            fstype: 'overlay',
            flags: ['nodev', 'nosuid'],
            data: `lowerdir=${join(disk, 'lower')},upperdir=${join(disk, 'upper')},workdir=${join(disk, 'work')}`,
          });
          writeFileSync(join(merged, 'written'), 'above');
          assert.equal(readFileSync(join(merged, 'from-lower'), 'utf8'), 'below');
          assert.equal(readFileSync(join(disk, 'upper', 'written'), 'utf8'), 'above', 'writes land in the upper layer');
          const mounts = readFileSync('/proc/self/mounts', 'utf8').split('\n');
          const ext4 = mounts.find((l) => l.split(' ')[1] === disk)!;
          assert.match(ext4, /^\/dev\/loop\d+ \S+ ext4 \S*nosuid,nodev,noatime/);
          assert.match(
            mounts.find((l) => l.split(' ')[1] === merged)!,
            /^overlay \S+ overlay \S*nosuid,nodev/,
          );
          const loop = ext4.split(' ')[0]!;
          const bad = await failure(
            spawner
              .mount({ source: join(dir, 'missing.img'), target: merged, fstype: 'ext4', loop: true })
              .then(() => ({
                stdout: '',
                stderr: '',
              })),
          );
          assert.match(bad.message, /missing\.img/);
          execFileSync('umount', [merged]);
          execFileSync('umount', [disk]);
          // The loop device goes with the mount (autoclear), as mount -o loop leaves it.
          let attached = '';
          for (let i = 0; i < 50; i++) {
            attached = execFileSync('losetup', ['-a'], { encoding: 'utf8' });
            if (!attached.includes(`${loop}:`)) break;
            await new Promise((r) => setTimeout(r, 20));
          }
          assert.ok(!attached.includes(`${loop}:`), `${loop} still attached: ${attached}`);
        } finally {
          for (const m of [merged, disk]) spawnSync('umount', [m]);
          rmSync(dir, { recursive: true, force: true });
        }
      });

      it('runs a command in the directory asked', async () => {
        assert.equal((await spawner.run('pwd', [], { cwd: '/tmp' })).stdout, '/tmp\n');
      });
    });
  }

  it('a helper that dies fails the commands in flight, and the next command starts a new one', async () => {
    const spawner = new Spawner(HELPER);
    after(() => spawner.close());
    const pidOf = async () => Number((await spawner.run('sh', ['-c', 'echo $PPID'])).stdout);
    const first = await pidOf();
    assert.match(readFileSync(`/proc/${first}/cmdline`, 'utf8'), /asb-spawner/);
    const inFlight = spawner.run('sleep', ['3']);
    process.kill(first, 'SIGKILL');
    const err = await failure(inFlight);
    assert.match(err.message, /asb-spawner exited/);
    const second = await pidOf();
    assert.notEqual(second, first);
    assert.match(readFileSync(`/proc/${second}/cmdline`, 'utf8'), /asb-spawner/);
  });

  describe("detach (the exec lane's runsc exec)", () => {
    const spawner = new Spawner(HELPER);
    after(() => spawner.close());
    const dir = mkdtempSync(join(tmpdir(), 'asb-detach-'));
    after(() => rmSync(dir, { recursive: true, force: true }));

    it('gives the command a connection to the socket as stdio, and kills it once it wrote `until`', async () => {
      const sock2 = join(dir, 'b.sock');
      const until2 = join(dir, 'b.pid');
      const listener2 = await listenOnce(sock2);
      const detached = spawner.detach(['sh', '-c', 'echo hello; echo $$ > "$0"; exec sleep 60', until2], {
        socket: sock2,
        log: join(dir, 'b.log'),
        until: until2,
        timeoutMs: 5_000,
      });
      const ours = await listener2.accepted;
      assert.equal(await detached, true);
      listener2.close();
      // What it wrote comes through, then the end: it was killed (the exec'd sleep with it).
      let said = '';
      ours.on('data', (d: Buffer) => (said += String(d)));
      await new Promise<void>((r) => ours.once('end', () => r()));
      assert.equal(said, 'hello\n');
      const pid = Number(readFileSync(until2, 'utf8'));
      assert.throws(() => process.kill(pid, 0), 'the command was killed');
      ours.destroy();
    });

    it('fails when the command ends before writing `until`', async () => {
      const sock = join(dir, 'c.sock');
      const listener = await listenOnce(sock);
      const err = await spawner
        .detach(['sh', '-c', 'exit 3'], {
          socket: sock,
          log: join(dir, 'c.log'),
          until: join(dir, 'c.pid'),
          timeoutMs: 5_000,
        })
        .catch((e: Error) => e);
      listener.close();
      assert.ok(err instanceof Error);
      assert.match(err.message, /ended before .*c\.pid was written \(exit 3\)/);
    });
  });
});
