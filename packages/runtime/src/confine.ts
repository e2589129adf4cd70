// Confinement of file paths to the base directory: the one place that decides whether a path a
// client sent may be touched. `..`, absolute paths elsewhere, NUL bytes and symlinks that lead out
// (dangling ones too) are refused with one sentinel error, 400 PathOutsideSandbox.
//
// What this is not: a security boundary. The agent runs as the sandbox's user, inside the sandbox,
// so a path that escaped would only reach what that user's own commands can reach anyway (gVisor
// is the boundary). It keeps upstream's contract (file routes stay in /app) and makes a client's
// mistake an error instead of a write somewhere surprising. A symlink swapped between this check
// and the use of the path is therefore accepted, not defended.
import { lstatSync, readlinkSync, realpathSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, resolve, sep } from 'node:path';
import { AgentError } from './errors.ts';

/** Symlinks followed by hand (dangling ones) before giving up, as the kernel's ELOOP limit. */
const MAX_LINK_HOPS = 40;

export class Confiner {
  /** The base directory's real path (symlinks resolved). */
  readonly base: string;
  /** As configured: an absolute client path under it (e.g. /tmp/x when /tmp is a symlink) is
   *  the same place as under `base`. */
  private readonly configured: string;

  constructor(base: string) {
    this.configured = resolve(base);
    this.base = realpathSync(base);
  }

  private inside(p: string, root = this.base): boolean {
    return p === root || p.startsWith(root === sep ? root : root + sep);
  }

  /** The absolute path for a client's path (relative to base, or absolute inside it), with every
   *  existing symlink resolved; throws AgentError('PathOutsideSandbox') when it leaves the base. */
  resolve(userPath: string): string {
    if (userPath.includes('\0')) throw this.outside(userPath);
    let path = isAbsolute(userPath) ? resolve(userPath) : resolve(this.base, userPath);
    if (!this.inside(path) && this.inside(path, this.configured))
      path = join(this.base, path.slice(this.configured.length));
    if (!this.inside(path)) throw this.outside(userPath);

    for (let hops = 0; ; hops++) {
      const found = this.realPrefix(path);
      if (found.real !== undefined) {
        if (!this.inside(found.real)) throw this.outside(userPath);
        return found.rest.length ? join(found.real, ...found.rest) : found.real;
      }
      // A dangling symlink: realpath cannot follow it, but a write through it would. Follow it by
      // hand and check where it leads like any other path.
      if (hops >= MAX_LINK_HOPS) throw this.outside(userPath);
      path = found.next!;
    }
  }

  /** The real path of the longest existing prefix of `path` and the names after it; or, when that
   *  walk meets a dangling symlink, the path it leads to (`next`). */
  private realPrefix(path: string): { real?: string; rest: string[]; next?: string } {
    const rest: string[] = [];
    let existing = path;
    for (;;) {
      try {
        return { real: realpathSync(existing), rest: rest.reverse() };
      } catch {
        if (lstatSync(existing, { throwIfNoEntry: false })?.isSymbolicLink()) {
          const parent = this.realPrefix(dirname(existing));
          const parentPath = parent.real !== undefined ? join(parent.real, ...parent.rest) : dirname(existing);
          return { rest: [], next: join(resolve(parentPath, readlinkSync(existing)), ...rest.reverse()) };
        }
        const up = dirname(existing);
        if (up === existing) throw new AgentError('Internal', `cannot resolve "${path}": not even / exists`);
        rest.push(basename(existing));
        existing = up;
      }
    }
  }

  private outside(p: string): AgentError {
    return new AgentError(
      'PathOutsideSandbox',
      `path "${p.replace(/\0/g, '\\0')}" is outside the sandbox's workspace ${this.base}; use a path relative to it`,
    );
  }
}
