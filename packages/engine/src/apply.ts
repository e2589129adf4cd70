// kubectl-style apply of the upstream objects to the local engine. Every document is validated
// (field paths in the message) before anything changes; then each is applied in order.
import { parseManifests, validateObject, formatIssues, type AnyObject, type ManifestResult } from '@asb/api';
import { EngineError } from './errors.ts';
import type { SandboxManager } from './sandboxes.ts';
import type { PodTemplateLike } from './pod.ts';

export interface ApplyResult { kind: string; name: string; namespace: string; action: 'created' | 'configured' | 'unchanged' }

/** Parses YAML (or a JSON object/list) and refuses the whole request if any document is invalid. */
export function parseApplyBody(text: string, contentType = ''): AnyObject[] {
  let results: ManifestResult[];
  if (contentType.includes('json')) {
    let raw: unknown;
    try { raw = JSON.parse(text); } catch (err) { throw new EngineError('BadRequest', `request body is not valid JSON: ${(err as Error).message}`); }
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
  return results.map((r) => (r as { object: AnyObject }).object);
}

export async function applyObjects(sandboxes: SandboxManager, objects: AnyObject[]): Promise<ApplyResult[]> {
  const out: ApplyResult[] = [];
  for (const obj of objects) {
    const namespace = obj.metadata.namespace ?? 'default';
    const name = obj.metadata.name ?? '';
    if (obj.kind === 'SandboxTemplate') {
      const existed = sandboxes.listTemplates(namespace).some((t) => t.name === name);
      sandboxes.putTemplate({ name, namespace, podTemplate: obj.spec.podTemplate as PodTemplateLike });
      out.push({ kind: obj.kind, name, namespace, action: existed ? 'configured' : 'created' });
    } else if (obj.kind === 'Sandbox') {
      if (sandboxes.list(namespace).some((s) => s.name === name)) { out.push({ kind: obj.kind, name, namespace, action: 'unchanged' }); continue; }
      await sandboxes.create({ namespace, name, podTemplate: obj.spec.podTemplate as PodTemplateLike });
      out.push({ kind: obj.kind, name, namespace, action: 'created' });
    } else {
      throw new EngineError('Invalid', `${obj.kind} "${name}" is valid, but this engine does not run ${obj.kind} objects yet (claims and warm pools come with the lifecycle engine); apply SandboxTemplate and Sandbox objects`);
    }
  }
  return out;
}
