// sandboxd's path rule (upstream's pathutil.SanitizePath) on top of our Confiner: a path is taken
// relative to the root dir, an absolute one that names the root or a place under it is kept, and
// any other absolute path is read as relative to the root too (upstream joins it under the root
// rather than refusing it). Whatever leaves the root, `..` or a symlink (a dangling one too), is
// PathEscapes, which the APIs answer as PERMISSION_DENIED / 403.
import { isAbsolute, posix, sep } from 'node:path';
import { Confiner } from '../confine.ts';
import { AgentError } from '../errors.ts';

export class PathEscapes extends Error {
  constructor(userPath: string) {
    super(`access denied: path ${JSON.stringify(userPath)}: path escapes sandbox root`);
    this.name = 'PathEscapes';
  }
}

export class SandboxdPaths {
  readonly confiner: Confiner;
  constructor(rootDir: string) {
    this.confiner = new Confiner(rootDir);
  }

  /** The root's real path. */
  get root(): string {
    return this.confiner.base;
  }

  /** The real path `userPath` names (symlinks resolved); throws PathEscapes when it is outside. */
  resolve(userPath: string): string {
    let p = posix.normalize(userPath === '' ? '.' : userPath);
    if (isAbsolute(p) && p !== this.root && !p.startsWith(this.root + sep)) p = `.${p}`;
    try {
      return this.confiner.resolve(p);
    } catch (err) {
      if (err instanceof AgentError && err.reason === 'PathOutsideSandbox') throw new PathEscapes(userPath);
      throw err;
    }
  }
}
