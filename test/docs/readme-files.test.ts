// Every file and folder a README names exists: the root README (paths anywhere in the tree) and
// each package's (paths in that package, or from the tree's root).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { codeSpans, folderNames, missingPaths, pathSpans, treePaths } from './readme-paths.ts';

const root = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '../..');
const tree = treePaths(root);
const folders = folderNames(tree);

describe('the paths a README names', () => {
  const cases: Array<{ what: string; markdown: string; paths: string[]; missing: string[] }> = [
    {
      what: 'a file table row names a file that is gone',
      markdown: '| `sandboxes.ts` | the sandboxes |\n| `engine.ts` | wiring |',
      paths: ['src', 'src/engine.ts'],
      missing: ['sandboxes.ts'],
    },
    {
      what: 'a bare name is found at the end of a deeper path, a folder with or without its slash',
      markdown: '`api.ts`, `http/`, `src/http/api.ts`, `http`',
      paths: ['src', 'src/http', 'src/http/api.ts'],
      missing: [],
    },
    {
      what: 'a path whose first folder exists is checked to its end',
      markdown: '`test/e2e/crash.test.ts` and `test/e2e/gone.test.ts`',
      paths: ['test', 'test/e2e', 'test/e2e/crash.test.ts'],
      missing: ['test/e2e/gone.test.ts'],
    },
    {
      what: 'a star matches within one folder name, not across folders',
      markdown: '`tools/k8s/*/go.mod` and `tools/*.mod`',
      paths: ['tools', 'tools/k8s', 'tools/k8s/etcd', 'tools/k8s/etcd/go.mod'],
      missing: ['tools/*.mod'],
    },
    {
      what: 'a name is not found inside a longer file name',
      markdown: '`pod.ts`',
      paths: ['src', 'src/kube-pod.ts'],
      missing: ['pod.ts'],
    },
    {
      what: 'what is not a path of the tree is not checked',
      markdown: [
        '`/app`, `$ASB_HOME/snapshots`, `~/.asb`, `dist/agent.cjs`, `claude_desktop_config.json`, `spec.replicas`,',
        '`agents.x-k8s.io/v1alpha1`, `asb exec`, `GET /v1/files/{path}`, `http://127.0.0.1:8765/mcp`, `../x.ts`',
        '```sh\nnode --import tsx gone.ts\n```',
      ].join('\n'),
      paths: ['src', 'src/a.ts'],
      missing: [],
    },
  ];
  for (const c of cases) {
    it(c.what, () => {
      const named = pathSpans(codeSpans(c.markdown), folderNames(c.paths));
      assert.deepEqual(missingPaths(named, c.paths), c.missing);
    });
  }
});

describe('README file tables', () => {
  it('the root README names only files and folders that exist', () => {
    const named = pathSpans(codeSpans(readFileSync(join(root, 'README.md'), 'utf8')), folders);
    assert.ok(named.length > 20, `the root README names ${named.length} paths: is the parser still reading it?`);
    assert.deepEqual(missingPaths(named, tree), [], 'README.md names these, which the tree lacks');
  });

  const packages = readdirSync(join(root, 'packages')).filter((p) =>
    existsSync(join(root, 'packages', p, 'README.md')),
  );
  for (const pkg of packages) {
    it(`packages/${pkg}/README.md names only files and folders that exist`, () => {
      const prefix = `packages/${pkg}/`;
      const inPackage = tree.filter((p) => p.startsWith(prefix)).map((p) => p.slice(prefix.length));
      const named = pathSpans(codeSpans(readFileSync(join(root, prefix, 'README.md'), 'utf8')), folders);
      const fromRoot = new Set(tree);
      const missing = missingPaths(named, inPackage).filter((p) => !fromRoot.has(p.replace(/\/$/, '')));
      assert.deepEqual(missing, [], `${prefix}README.md names these, which neither the package nor the tree has`);
    });
  }
});
