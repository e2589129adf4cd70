// What an update may not change, on the local engine's real store (SQLite in a temporary home):
// the cases of upstream's TestSandboxVolumeClaimTemplatesImmutable, which the API server refuses
// on Kubernetes from the CRD's rule (test/k8s runs that suite).
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseManifests, toHub, type Sandbox } from '@asb/api';
import { SqliteStore } from '../src/store/sqlite-store.ts';
import { EngineError } from '../src/errors.ts';

const home = mkdtempSync(join(tmpdir(), 'asb-update-rules-'));
const store = new SqliteStore(join(home, 'state.db'));
after(() => rmSync(home, { recursive: true, force: true }));

const vct = {
  metadata: { name: 'data' },
  spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } },
};

function sandbox(name: string, volumeClaimTemplates?: unknown[]): Sandbox {
  const [parsed] = parseManifests(
    JSON.stringify({
      apiVersion: 'agents.x-k8s.io/v1beta1',
      kind: 'Sandbox',
      metadata: { name, namespace: 'default' },
      spec: {
        podTemplate: { spec: { containers: [{ name: 'pause', image: 'registry.k8s.io/pause:3.10' }] } },
        ...(volumeClaimTemplates ? { volumeClaimTemplates } : {}),
      },
    }),
  );
  assert.ok(parsed?.ok, 'the test Sandbox is valid');
  return toHub(parsed.object) as Sandbox;
}

describe('volumeClaimTemplates is immutable (engine store)', () => {
  const cases: Array<{ name: string; initial?: unknown[]; next?: unknown[] }> = [
    { name: 'set → modified set', initial: [vct], next: [vct, { ...vct, metadata: { name: 'more' } }] },
    { name: 'unset → set', next: [vct] },
    { name: 'set → unset', initial: [vct] },
  ];
  for (const [i, c] of cases.entries())
    it(c.name, async () => {
      const made = await store.create(sandbox(`vct-${i}`, c.initial));
      const next = structuredClone(made);
      if (c.next) next.spec.volumeClaimTemplates = c.next as Sandbox['spec']['volumeClaimTemplates'];
      else delete next.spec.volumeClaimTemplates;
      await assert.rejects(
        store.update(next),
        (err: unknown) =>
          err instanceof EngineError &&
          err.reason === 'Invalid' &&
          /volumeClaimTemplates is immutable/.test(err.message),
      );
      const kept = await store.get('Sandbox', 'default', `vct-${i}`);
      assert.deepEqual(kept?.spec.volumeClaimTemplates, made.spec.volumeClaimTemplates, 'nothing was written');
    });

  it('other spec changes of a Sandbox with volumes still go through', async () => {
    const made = await store.create(sandbox('vct-ok', [vct]));
    const saved = await store.update({ ...made, spec: { ...made.spec, operatingMode: 'Suspended' } });
    assert.equal(saved.spec.operatingMode, 'Suspended');
    assert.equal(saved.metadata.generation, 2);
  });
});
