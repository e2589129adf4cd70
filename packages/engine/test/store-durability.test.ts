// The store commits without waiting for the disk (synchronous=NORMAL) and makes its commits
// durable on flush(), which the HTTP API awaits before it acknowledges a change. On a real store
// in a temporary home: a commit survives a kill -9 of the process that made it, unflushed; and
// flushes at the same moment share one sync, without ever resolving before their own commits
// are synced.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseManifests, toHub, type SandboxTemplate } from '@asb/api';
import { SqliteStore } from '../src/store/sqlite-store.ts';

const home = mkdtempSync(join(tmpdir(), 'asb-store-durability-'));
after(() => rmSync(home, { recursive: true, force: true }));

function template(name: string): SandboxTemplate {
  const [parsed] = parseManifests(
    JSON.stringify({
      apiVersion: 'extensions.agents.x-k8s.io/v1beta1',
      kind: 'SandboxTemplate',
      metadata: { name, namespace: 'default' },
      spec: { podTemplate: { spec: { containers: [{ name: 'c', image: 'python:3.11-slim' }] } } },
    }),
  );
  assert.ok(parsed?.ok);
  return toHub(parsed.object) as SandboxTemplate;
}

describe('store durability', () => {
  it('a commit survives a kill -9 of its process before any flush', () => {
    const file = join(home, 'killed.db');
    const child = spawnSync(
      process.execPath,
      [
        '--import',
        'tsx',
        '--input-type=module',
        '-e',
        `import { SqliteStore } from ${JSON.stringify(new URL('../src/store/sqlite-store.ts', import.meta.url).href)};
         const store = new SqliteStore(${JSON.stringify(file)});
         await store.create(${JSON.stringify(template('kept'))});
         process.kill(process.pid, 'SIGKILL');`,
      ],
      { encoding: 'utf8', cwd: new URL('..', import.meta.url).pathname },
    );
    assert.equal(child.signal, 'SIGKILL', child.stderr);
    const reopened = new SqliteStore(file);
    try {
      assert.equal(reopened.getSync('SandboxTemplate', 'default', 'kept')?.metadata.name, 'kept');
    } finally {
      reopened.close();
    }
  });

  it('flushes at the same moment share one sync; one after a newer commit waits for its own', async () => {
    const store = new SqliteStore(join(home, 'flush.db'));
    try {
      for (let i = 0; i < 5; i++) await store.create(template(`t${i}`));
      const before = store.walSyncs;
      await Promise.all([store.flush(), store.flush(), store.flush()]);
      assert.equal(store.walSyncs, before + 1, 'five commits, three flushes: one sync');
      await store.flush();
      assert.equal(store.walSyncs, before + 1, 'nothing new: no sync');

      await store.create(template('early'));
      const first = store.flush(); // in flight: covers 'early', not what follows
      await store.create(template('late'));
      const second = store.flush(); // must not settle on the sync that began before 'late'
      await Promise.all([first, second]);
      assert.equal(store.walSyncs, before + 3);
    } finally {
      store.close();
    }
  });
});
