// The store's objects are frozen once written: watchers and cached reads get the stored object
// itself (no copy per event or per list), plain reads a copy of their own. On a real store in a
// temporary home: what a watcher or a cached read holds cannot be changed (a TypeError, not a
// silently corrupted store), keeps the state it had when it was handed out, and a plain read's
// copy can be changed without touching the store.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseManifests, toHub, type SandboxTemplate } from '@asb/api';
import type { WatchEvent } from '@asb/lifecycle';
import { SqliteStore } from '../src/store/sqlite-store.ts';

const home = mkdtempSync(join(tmpdir(), 'asb-store-frozen-'));
after(() => rmSync(home, { recursive: true, force: true }));

function template(name: string, labels: Record<string, string> = {}): SandboxTemplate {
  const [parsed] = parseManifests(
    JSON.stringify({
      apiVersion: 'extensions.agents.x-k8s.io/v1beta1',
      kind: 'SandboxTemplate',
      metadata: { name, namespace: 'default', labels },
      spec: { podTemplate: { spec: { containers: [{ name: 'c', image: 'python:3.11-slim' }] } } },
    }),
  );
  assert.ok(parsed?.ok);
  return toHub(parsed.object) as SandboxTemplate;
}

describe('store objects are frozen', () => {
  it('watchers get frozen objects that keep the state of their event', async () => {
    const store = new SqliteStore(join(home, 'watch.db'));
    try {
      const events: WatchEvent[] = [];
      store.watch((ev) => events.push(ev));
      const created = await store.create(template('t', { a: '1' }));
      await store.update({ ...created, metadata: { ...created.metadata, labels: { a: '2' } } });
      assert.deepEqual(
        events.map((e) => [e.type, e.object.metadata.labels?.a, e.old?.metadata.labels?.a]),
        [
          ['ADDED', '1', undefined],
          ['MODIFIED', '2', '1'],
        ],
      );
      const [added, modified] = events as [WatchEvent, WatchEvent];
      assert.ok(Object.isFrozen(added.object) && Object.isFrozen(added.object.metadata.labels));
      assert.ok(Object.isFrozen((added.object as SandboxTemplate).spec.podTemplate.spec.containers[0]));
      assert.throws(() => {
        (added.object.metadata.labels as Record<string, string>).a = 'changed';
      }, TypeError);
      // The old object of the change is the one the first event handed out, unchanged by the update.
      assert.equal(modified.old, added.object);
      assert.equal(added.object.metadata.labels?.a, '1');
    } finally {
      store.close();
    }
  });

  it('cached reads are the stored objects, frozen; plain reads are copies the caller may change', async () => {
    const store = new SqliteStore(join(home, 'reads.db'));
    try {
      await store.create(template('t', { pool: 'p' }));
      const cached = await store.get('SandboxTemplate', 'default', 't', { cached: true });
      const [listed] = await store.list('SandboxTemplate', { labels: { pool: 'p' }, cached: true });
      assert.ok(cached && Object.isFrozen(cached));
      assert.equal(listed, cached);
      assert.throws(() => {
        cached.metadata.labels = {};
      }, TypeError);

      const copy = await store.get('SandboxTemplate', 'default', 't');
      const [listedCopy] = await store.list('SandboxTemplate', { labels: { pool: 'p' } });
      assert.ok(copy && !Object.isFrozen(copy) && listedCopy && !Object.isFrozen(listedCopy));
      copy.metadata.labels!.pool = 'changed';
      listedCopy.spec.podTemplate.spec.containers[0]!.image = 'changed';
      const again = store.getSync('SandboxTemplate', 'default', 't');
      assert.equal(again?.metadata.labels?.pool, 'p');
      assert.equal(again?.spec.podTemplate.spec.containers[0]?.image, 'python:3.11-slim');
    } finally {
      store.close();
    }
  });

  it('a status update of a frozen object makes a new one; objects loaded from disk are frozen too', async () => {
    const file = join(home, 'status.db');
    const store = new SqliteStore(file);
    let before: SandboxTemplate | undefined;
    try {
      await store.create(template('t'));
      before = await store.get('SandboxTemplate', 'default', 't', { cached: true });
      const written = await store.updateStatus({ ...before!, status: { note: 'x' } });
      assert.notEqual(written.metadata.resourceVersion, before!.metadata.resourceVersion);
      assert.deepEqual((store.getSync('SandboxTemplate', 'default', 't') as { status?: unknown }).status, {
        note: 'x',
      });
      assert.equal((before as { status?: unknown }).status, undefined);
    } finally {
      store.close();
    }
    const reopened = new SqliteStore(file);
    try {
      const loaded = await reopened.get('SandboxTemplate', 'default', 't', { cached: true });
      assert.ok(loaded && Object.isFrozen(loaded) && Object.isFrozen(loaded.metadata));
    } finally {
      reopened.close();
    }
  });
});
