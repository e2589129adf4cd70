// COPY's sources looked up inside a root: `..` and symlinks, absolute or relative, stay in it.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveInRoot } from '../src/image-build/root-path.ts';

describe('resolveInRoot', () => {
  const root = mkdtempSync(join(tmpdir(), 'asb-root-path-'));
  mkdirSync(join(root, 'etc'));
  writeFileSync(join(root, 'etc', 'hostname'), 'the stage\n');
  mkdirSync(join(root, 'a', 'b'), { recursive: true });
  symlinkSync('/etc', join(root, 'x')); // absolute: the root's /etc, not the host's
  symlinkSync('../../../../../..', join(root, 'a', 'b', 'up')); // climbs no higher than the root
  symlinkSync('../../etc/hostname', join(root, 'a', 'b', 'name'));
  symlinkSync('/nowhere', join(root, 'dangling'));
  symlinkSync('loop', join(root, 'loop'));
  writeFileSync(join(root, 'file'), '');
  after(() => rmSync(root, { recursive: true, force: true }));

  it('follows symlinks within the root, the last component too unless told not to', () => {
    assert.equal(resolveInRoot(root, '/x/hostname'), join(root, 'etc', 'hostname'));
    assert.equal(resolveInRoot(root, 'x'), join(root, 'etc'));
    assert.equal(resolveInRoot(root, 'x', false), join(root, 'x'));
    assert.equal(resolveInRoot(root, '/a/b/up/etc/hostname'), join(root, 'etc', 'hostname'));
    assert.equal(resolveInRoot(root, 'a/b/name'), join(root, 'etc', 'hostname'));
    assert.equal(resolveInRoot(root, '../../../etc/./hostname'), join(root, 'etc', 'hostname'));
    assert.equal(resolveInRoot(root, '/'), root);
  });

  it('finds nothing for a missing path, a dangling or looping link, or a file taken as a directory', () => {
    assert.equal(resolveInRoot(root, '/x/passwd'), undefined, "the host's /etc/passwd is not the root's");
    assert.equal(resolveInRoot(root, 'dangling'), undefined);
    assert.equal(resolveInRoot(root, 'loop'), undefined);
    assert.equal(resolveInRoot(root, 'file/x'), undefined);
  });
});
