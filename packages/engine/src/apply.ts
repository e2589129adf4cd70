// kubectl-style apply of the upstream objects to the local engine. Every document is validated
// (field paths in the message) before anything changes; then each is applied in order.
import { parseManifests, validateObject, formatIssues, toHub, type AnyObject, type ManifestResult } from '@asb/api';
import type { AnyHub, ObjectStore } from '@asb/lifecycle';
import { EngineError, toEngineError } from './errors.ts';
import { MAX_JSON_DEPTH, jsonDepthExceeds, parseJsonBody } from './http/json.ts';
import { templateAnnotationIssues } from './network/policy.ts';

export interface ApplyResult {
  kind: string;
  name: string;
  namespace: string;
  action: 'created' | 'configured' | 'unchanged';
}

/** A JSON body's objects: an array, a `kind: List`'s items, or the one object. */
function itemsOf(raw: unknown): unknown[] {
  if (Array.isArray(raw)) return raw;
  const list = raw as { kind?: string; items?: unknown[] } | undefined;
  return list?.kind === 'List' ? (list as { items: unknown[] }).items : [raw];
}

/** Parses YAML (or a JSON object/list) and refuses the whole request if any document is invalid. */
export function parseApplyBody(text: string, contentType = ''): AnyObject[] {
  let results: ManifestResult[];
  if (contentType.includes('json')) {
    const raw = parseJsonBody(text);
    results = itemsOf(raw).map((o, doc) => ({ ...validateObject(o), doc }));
  } else {
    results = parseManifests(text);
  }
  const bad = results.filter((r) => !r.ok);
  if (bad.length) {
    // Fields and messages say which document, when there are several.
    const several = results.length > 1;
    const causes = bad.flatMap((r) =>
      r.ok
        ? []
        : r.errors.map((e) => ({
            field: several ? `[${r.doc}].${e.path}` : e.path,
            message: e.message,
          })),
    );
    const reports = bad.map((r) => (r.ok ? '' : (several ? `document ${r.doc}:\n` : '') + formatIssues(r.errors)));
    throw new EngineError('Invalid', `invalid manifest:\n${reports.join('\n')}`, causes);
  }
  if (results.length === 0) throw new EngineError('Invalid', 'the manifest holds no object');
  const objects = results.map((r) => (r as { object: AnyObject }).object);
  // Our annotations (sandbox.asb.dev/...) are checked as the fields are: before anything changes.
  const ours = objects.flatMap((o, doc) =>
    templateAnnotationIssues(o).map((i) => ({ ...i, field: objects.length > 1 ? `[${doc}].${i.field}` : i.field })),
  );
  if (ours.length)
    throw new EngineError('Invalid', `invalid manifest:\n${ours.map((i) => i.message).join('\n')}`, ours);
  // YAML's own parser refuses deeper nesting than its stack allows, but not all that the store's
  // serialisation would choke on.
  if (objects.some((o) => jsonDepthExceeds(o)))
    throw new EngineError('Invalid', `the manifest nests deeper than ${MAX_JSON_DEPTH} levels`);
  return objects;
}

/** kubectl apply, simplified: create, or replace labels, annotations and spec (status is the
 *  controller's, and stays). Objects without a name but with generateName are always created. */
export async function applyObjects(store: ObjectStore, objects: AnyObject[]): Promise<ApplyResult[]> {
  const out: ApplyResult[] = [];
  for (const obj of objects) {
    const hub: AnyHub = toHub(obj);
    const namespace = hub.metadata.namespace;
    const existing = hub.metadata.name ? await store.get(hub.kind, namespace, hub.metadata.name) : undefined;
    if (!existing) {
      const made = await store.create(hub).catch((err) => {
        throw toEngineError(err);
      });
      out.push({ kind: hub.kind, name: made.metadata.name!, namespace, action: 'created' });
      continue;
    }
    const next = {
      ...existing,
      metadata: { ...existing.metadata, labels: hub.metadata.labels, annotations: hub.metadata.annotations },
      spec: hub.spec,
    } as AnyHub;
    const saved = await store.update(next).catch((err) => {
      throw toEngineError(err);
    });
    const unchanged = saved.metadata.resourceVersion === existing.metadata.resourceVersion;
    out.push({ kind: hub.kind, name: saved.metadata.name!, namespace, action: unchanged ? 'unchanged' : 'configured' });
  }
  return out;
}
