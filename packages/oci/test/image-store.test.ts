// Images pulled from a real registry on loopback and unpacked: layers applied as a runtime applies
// them, nothing written outside the root, pull policies as Kubernetes has them.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  existsSync,
  lstatSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { ImageStore, RegistryClient, RegistryError, defaultPullPolicy, goUnpacker } from '../src/index.ts';
import { pushImage, rawTar, startRegistry, type TestRegistry } from './support/registry.ts';

// Twice: with the Go unpacker (dist/asb-unpack, the default once built) and with node-tar.
for (const unpacker of ['go', 'node'] as const) {
  const noGo = unpacker === 'go' && !goUnpacker({}) ? 'dist/asb-unpack not built (npm run build, with Go)' : undefined;
  describe(
    `images on this machine (unpacked by ${unpacker === 'go' ? 'the Go unpacker' : 'node-tar'})`,
    { skip: noGo },
    () => {
      const saved = process.env.ASB_UNPACK;
      before(() => {
        if (unpacker === 'node') process.env.ASB_UNPACK = 'node';
        else delete process.env.ASB_UNPACK;
      });
      after(() => {
        if (saved === undefined) delete process.env.ASB_UNPACK;
        else process.env.ASB_UNPACK = saved;
      });
      let reg: TestRegistry;
      const dirs: string[] = [];
      const tmp = (prefix: string) => {
        const d = mkdtempSync(join(tmpdir(), prefix));
        dirs.push(d);
        return d;
      };
      const newStore = () => new ImageStore(tmp('asb-images-'), new RegistryClient({ timeoutMs: 3000 }));
      /** A directory of the host that a hostile image aims at. */
      let host: string;

      before(async () => {
        reg = await startRegistry();
        host = tmp('asb-host-target-');
        writeFileSync(join(host, 'victim'), 'still here');
        await pushImage(reg, 'team/layers', 'v1', [
          {
            layers: [
              {
                files: {
                  'etc/os-release': 'ID=test\n',
                  'tmp/gone': 'deleted by the next layer',
                  'opt/old/a': 'hidden by an opaque marker',
                  'opt/old/b': 'hidden too',
                  'bin/tool': '#!/bin/sh\necho tool\n',
                  'home/user/secret': 'mine',
                },
                symlinks: { 'bin/sh-link': '/bin/tool' },
                modes: { 'bin/tool': 0o4755, 'home/user/secret': 0o600 },
              },
              {
                files: {
                  'tmp/.wh.gone': '',
                  'opt/old/.wh..wh..opq': '',
                  'opt/old/c': 'the new layer',
                  'etc/motd': 'hi\n',
                },
              },
              { files: { 'home/user/owned': 'by 1000' }, owner: 1000 },
            ],
          },
        ]);
        await pushImage(reg, 'team/hostile', 'v1', [
          {
            layers: [
              { files: { 'etc/hostname': 'box\n' }, symlinks: { escape: host, 'etc/passwd-link': '/etc/passwd' } },
              {
                files: { 'escape/pwned': 'written through a symlink', 'escape/.wh.victim': '' },
                entriesOnly: true, // no entry for escape/ itself: the symlink below stays in the way
              },
            ],
          },
        ]);
        // Entries no directory makes: names with `..`, hard links out of the root or through a link.
        await pushImage(reg, 'team/hostile-tar', 'v1', [
          {
            layers: [
              { files: { 'etc/hostname': 'box\n' }, symlinks: { escape: host } },
              {
                tar: rawTar([
                  { path: '../outside-file', body: 'written above the root' },
                  { path: 'etc/../../../outside-too', body: 'also above it' },
                  { path: 'stolen', type: 'Link', linkpath: `${host}/victim` },
                  { path: 'stolen-up', type: 'Link', linkpath: '../../../../../../../../etc/hostname' },
                  { path: 'stolen-through', type: 'Link', linkpath: 'escape/victim' },
                  { path: 'kept', body: 'an ordinary file' },
                ]),
              },
            ],
          },
        ]);
        await pushImage(reg, 'team/zstd', 'v1', [{ layers: [{ files: { 'bin/z': 'zstd!\n' }, compression: 'zstd' }] }]);
        // ~1 MB that does not compress: more than the small disk of the disk-full test holds.
        await pushImage(reg, 'team/big', 'v1', [
          { layers: [{ files: { 'data.bin': randomBytes(1 << 20).toString('base64') } }] },
        ]);
      });
      after(async () => {
        await reg?.stop();
        for (const d of dirs) rmSync(d, { recursive: true, force: true });
      });

      it('applies layers in order: whiteouts delete, an opaque directory hides what is below, modes and owners kept', async () => {
        const store = newStore();
        const rootfs = await store.rootfs(await store.pull(`${reg.host}/team/layers:v1`));
        assert.equal(readFileSync(join(rootfs, 'etc/motd'), 'utf8'), 'hi\n');
        assert.equal(existsSync(join(rootfs, 'tmp/gone')), false, 'whiteout');
        assert.ok(existsSync(join(rootfs, 'tmp')), 'its directory stays');
        assert.deepEqual(readdirSync(join(rootfs, 'opt/old')), ['c'], 'opaque: only the new layer');
        assert.equal(statSync(join(rootfs, 'bin/tool')).mode & 0o7777, 0o4755);
        assert.equal(statSync(join(rootfs, 'home/user/secret')).mode & 0o7777, 0o600);
        assert.equal(readlinkSync(join(rootfs, 'bin/sh-link')), '/bin/tool', 'an absolute link stays absolute');
        if (process.getuid?.() === 0) assert.equal(statSync(join(rootfs, 'home/user/owned')).uid, 1000);
      });

      it('a hostile image writes and deletes nothing outside its root', async () => {
        const store = newStore();
        const rootfs = await store.rootfs(await store.pull(`${reg.host}/team/hostile:v1`));
        assert.equal(readFileSync(join(host, 'victim'), 'utf8'), 'still here', 'the whiteout did not reach the host');
        assert.equal(existsSync(join(host, 'pwned')), false, 'nothing written through the symlink');
        assert.equal(readFileSync(join(rootfs, 'etc/hostname'), 'utf8'), 'box\n');
        assert.equal(readlinkSync(join(rootfs, 'etc/passwd-link')), '/etc/passwd', "the image's link, as it has it");
        assert.equal(lstatSync(join(rootfs, 'escape')).isDirectory(), true, 'the link in the way was replaced');
      });

      it('a layer with `..` names and hard links out of the root, or through a link, unpacks none of them', async () => {
        const store = newStore();
        const rootfs = await store.rootfs(await store.pull(`${reg.host}/team/hostile-tar:v1`));
        assert.equal(readFileSync(join(rootfs, 'kept'), 'utf8'), 'an ordinary file', 'the rest of the layer is there');
        for (const name of ['stolen', 'stolen-up', 'stolen-through', 'outside-file', 'outside-too']) {
          assert.equal(existsSync(join(rootfs, name)), false, `${name} is not in the root`);
        }
        for (const dir of [join(rootfs, '..'), join(rootfs, '..', '..'), store.root]) {
          assert.deepEqual(
            readdirSync(dir).filter((n) => n.startsWith('outside')),
            [],
            `nothing written in ${dir}`,
          );
        }
        assert.equal(statSync(join(host, 'victim')).nlink, 1, "no hard link made to the host's file");
      });

      it('unpacks zstd layers', async () => {
        const store = newStore();
        const rootfs = await store.rootfs(await store.pull(`${reg.host}/team/zstd:v1`));
        assert.equal(readFileSync(join(rootfs, 'bin/z'), 'utf8'), 'zstd!\n');
      });

      it('unpacks an image once however many ask at once, and leaves no partial directory', async () => {
        const store = newStore();
        const image = await store.pull(`${reg.host}/team/layers:v1`);
        const paths = await Promise.all(Array.from({ length: 10 }, () => store.rootfs(image)));
        assert.equal(new Set(paths).size, 1);
        assert.deepEqual(readdirSync(join(store.root, 'rootfs')), [image.digest.slice(7)]);
      });

      it('pull policies: IfNotPresent uses what is here, Always asks the registry, Never never does', async () => {
        const srv = await startRegistry();
        const store = newStore();
        const ref = `${srv.host}/team/app:v1`;
        try {
          await pushImage(srv, 'team/app', 'v1', [{ layers: [{ files: { a: '1' } }] }]);
          await assert.rejects(store.pull(ref, { policy: 'Never' }), (e: unknown) => {
            assert.ok(e instanceof RegistryError && e.code === 'NotFound', String(e));
            assert.match(e.message, /not on this machine, and its pull policy is Never/);
            return true;
          });
          await store.pull(ref);
          assert.equal(store.list().length, 1);
        } finally {
          await srv.stop();
        }
        // The registry is gone: what is here still serves, unless the policy says to ask.
        assert.equal((await store.pull(ref, { policy: 'IfNotPresent' })).digest, store.get(ref)!.digest);
        assert.equal((await store.pull(ref, { policy: 'Never' })).digest, store.get(ref)!.digest);
        await assert.rejects(store.pull(ref, { policy: 'Always' }), /cannot reach/);
        assert.equal(defaultPullPolicy('python'), 'Always');
        assert.equal(defaultPullPolicy('python:latest'), 'Always');
        assert.equal(defaultPullPolicy('python:3.13'), 'IfNotPresent');
        assert.equal(defaultPullPolicy(`python@sha256:${'a'.repeat(64)}`), 'IfNotPresent');
      });

      it('a full disk is said as such, and leaves nothing half-written', async (t) => {
        if (process.getuid?.() !== 0) return t.skip('needs root to mount a small tmpfs');
        const root = tmp('asb-images-full-');
        execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', root]);
        try {
          const store = new ImageStore(root, new RegistryClient());
          await assert.rejects(store.pull(`${reg.host}/team/big:v1`), (e: unknown) => {
            assert.ok(e instanceof RegistryError && e.code === 'DiskFull', String(e));
            assert.match(e.message, /no space left on the device of .* for blob sha256:[a-f0-9]{64} \(\d+\.\d MB\)/);
            return true;
          });
          assert.deepEqual(readdirSync(store.blobs.tmp), [], 'the partial blob is gone');
          assert.equal(store.list().length, 0);
        } finally {
          execFileSync('umount', [root]);
        }
      });

      it('a disk that fills while the layers are applied is said as such, and leaves no half root', async (t) => {
        if (process.getuid?.() !== 0) return t.skip('needs root to mount a small tmpfs');
        const store = newStore();
        const image = await store.pull(`${reg.host}/team/big:v1`);
        const rootfsDir = join(store.root, 'rootfs');
        execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', rootfsDir]);
        try {
          await assert.rejects(store.rootfs(image), (e: unknown) => {
            assert.ok(e instanceof RegistryError && e.code === 'DiskFull', String(e));
            assert.match(e.message, /no space left on the device of/);
            return true;
          });
          assert.deepEqual(readdirSync(rootfsDir), [], 'no partial root left');
        } finally {
          execFileSync('umount', [rootfsDir]);
        }
      });

      it('remove and prune: what no reference needs goes, what a running sandbox uses stays', async () => {
        const store = newStore();
        const a = await store.pull(`${reg.host}/team/layers:v1`);
        const z = await store.pull(`${reg.host}/team/zstd:v1`);
        await store.rootfs(a);
        await store.rootfs(z);
        assert.equal(store.remove(`${reg.host}/team/layers:v1`), true);
        assert.equal(store.remove(`${reg.host}/team/layers:v1`), false);
        assert.ok(store.prune([a.digest]) === 0, 'kept: a sandbox still runs it');
        assert.ok(store.prune() > 0);
        assert.equal(store.blobs.has(a.digest), false);
        assert.equal(existsSync(join(store.root, 'rootfs', a.digest.slice(7))), false);
        assert.ok(store.blobs.has(z.digest) && existsSync(join(store.root, 'rootfs', z.digest.slice(7))));
      });
    },
  );
}
