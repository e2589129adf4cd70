// Multi-document YAML → validated objects, each error with its field path and its line in the
// source. Parsed as kubectl parses (YAML 1.1: `yes`/`on` are booleans, merge keys work), except
// that unquoted timestamps stay strings, as they do in Kubernetes' decoder.
import {
  LineCounter,
  isMap,
  isPair,
  isScalar,
  isSeq,
  parseAllDocuments,
  type Document,
  type DocumentOptions,
  type Node,
  type Pair,
  type SchemaOptions,
} from 'yaml';
import type { FieldError } from './issues.ts';
import { validateObject, type Validated } from './validate.ts';

export type ManifestResult = Validated & {
  /** 0-based index of the YAML document in the source (empty documents count too). */
  doc: number;
  /** Index in `items` when the document is a `kind: List`. */
  item?: number;
  source?: string;
};

export interface ParseManifestsOptions {
  /** The namespace the caller targets (kubectl -n): fills in a missing metadata.namespace; a different one is an error. */
  namespace?: string;
}

const YAML_OPTIONS: DocumentOptions & SchemaOptions = {
  version: '1.1',
  merge: true,
  customTags: (tags) => tags.filter((t) => typeof t === 'string' || t.tag !== 'tag:yaml.org,2002:timestamp'),
};

/** Parses `text` (one or more `---`-separated documents) and validates each object in it. */
export function parseManifests(text: string, source?: string, opts: ParseManifestsOptions = {}): ManifestResult[] {
  const lines = new LineCounter();
  const docs = parseAllDocuments(text, { ...YAML_OPTIONS, lineCounter: lines });
  const out: ManifestResult[] = [];
  let index = 0;
  for (const doc of docs as Iterable<Document>) {
    const at = { doc: index++, ...(source !== undefined ? { source } : {}) };
    if (doc.errors.length) {
      out.push({ ok: false, ...at, errors: doc.errors.map((e) => syntaxError(e.message, e.linePos?.[0])) });
      continue;
    }
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: 100 });
    } catch (err) {
      out.push({ ok: false, ...at, errors: [{ path: '', message: `YAML: ${(err as Error).message}` }] });
      continue;
    }
    if (value === null || value === undefined) continue; // an empty document, e.g. after a trailing ---
    const list = listItems(value);
    if (list) {
      list.forEach((item, i) =>
        out.push(validateWithPositions(item, doc, lines, ['items', i], opts, { ...at, item: i })),
      );
    } else {
      out.push(validateWithPositions(value, doc, lines, [], opts, at));
    }
  }
  return out;
}

function syntaxError(message: string, pos?: { line: number; col: number }): FieldError {
  // The library's message ends with " at line L, column C:" and a code frame; keep the sentence.
  const sentence = message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
  return { path: '', message: `YAML syntax error: ${sentence}`, ...(pos ? { line: pos.line, column: pos.col } : {}) };
}

/** `kubectl get -o yaml` of several objects gives a List; kubectl applies its items. */
function listItems(value: unknown): unknown[] | undefined {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
  const v = value as { kind?: unknown; items?: unknown };
  return v.kind === 'List' && Array.isArray(v.items) ? v.items : undefined;
}

function validateWithPositions(
  raw: unknown,
  doc: Document,
  lines: LineCounter,
  prefix: Array<string | number>,
  opts: ParseManifestsOptions,
  at: Omit<ManifestResult, 'ok' | 'errors' | 'object'>,
): ManifestResult {
  const ns = checkNamespace(raw, opts.namespace);
  if ('error' in ns) return { ok: false, ...at, errors: [locate(ns.error, doc, lines, prefix)] };
  const result = validateObject(ns.value);
  if (result.ok) return { ...result, ...at };
  return { ok: false, ...at, errors: result.errors.map((e) => locate(e, doc, lines, prefix)) };
}

function checkNamespace(raw: unknown, namespace: string | undefined): { value: unknown } | { error: FieldError } {
  if (namespace === undefined || raw === null || typeof raw !== 'object' || Array.isArray(raw)) return { value: raw };
  const obj = raw as { metadata?: unknown };
  const meta =
    obj.metadata !== null && typeof obj.metadata === 'object' && !Array.isArray(obj.metadata)
      ? (obj.metadata as { namespace?: unknown })
      : undefined;
  if (meta?.namespace !== undefined && meta.namespace !== namespace) {
    return {
      error: {
        path: 'metadata.namespace',
        message: `the object's namespace ${JSON.stringify(meta.namespace)} does not match the namespace ${JSON.stringify(namespace)} being applied to`,
      },
    };
  }
  return { value: { ...obj, metadata: { ...meta, namespace } } };
}

/** `spec.containers[0].image` / `labels[app.kubernetes.io/name]` → segments. */
export function parsePath(path: string): Array<string | number> {
  const segs: Array<string | number> = [];
  for (const m of path.matchAll(/\[([^\]]*)\]|([^.[\]]+)/g)) {
    if (m[2] !== undefined) segs.push(m[2]);
    else segs.push(/^\d+$/.test(m[1]!) ? Number(m[1]) : m[1]!);
  }
  return segs;
}

/**
 * Adds the line and column of the field (its key), or of the nearest enclosing field that exists
 * when the field is missing, so an editor can jump there.
 */
function locate(error: FieldError, doc: Document, lines: LineCounter, prefix: Array<string | number>): FieldError {
  let node: unknown = doc.contents;
  let anchor: Node | Pair | undefined = isMap(node) || isSeq(node) ? node : undefined;
  for (const seg of [...prefix, ...parsePath(error.path)]) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(seg));
      if (!pair) break;
      anchor = pair;
      node = pair.value;
    } else if (isSeq(node) && typeof seg === 'number' && node.items[seg] !== undefined) {
      node = node.items[seg];
      anchor = node as Node;
    } else {
      break;
    }
  }
  const range = anchor && (isPair(anchor) ? (anchor.key as Node | null)?.range : anchor.range);
  if (!range) return error;
  const pos = lines.linePos(range[0]);
  return { ...error, line: pos.line, column: pos.col };
}
