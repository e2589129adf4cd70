// Validation of objects and YAML manifests, with one line per field in kubectl's style:
//   spec.podTemplate.spec.containers[0].image: image is required
import { parseAllDocuments } from 'yaml';
import type { z } from 'zod';
import { KIND_GROUP, SCHEMAS, VERSIONS, type AnyObject } from './kinds.ts';

export interface FieldError { path: string; message: string }
export type Validated<T = AnyObject> = { ok: true; object: T } | { ok: false; errors: FieldError[] };

/** Fields users write by mistake (older docs, other projects) → what they meant. */
const HINTS: Record<string, string> = {
  templateRef: 'spec.sandboxTemplateRef (with a name)',
  ttl: 'spec.lifecycle.shutdownTime or spec.lifecycle.ttlSecondsAfterFinished',
  template: 'spec.podTemplate',
  warmPool: 'spec.warmpool (v1alpha1) or spec.warmPoolRef (v1beta1)',
  operatingMode: 'spec.replicas (0 or 1) in v1alpha1; operatingMode is v1beta1',
  replicas: 'spec.operatingMode (Running or Suspended) in v1beta1',
};

export function pathOf(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out || '(object)';
}

export function issuesToErrors(issues: ReadonlyArray<z.core.$ZodIssue>): FieldError[] {
  const errors: FieldError[] = [];
  for (const i of issues) {
    if (i.code === 'unrecognized_keys') {
      for (const key of i.keys) {
        const hint = HINTS[key];
        errors.push({ path: pathOf([...i.path, key]), message: `unknown field${hint ? `; did you mean ${hint}?` : ''}` });
      }
    } else if (i.code === 'invalid_key' && i.issues.length) {
      errors.push({ path: pathOf(i.path), message: i.issues[0]!.message });
    } else if (i.code === 'invalid_union' && 'errors' in i && i.errors.length) {
      errors.push(...issuesToErrors(i.errors[0]!.map((e) => ({ ...e, path: [...i.path, ...e.path] }))));
    } else {
      errors.push({ path: pathOf(i.path), message: i.message });
    }
  }
  return errors;
}

export function formatIssues(errors: FieldError[]): string {
  return errors.map((e) => `${e.path}: ${e.message}`).join('\n');
}

/** Validates one object against its apiVersion and kind, applying defaults. */
export function validateObject(raw: unknown): Validated {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return { ok: false, errors: [{ path: '(object)', message: 'expected a mapping with apiVersion, kind, metadata and spec' }] };
  const { apiVersion, kind } = raw as { apiVersion?: unknown; kind?: unknown };
  if (typeof kind !== 'string' || !(kind in KIND_GROUP)) {
    return { ok: false, errors: [{ path: 'kind', message: `must be one of ${Object.keys(KIND_GROUP).join(', ')} (got ${JSON.stringify(kind)})` }] };
  }
  const schema = typeof apiVersion === 'string' ? SCHEMAS[apiVersion]?.[kind] : undefined;
  if (!schema) {
    const want = VERSIONS.map((v) => `${KIND_GROUP[kind]}/${v}`).join(' or ');
    return { ok: false, errors: [{ path: 'apiVersion', message: `${kind} is served as ${want} (got ${JSON.stringify(apiVersion)})` }] };
  }
  const parsed = schema.safeParse(raw);
  return parsed.success ? { ok: true, object: parsed.data as AnyObject } : { ok: false, errors: issuesToErrors(parsed.error.issues) };
}

export type ManifestResult = Validated & { doc: number; source?: string };

/** Parses multi-document YAML; each document is validated on its own. Syntax errors carry line:column. */
export function parseManifests(text: string, source?: string): ManifestResult[] {
  const docs = parseAllDocuments(text, { prettyErrors: true });
  const list = Array.isArray(docs) ? docs : [docs];
  const out: ManifestResult[] = [];
  list.forEach((doc, i) => {
    if (doc.errors.length) {
      out.push({ ok: false, doc: i, source, errors: doc.errors.map((e) => ({ path: e.linePos ? `line ${e.linePos[0].line}:${e.linePos[0].col}` : '(yaml)', message: e.message.split('\n')[0]! })) });
      return;
    }
    const value = doc.toJS() as unknown;
    if (value === null || value === undefined) return; // empty document (e.g. a trailing ---)
    out.push({ ...validateObject(value), doc: i, source });
  });
  return out;
}
