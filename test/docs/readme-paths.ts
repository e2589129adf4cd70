// Which code spans of a README name a file or folder of this tree, and which of those are not
// there. A README's file table is the first thing a new contributor reads: a name in it that the
// tree lacks (engine/README.md once named a sandboxes.ts that had gone) sends them looking.
import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';

/** Extensions of source files: a bare `name.ext` span with one of these names a file here.
 *  (Not .json, .so or .blob: in READMEs those are users' config files or build outputs.) */
const SOURCE_EXTENSIONS = /\.(ts|mjs|cjs|js|c|h|sh|go|py|yaml|yml|md)$/;
/** Spans that cannot be paths of the tree: shell, URLs, placeholders, sandbox-side paths. */
const NOT_A_PATH = /[\s$~:{}<>=,()"'`|\\]|^[./]|\.\./;

/** The code spans of a Markdown text (`…`), fenced blocks left out. */
export function codeSpans(markdown: string): string[] {
  const outside = markdown.replace(/^```[\s\S]*?^```/gm, '');
  return [...outside.matchAll(/`([^`\n]+)`/g)].map((m) => m[1]!);
}

/**
 * The spans that name a path: `dir/…` whose first folder exists somewhere in the tree
 * (`drivers/`, `test/e2e/crash.test.ts`, `tools/k8s/* /go.mod`), or a bare source file name
 * (`workloads.ts`). Build outputs under dist/ are made by `npm run build`, not kept in the tree.
 */
export function pathSpans(spans: string[], dirNames: ReadonlySet<string>): string[] {
  const out = new Set<string>();
  for (const span of spans) {
    if (NOT_A_PATH.test(span) || span.startsWith('dist/')) continue;
    const slash = span.indexOf('/');
    if (slash > 0 ? dirNames.has(span.slice(0, slash)) : SOURCE_EXTENSIONS.test(span)) out.add(span);
  }
  return [...out];
}

/**
 * The named paths that no file or folder in `paths` (relative to the tree's root, `/`-separated)
 * answers to: a path is found when it is one of them or the end of one (after a `/`), so
 * `api.ts` in the engine's README is its `src/http/api.ts`. `*` matches within one folder name.
 */
export function missingPaths(named: string[], paths: readonly string[]): string[] {
  return named.filter((name) => {
    const body = name.replace(/\/$/, '').split('*').map(escapeRegExp).join('[^/]*');
    const re = new RegExp(`(^|/)${body}$`);
    return !paths.some((p) => re.test(p));
  });
}

function escapeRegExp(s: string): string {
  return s.replace(/[.+?^${}()|[\]\\]/g, '\\$&');
}

/** Every file and folder under `root` (relative, `/`-separated), without what git ignores for
 *  us here: dependencies, build outputs, git's own folder. */
export function treePaths(root: string, skip = new Set(['node_modules', 'dist', '.git'])): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (skip.has(entry.name)) continue;
      const full = join(dir, entry.name);
      out.push(relative(root, full).split('\\').join('/'));
      if (entry.isDirectory()) walk(full);
    }
  };
  walk(root);
  return out;
}

/** The folder names that occur anywhere in `paths`. */
export function folderNames(paths: readonly string[]): Set<string> {
  const names = new Set<string>();
  for (const p of paths) for (const part of p.split('/').slice(0, -1)) names.add(part);
  return names;
}
