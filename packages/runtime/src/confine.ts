// Confinement of file paths to the base directory: the one place that decides whether a path a
// client sent may be touched. `..`, absolute paths elsewhere and symlinks that lead out are
// refused with one sentinel error (400 PathOutsideSandbox).
import { realpathSync } from 'node:fs';
import { isAbsolute, join, resolve, sep, dirname, basename } from 'node:path';
import { AgentError } from './errors.ts';

export class Confiner {
  readonly base: string;
  constructor(base: string) { this.base = realpathSync(base); }

  private inside(p: string): boolean { return p === this.base || p.startsWith(this.base + sep); }

  /** Absolute host path for a client path (relative to base, or absolute inside it). */
  resolve(userPath: string): string {
    if (userPath.includes('\0')) throw this.outside(userPath);
    const lexical = isAbsolute(userPath) ? resolve(userPath) : resolve(this.base, userPath);
    if (!this.inside(lexical)) throw this.outside(userPath);
    // Symlinks: the real path of the longest existing prefix must stay inside too.
    let existing = lexical;
    const rest: string[] = [];
    for (;;) {
      try {
        const real = realpathSync(existing);
        if (!this.inside(real)) throw this.outside(userPath);
        return rest.length ? join(real, ...rest.reverse()) : real;
      } catch (err) {
        if (err instanceof AgentError) throw err;
        if (existing === this.base || existing === dirname(existing)) throw this.outside(userPath);
        rest.push(basename(existing));
        existing = dirname(existing);
      }
    }
  }

  private outside(p: string): AgentError {
    return new AgentError('PathOutsideSandbox', `path "${p.replace(/\0/g, '\\0')}" is outside the sandbox's workspace ${this.base}; use a path relative to it`);
  }
}
