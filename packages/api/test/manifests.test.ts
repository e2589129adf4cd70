// Multi-document YAML: each document validated alone, errors placed on their line.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseManifests, parsePath, formatIssues, type ManifestResult } from '../src/index.ts';

const SANDBOX = `apiVersion: agents.x-k8s.io/v1alpha1
kind: Sandbox
metadata:
  name: sb
spec:
  podTemplate:
    spec:
      containers:
      - name: c
        image: busybox
`;

function refused(r: ManifestResult | undefined) {
  assert.ok(r, 'expected a result');
  assert.equal(r.ok, false, 'expected the document to be refused');
  return r.ok ? [] : r.errors;
}

describe('parseManifests', () => {
  it('reports a YAML syntax error with its line and column, and no field', () => {
    const [error] = refused(
      parseManifests(
        'apiVersion: agents.x-k8s.io/v1alpha1\nkind: Sandbox\nmetadata:\n  name: [unclosed\nspec: {}\n',
      )[0],
    );
    assert.equal(error?.path, '');
    assert.match(error?.message ?? '', /^YAML syntax error: /);
    assert.equal(typeof error?.line, 'number');
    assert.ok(error.line! >= 4, `line ${error?.line} should be at or after the unclosed [ on line 4`);
    assert.match(formatIssues([error]), /^line \d+:\d+: YAML syntax error: /);
    assert.match(formatIssues([error], { source: 'x.yaml' }), /^x\.yaml:\d+:\d+: YAML syntax error: /);
  });

  it("reports a duplicate key as a syntax error on the second key's line", () => {
    const [error] = refused(parseManifests(SANDBOX.replace('  name: sb\n', '  name: sb\n  name: sb2\n'))[0]);
    assert.match(error?.message ?? '', /Map keys must be unique/);
    assert.equal(error?.line, 5);
  });

  it('places field errors on the line of their key, and missing fields on their parent', () => {
    const text = SANDBOX.replace('spec:\n', 'spec:\n  replicas: 3\n').replace('        image: busybox\n', '');
    const errors = refused(parseManifests(text)[0]);
    const at = Object.fromEntries(errors.map((e) => [e.path, [e.line, e.column]]));
    assert.deepEqual(at, { 'spec.replicas': [6, 3], 'spec.podTemplate.spec.containers[0].image': [10, 9] });
  });

  it('counts documents from 0, skipping empty ones but keeping their index', () => {
    const results = parseManifests(`---\n${SANDBOX}---\n---\n${SANDBOX.replace('name: sb', 'name: sb2')}---\n`);
    assert.deepEqual(
      results.map((r) => [r.doc, r.ok]),
      [
        [0, true],
        [2, true],
      ],
    );
  });

  it('validates each document on its own and says which one failed', () => {
    const results = parseManifests(`${SANDBOX}---\n${SANDBOX.replace('busybox', '""')}`, 'two.yaml');
    assert.deepEqual(
      results.map((r) => [r.doc, r.ok, r.source]),
      [
        [0, true, 'two.yaml'],
        [1, false, 'two.yaml'],
      ],
    );
    assert.equal(
      formatIssues(refused(results[1]), { positions: true, source: 'two.yaml' }),
      'two.yaml:21:9: spec.podTemplate.spec.containers[0].image: image is required (got "")',
    );
  });

  it('applies the items of a List, as kubectl does with `get -o yaml` output', () => {
    const item = (name: string) =>
      `- apiVersion: agents.x-k8s.io/v1beta1\n  kind: Sandbox\n  metadata: {name: ${name}}\n  spec:\n    operatingMode: Suspended\n    podTemplate: {spec: {containers: [{name: c, image: x}]}}\n`;
    const results = parseManifests(`apiVersion: v1\nkind: List\nitems:\n${item('one')}${item('Two')}`);
    assert.deepEqual(
      results.map((r) => [r.doc, r.item, r.ok]),
      [
        [0, 0, true],
        [0, 1, false],
      ],
    );
    const [error] = refused(results[1]);
    assert.equal(error?.path, 'metadata.name');
    assert.equal(error?.line, 12);
  });

  it('reads YAML as kubectl does: yes is true, unquoted times stay strings, merge keys work', () => {
    const text = `${SANDBOX.replace('spec:\n', 'spec:\n  service: yes\n  shutdownTime: 2026-01-02T15:04:05Z\n')}`;
    const [r] = parseManifests(text);
    assert.ok(r?.ok && r.object.kind === 'Sandbox');
    assert.equal(r.object.spec.service, true);
    assert.equal(r.object.spec.shutdownTime, '2026-01-02T15:04:05Z');
    const merged = parseManifests(
      `base: &b {name: c, image: busybox}\napiVersion: agents.x-k8s.io/v1alpha1\nkind: Sandbox\nmetadata: {name: m}\nspec: {podTemplate: {spec: {containers: [{<<: *b}]}}}\n`,
    );
    assert.equal(
      refused(merged[0])
        .map((e) => e.path)
        .join(),
      'base',
      'only the extra top-level key is refused; the merged container is valid',
    );
  });

  it('refuses alias bombs instead of expanding them', () => {
    const bomb =
      'a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n';
    assert.match(formatIssues(refused(parseManifests(bomb)[0])), /^YAML: .*alias/i);
  });

  it('fills in the target namespace and refuses a conflicting one', () => {
    const [ok] = parseManifests(SANDBOX, undefined, { namespace: 'team-a' });
    assert.ok(ok?.ok);
    assert.equal(ok.object.metadata.namespace, 'team-a');
    const [conflict] = parseManifests(SANDBOX.replace('  name: sb\n', '  name: sb\n  namespace: team-b\n'), undefined, {
      namespace: 'team-a',
    });
    assert.equal(
      formatIssues(refused(conflict)),
      'metadata.namespace: the object\'s namespace "team-b" does not match the namespace "team-a" being applied to',
    );
  });

  it('returns nothing for an empty stream', () => {
    assert.deepEqual(parseManifests(''), []);
    assert.deepEqual(parseManifests('# only a comment\n---\n'), []);
  });
});

describe('parsePath', () => {
  it('splits fields, list indices and bracketed map keys', () => {
    assert.deepEqual(parsePath('spec.podTemplate.spec.containers[0].resources.limits[memory]'), [
      'spec',
      'podTemplate',
      'spec',
      'containers',
      0,
      'resources',
      'limits',
      'memory',
    ]);
    assert.deepEqual(parsePath('metadata.labels[app.kubernetes.io/name]'), [
      'metadata',
      'labels',
      'app.kubernetes.io/name',
    ]);
  });
});
