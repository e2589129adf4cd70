// Mount points made in an image's root: resolved as the sandbox resolves them, never on the host.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MountPointError, ensureMountPoint } from '../src/index.ts';

describe('mount points in an image', () => {
  const dirs: string[] = [];
  const tmp = (p: string) => {
    const d = mkdtempSync(join(tmpdir(), p));
    dirs.push(d);
    return d;
  };
  after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

  it("follows the image's links inside the image, and never onto the host", () => {
    const host = tmp('asb-host-');
    const root = tmp('asb-image-');
    mkdirSync(join(root, 'srv/data'), { recursive: true });
    symlinkSync('/srv', join(root, 'app'));
    symlinkSync(host, join(root, 'escape'));
    symlinkSync('../../../../../../etc', join(root, 'up'));
    writeFileSync(join(root, 'file'), 'x');
    symlinkSync('loop2', join(root, 'loop1'));
    symlinkSync('loop1', join(root, 'loop2'));

    assert.equal(ensureMountPoint(root, '/app/work'), '/srv/work');
    assert.ok(lstatSync(join(root, 'srv/work')).isDirectory());
    assert.equal(ensureMountPoint(root, '/srv/data'), '/srv/data', 'there already');
    assert.equal(ensureMountPoint(root, '/escape/x'), `${host}/x`);
    assert.ok(existsSync(join(root, host, 'x')), 'made inside the image');
    assert.equal(existsSync(join(host, 'x')), false, "not in the host's directory");
    assert.equal(ensureMountPoint(root, '/up/conf.d'), '/etc/conf.d');
    assert.ok(existsSync(join(root, 'etc/conf.d')));
    assert.throws(
      () => ensureMountPoint(root, '/file/sub'),
      (e: unknown) => e instanceof MountPointError && /is a file in the image/.test(e.message),
    );
    assert.throws(() => ensureMountPoint(root, '/loop1/x'), /too many symbolic links/);
    assert.throws(() => ensureMountPoint(root, 'relative'), /not an absolute path/);
  });
});
