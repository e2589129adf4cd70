// kubectl-style apply of the upstream objects to the local engine. Every document is validated
// (field paths in the message) before anything changes; then each is applied in order.
import { parseManifests, validateObject, formatIssues, toHub, type AnyObject, type ManifestResult } from '@asb/api';
import type { AnyHub, KindName, ObjectStore } from '@asb/lifecycle';
import { EngineError, toEngineError } from './errors.ts';
import { MAX_JSON_DEPTH, jsonDepthExceeds, parseJsonBody } from './http/json.ts';

export interface ApplyResult { kind: string; name: string; namespace: string; action: 'created' | 'configured' | 'unchanged' }

/** Parses YAML (or a JSON object/list) and refuses the whole request if any document is invalid. */
export function parseApplyBody(text: string, contentType = ''): AnyObject[] {
  let results: ManifestResult[];
  if (contentType.includes('json')) {
    const raw = parseJsonBody(text);
    const items = Array.isArray(raw) ? raw : (raw as { kind?: string; items?: unknown[] })?.kind === 'List' ? (raw as { items: unknown[] }).items : [raw];
    results = items.map((o, doc) => ({ ...validateObject(o), doc }));
  } else {
    results = parseManifests(text);
  }
  const bad = results.filter((r) => !r.ok);
  if (bad.length) {
    const causes = bad.flatMap((r) => (r.ok ? [] : r.errors.map((e) => ({ field: results.length > 1 ? `[${r.doc}].${e.path}` : e.path, message: e.message }))));
    throw new EngineError('Invalid', `invalid manifest:\n${bad.map((r) => (r.ok ? '' : (results.length > 1 ? `document ${r.doc}:\n` : '') + formatIssues(r.errors))).join('\n')}`, causes);
  }
  if (results.length === 0) throw new EngineError('Invalid', 'the manifest holds no object');
  const objects = results.map((r) => (r as { object: AnyObject }).object);
  // YAML's own parser refuses deeper nesting than its stack allows, but not all that the store's
  // serialisation would choke on.
  if (objects.some((o) => jsonDepthExceeds(o))) throw new EngineError('Invalid', `the manifest nests deeper than ${MAX_JSON_DEPTH} levels`);
  return objects;
}

/** kubectl apply, simplified: create, or replace labels, annotations and spec (status is the
 *  controller's, and stays). Objects without a name but with generateName are always created. */
export async function applyObjects(store: ObjectStore, objects: AnyObject[]): Promise<ApplyResult[]> {
  const out: ApplyResult[] = [];
  for (const obj of objects) {
    const hub = toHub(obj) as AnyHub;
    const namespace = hub.metadata.namespace;
    const existing = hub.metadata.name ? await store.get(hub.kind as KindName, namespace, hub.metadata.name) : undefined;
    if (!existing) {
      const made = await store.create(hub).catch((err) => { throw toEngineError(err); });
      out.push({ kind: hub.kind, name: made.metadata.name!, namespace, action: 'created' });
      continue;
    }
    const next = {
      ...existing,
      metadata: { ...existing.metadata, labels: hub.metadata.labels, annotations: hub.metadata.annotations },
      spec: hub.spec,
    } as AnyHub;
    const saved = await store.update(next).catch((err) => { throw toEngineError(err); });
    out.push({ kind: hub.kind, name: saved.metadata.name!, namespace, action: saved.metadata.resourceVersion === existing.metadata.resourceVersion ? 'unchanged' : 'configured' });
  }
  return out;
}
