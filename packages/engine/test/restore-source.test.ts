// Which snapshot a starting sandbox comes from (workloads/restore.ts): the one its Sandbox names,
// else its template's golden snapshot when the sandbox has no files yet and its spec matches.
// Real stores in a temporary home; the driver differs only in whether it can restore.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { ANNOTATION_SANDBOX_TEMPLATE_REF, parseManifests, type Sandbox } from '@asb/api';
import { loadConfig } from '../src/config.ts';
import { EngineError } from '../src/errors.ts';
import { SnapshotStore } from '../src/snapshots.ts';
import { SqliteStore } from '../src/store/sqlite-store.ts';
import { builtinTemplates } from '../src/builtin-templates.ts';
import { applyObjects } from '../src/apply.ts';
import type { SandboxDriver } from '../src/drivers/driver.ts';
import {
  ANNOTATION_GOLDEN_SNAPSHOT,
  ANNOTATION_RESTORE_SNAPSHOT,
  runtimeSpecHash,
} from '../src/snapshot-annotations.ts';
import { startSource, type RestoreDeps } from '../src/workloads/restore.ts';

const home = mkdtempSync(join(tmpdir(), 'asb-restore-source-'));
const store = new SqliteStore(join(home, 'state.db'));
const snapshots = new SnapshotStore(join(home, 'snapshots'));

const notCalled = () => {
  throw new Error('not called by startSource');
};
const driver = (canRestore: boolean): SandboxDriver => ({
  name: canRestore ? 'gvisor' : 'bubblewrap',
  isolation: 'none (a test driver)',
  workspaceOwner: () => ({ uid: 0, gid: 0 }),
  start: notCalled,
  attach: notCalled,
  destroy: notCalled,
  list: notCalled,
  ...(canRestore ? { restore: notCalled } : {}),
});
const deps = (canRestore = true): RestoreDeps => ({
  config: loadConfig({ home }),
  driver: driver(canRestore),
  store,
  snapshots,
  log: pino({ level: 'silent' }),
});

interface SandboxOpts {
  namespace?: string;
  annotations?: Record<string, string>;
  image?: string;
}

/** A Sandbox of the python template (whose golden snapshot the tests set). */
function sandbox(name: string, opts: SandboxOpts = {}): Sandbox {
  const annotations = { [ANNOTATION_SANDBOX_TEMPLATE_REF]: 'python-runtime-template', ...opts.annotations };
  const [parsed] = parseManifests(`apiVersion: agents.x-k8s.io/v1alpha1
kind: Sandbox
metadata:
  name: ${name}
  namespace: ${opts.namespace ?? 'default'}
  uid: uid-${name}
  annotations: ${JSON.stringify(annotations)}
spec:
  podTemplate:
    spec:
      containers:
      - name: python-runtime
        image: ${opts.image ?? 'registry.k8s.io/agent-sandbox/python-runtime-sandbox:v0.1.0'}
`);
  assert.ok(parsed?.ok, 'the test Sandbox is valid');
  return parsed.object as Sandbox;
}

/** A committed snapshot (an image file is all `get` checks) of a sandbox like `of`. */
async function snapshotOf(of: Sandbox, namespace = 'default'): Promise<string> {
  const id = snapshots.newId();
  const tmp = snapshots.begin(id);
  mkdirSync(snapshots.imageDir(tmp));
  writeFileSync(join(snapshots.imageDir(tmp), 'checkpoint.img'), 'image');
  await snapshots.commit(tmp, {
    id,
    namespace,
    sandbox: of.metadata.name!,
    sandboxUid: 'uid',
    createdAt: new Date().toISOString(),
    reason: 'manual',
    specHash: runtimeSpecHash(of),
    sandboxSpec: {},
  });
  return id;
}

/** A sandbox that has files already (it ran before). */
function withFiles(sb: Sandbox): Sandbox {
  mkdirSync(join(home, 'sandboxes', sb.metadata.namespace, sb.metadata.name!, 'workspace'), { recursive: true });
  return sb;
}

describe('the snapshot a sandbox starts from', () => {
  let named: string;
  let otherNamespace: string;
  let golden: string;
  before(async () => {
    named = await snapshotOf(sandbox('origin'));
    otherNamespace = await snapshotOf(sandbox('origin', { namespace: 'team-b' }), 'team-b');
    golden = await snapshotOf(sandbox('golden-origin'));
    const [template] = builtinTemplates();
    template!.metadata.annotations = { [ANNOTATION_GOLDEN_SNAPSHOT]: golden };
    await applyObjects(store, [template!]);
  });
  after(() => {
    store.close();
    rmSync(home, { recursive: true, force: true });
  });

  it('is the one the Sandbox names, with its files for a new sandbox (a fork)', () => {
    const sb = sandbox('fork', { annotations: { [ANNOTATION_RESTORE_SNAPSHOT]: named } });
    assert.deepEqual(pick(startSource(deps(), sb, { explicit: true })), { id: named, copyFiles: true });
  });

  it('is the one the Sandbox names, keeping its own files when it has some (a resume)', () => {
    const sb = withFiles(sandbox('resumed', { annotations: { [ANNOTATION_RESTORE_SNAPSHOT]: named } }));
    assert.deepEqual(pick(startSource(deps(), sb, { explicit: true })), { id: named, copyFiles: false });
  });

  it('never crosses namespaces: a named snapshot of another namespace is refused as Invalid', () => {
    const sb = sandbox('thief', { annotations: { [ANNOTATION_RESTORE_SNAPSHOT]: otherNamespace } });
    assert.throws(
      () => startSource(deps(), sb, { explicit: true }),
      (err: unknown) =>
        err instanceof EngineError && err.reason === 'Invalid' && /belongs to namespace "team-b"/.test(err.message),
    );
  });

  it("is the template's golden snapshot for a reset, whatever the Sandbox names", () => {
    const sb = sandbox('reset', { annotations: { [ANNOTATION_RESTORE_SNAPSHOT]: named } });
    assert.deepEqual(pick(startSource(deps(), sb, { explicit: false })), { id: golden, copyFiles: true });
  });

  const noGolden: Array<{ what: string; sb: () => Sandbox; canRestore?: boolean }> = [
    { what: 'a sandbox that has files already', sb: () => withFiles(sandbox('has-files')) },
    {
      what: "a sandbox whose spec differs from the snapshot's",
      sb: () => sandbox('other-image', { image: 'python:3.13-slim' }),
    },
    { what: 'a driver that cannot restore (bubblewrap)', sb: () => sandbox('bwrap'), canRestore: false },
  ];
  for (const c of noGolden) {
    it(`is none (a boot) for ${c.what}`, () => {
      assert.equal(startSource(deps(c.canRestore), c.sb(), { explicit: true }), undefined);
    });
  }

  it('is the golden snapshot for a new sandbox of the template with the same spec', () => {
    assert.deepEqual(pick(startSource(deps(), sandbox('fresh'), { explicit: true })), { id: golden, copyFiles: true });
  });
});

function pick(source: ReturnType<typeof startSource>): { id: string; copyFiles: boolean } | undefined {
  return source && { id: source.snapshot.id, copyFiles: source.copyFiles };
}
