// Where mount points land: never a directory made on the host, never one in the shared skeleton.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, lstatSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { prepareRootfs, type Rootfs } from '../src/rootfs.ts';
import { checkDestination, rootfsFor } from '../src/mount-points.ts';

describe('mount points', () => {
  let home: string;
  let rootfs: Rootfs;
  let sandboxDir: string;
  before(() => {
    home = mkdtempSync(join(tmpdir(), 'asb-mounts-'));
    rootfs = prepareRootfs(home);
    sandboxDir = join(home, 'sandboxes', 'default', 'sb');
  });
  after(() => rmSync(home, { recursive: true, force: true }));

  const at = (...paths: string[]) =>
    paths.map((path, i) => ({ field: i === 0 ? 'workingDir' : `volumeMounts[v${i}].mountPath`, path }));

  it('keeps the shared skeleton when every mount point exists or is made in memory', () => {
    assert.equal(rootfsFor(rootfs, sandboxDir, at('/app', '/tmp/cache', '/home/sandbox/data', '/app/sub')), rootfs);
    assert.equal(existsSync(join(sandboxDir, 'rootfs')), false);
  });

  it('makes new mount points in a private copy of the skeleton, not in the shared one', () => {
    const own = rootfsFor(rootfs, sandboxDir, at('/workspace', '/etc/x'));
    assert.equal(own.dir, join(sandboxDir, 'rootfs'));
    assert.ok(lstatSync(join(own.dir, 'workspace')).isDirectory());
    assert.ok(lstatSync(join(own.dir, 'etc/x')).isDirectory());
    assert.ok(existsSync(join(own.dir, 'etc/passwd')), 'the copy is a whole skeleton');
    assert.equal(existsSync(join(rootfs.dir, 'etc/x')), false);
    assert.equal(existsSync(join(rootfs.dir, 'workspace')), false);
    // Back to paths that need nothing: the private copy goes.
    assert.equal(rootfsFor(rootfs, sandboxDir, at('/app')), rootfs);
    assert.equal(existsSync(join(sandboxDir, 'rootfs')), false);
  });

  it("refuses a mount point that would be made in a host directory, through the skeleton's links too", () => {
    assert.throws(
      () => rootfsFor(rootfs, sandboxDir, at('/usr/rt-probe-wd')),
      /workingDir "\/usr\/rt-probe-wd": \/usr is the host's, mounted read-only, and \/usr\/rt-probe-wd does not exist there/,
    );
    assert.equal(existsSync('/usr/rt-probe-wd'), false);
    // /bin is a link to usr/bin on merged-/usr systems: /bin/x would be /usr/bin/x on the host.
    if (lstatSync(join(rootfs.dir, 'bin')).isSymbolicLink()) {
      assert.throws(
        () => rootfsFor(rootfs, sandboxDir, at('/app', '/bin/rt-probe')),
        /\/usr\/bin\/rt-probe does not exist there/,
      );
    }
    assert.throws(() => rootfsFor(rootfs, sandboxDir, at('/app', '/etc/ssl/certs/new')), /mounted read-only/);
    // An existing host directory is mounted over, nothing made.
    assert.equal(rootfsFor(rootfs, sandboxDir, at('/usr/lib')), rootfs);
  });

  it('refuses destinations that are not plain absolute paths, or that are reserved', () => {
    for (const [path, why] of [
      ['app', /absolute/],
      ['/app/../usr/x', /"\.\."/],
      ['/app//x', /normalised/],
      ['/app/', /normalised/],
      ['/', /root directory/],
      ['/proc/x', /reserved/],
      ['/sys', /reserved/],
      ['/.asb', /agent/],
    ] as const) {
      assert.throws(() => checkDestination('workingDir', path), why, path);
    }
  });
});
