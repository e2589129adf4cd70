// A path looked up inside a directory taken as a root filesystem (a build stage's, an image's, the
// build context) as a process chrooted there would see it: `..` stops at the root, and a symlink,
// absolute or relative, resolves within the root. Nothing outside it is reached: COPY's sources
// come from trees a build step (or an image) wrote, which may hold links such as `/x -> /etc`.
import { lstatSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';

/** As the kernel's limit on the links one lookup follows (ELOOP). */
const MAX_LINKS = 40;

/**
 * The host path of `path` inside `root`, every symlink on the way followed within `root` (the
 * last component's too, unless `followLast` is false); undefined when there is nothing there (or
 * the links loop). Each component of the path returned is a real directory or file under `root`,
 * none a link, so opening it follows no link on the host.
 */
export function resolveInRoot(root: string, path: string, followLast = true): string | undefined {
  const done: string[] = [];
  // The components still to walk, the next one last.
  const todo = components(path);
  let links = 0;
  while (todo.length) {
    const name = todo.pop()!;
    if (name === '.') continue;
    if (name === '..') {
      done.pop(); // `done` holds directories only: the lexical parent is the real one
      continue;
    }
    const host = join(root, ...done, name);
    const st = lstatSync(host, { throwIfNoEntry: false });
    if (!st) return undefined;
    if (st.isSymbolicLink() && (todo.length > 0 || followLast)) {
      if (++links > MAX_LINKS) return undefined;
      const target = readlinkSync(host);
      if (target.startsWith('/')) done.length = 0;
      todo.push(...components(target));
      continue;
    }
    if (todo.length > 0 && !st.isDirectory()) return undefined;
    done.push(name);
  }
  return join(root, ...done);
}

/** `a/b/c` as a stack: `['c', 'b', 'a']`. */
function components(path: string): string[] {
  return path.split('/').filter(Boolean).reverse();
}
