import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Confiner } from '../src/confine.ts';
import { AgentError } from '../src/errors.ts';

describe('Confiner', () => {
  const root = realpathSync(mkdtempSync(join(tmpdir(), 'asb-confine-')));
  const base = join(root, 'app');
  let c: Confiner;
  before(() => {
    mkdirSync(join(base, 'dir'), { recursive: true });
    symlinkSync(join(base, 'dir'), join(base, 'inner-link'));
    symlinkSync('/etc', join(base, 'etc-link'));
    symlinkSync(join(root, 'nowhere'), join(base, 'dangling-out'));
    symlinkSync(join(base, 'dir/new'), join(base, 'dangling-in'));
    symlinkSync('dangling-out', join(base, 'chain'));
    symlinkSync(join(base, 'loop-b'), join(base, 'loop-a'));
    symlinkSync(join(base, 'loop-a'), join(base, 'loop-b'));
    symlinkSync(root + '/app-sibling', join(base, 'prefix-trick'));
    c = new Confiner(base);
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  const inside: Array<[string, string]> = [
    ['', ''],
    ['.', ''],
    ['a.txt', 'a.txt'],
    ['dir/../a.txt', 'a.txt'],
    ['new/deep/file', 'new/deep/file'],
    ['inner-link/x', 'dir/x'],
    ['dangling-in', 'dir/new'],
    ['dangling-in/more', 'dir/new/more'],
  ];
  for (const [path, want] of inside) {
    it(`resolves ${JSON.stringify(path)} inside the base`, () =>
      assert.equal(c.resolve(path), want ? join(base, want) : base));
  }
  it('takes an absolute path inside the base', () => assert.equal(c.resolve(join(base, 'dir')), join(base, 'dir')));

  const outside = [
    '..',
    '../app-sibling',
    '/etc/passwd',
    '/',
    'dir/../../x',
    'etc-link',
    'etc-link/passwd',
    'dangling-out',
    'dangling-out/sub/file',
    'chain',
    'prefix-trick',
    'a\0b',
    'loop-a',
  ];
  for (const path of outside) {
    it(`refuses ${JSON.stringify(path)} with PathOutsideSandbox`, () => {
      assert.throws(
        () => c.resolve(path),
        (err: unknown) => err instanceof AgentError && err.reason === 'PathOutsideSandbox' && err.status === 400,
      );
    });
  }
});
