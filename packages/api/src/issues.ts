// From zod issues to field errors a person can act on, one per field, kubectl style:
//   spec.replicas: must be 0 or 1 (got 3)
//   spec.templateRef: unknown field; did you mean spec.sandboxTemplateRef?
// Messages come from the schema where it has one, else from the house-style error map below.
import type { z } from 'zod';
import type { FieldHints } from './meta.ts';

export interface FieldError {
  /** `spec.podTemplate.spec.containers[0].image`; map keys in brackets (`labels[app.kubernetes.io/name]`); '' for the document. */
  path: string;
  message: string;
  /** 1-based position in the YAML source, when the object came from YAML. */
  line?: number;
  column?: number;
}

type Issue = z.core.$ZodIssue;
type RawIssue = z.core.$ZodRawIssue;

const TYPE_NAMES: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'true or false',
  object: 'a mapping',
  array: 'a list',
  record: 'a mapping',
  bigint: 'an integer',
  null: 'null',
  date: 'a date',
};

function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return JSON.stringify(v.length > 60 ? `${v.slice(0, 57)}...` : v);
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  return typeof v;
}

/** House style for issues whose schema gives no message of its own. */
export const errorMap = (iss: RawIssue): string | undefined => {
  switch (iss.code) {
    case 'invalid_type':
      return iss.input === undefined ? 'Required' : `must be ${TYPE_NAMES[iss.expected] ?? iss.expected}`;
    case 'invalid_value':
      return iss.values.length === 1
        ? `must be ${describeValue(iss.values[0])}`
        : `must be one of ${iss.values.map(String).join(', ')}`;
    case 'too_small': {
      const min = Number(iss.minimum);
      if (iss.origin === 'string') return min <= 1 ? 'must not be empty' : `must be at least ${min} characters`;
      if (iss.origin === 'array' || iss.origin === 'set')
        return `must have at least ${min} item${min === 1 ? '' : 's'}`;
      return `must be ${iss.inclusive === false ? 'greater than' : 'at least'} ${min}`;
    }
    case 'too_big': {
      const max = Number(iss.maximum);
      if (iss.origin === 'string') return `must be at most ${max} characters`;
      if (iss.origin === 'array' || iss.origin === 'set') return `must have at most ${max} items`;
      return `must be ${iss.inclusive === false ? 'less than' : 'at most'} ${max}`;
    }
    case 'invalid_format':
      return `must be a valid ${iss.format}`;
    case 'invalid_union':
      return 'does not match any allowed form';
    default:
      return undefined;
  }
};

// ---- paths ----

type Def = { type: string; [k: string]: unknown };
const defOf = (s: unknown): Def | undefined => (s as { _zod?: { def?: Def } } | undefined)?._zod?.def;

/** Strips wrappers that do not change the value's shape (optional, default, pipes...). */
function unwrap(schema: unknown): unknown {
  for (let s = schema, i = 0; i < 20; i++) {
    const def = defOf(s);
    if (!def) return s;
    if (['optional', 'nullable', 'default', 'prefault', 'readonly', 'catch', 'nonoptional'].includes(def.type))
      s = def.innerType;
    else if (def.type === 'pipe') s = def.in;
    else if (def.type === 'lazy') s = (def.getter as () => unknown)();
    else return s;
  }
  return schema;
}

/** The schema at a path, with whether each step went into a map (record) rather than a field. */
function walk(schema: unknown, path: readonly PropertyKey[]): { at: unknown; mapKeys: boolean[] } {
  const mapKeys: boolean[] = [];
  let s: unknown = schema;
  for (const seg of path) {
    const def = defOf(unwrap(s));
    if (def?.type === 'object') {
      s = (def.shape as Record<string, unknown>)[String(seg)];
      mapKeys.push(false);
    } else if (def?.type === 'array') {
      s = def.element;
      mapKeys.push(false);
    } else if (def?.type === 'record') {
      s = def.valueType;
      mapKeys.push(true);
    } else {
      s = undefined;
      mapKeys.push(typeof seg !== 'number' && !/^[A-Za-z_][\w-]*$/.test(String(seg)));
    }
  }
  return { at: unwrap(s), mapKeys };
}

/** Renders a path kubectl style: fields with dots, list indices and map keys in brackets. */
export function renderPath(path: readonly PropertyKey[], schema?: unknown): string {
  const { mapKeys } = walk(schema, path);
  let out = '';
  path.forEach((seg, i) => {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (mapKeys[i]) out += `[${String(seg)}]`;
    else out += out ? `.${String(seg)}` : String(seg);
  });
  return out;
}

/** The same path without list indices, as FieldHints are keyed. */
const hintKey = (path: readonly PropertyKey[]) =>
  path
    .filter((p) => typeof p !== 'number')
    .map(String)
    .join('.');

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = row[j]!;
      row[j] = Math.min(up + 1, row[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return row[b.length]!;
}

/** The known field closest to a misspelt one: same letters in another case, or ≤ 2 edits away. */
export function closestField(key: string, known: readonly string[]): string | undefined {
  const lower = key.toLowerCase();
  const sameCase = known.find((k) => k.toLowerCase() === lower);
  if (sameCase) return sameCase;
  let best: string | undefined;
  let bestDistance = Math.min(2, Math.floor(key.length / 3));
  for (const k of known) {
    const d = editDistance(lower, k.toLowerCase());
    if (d <= bestDistance) {
      best = k;
      bestDistance = d - 1;
    }
  }
  return best;
}

function unknownField(parent: readonly PropertyKey[], key: string, schema: unknown, hints: FieldHints): FieldError {
  const full = [...parent, key];
  const path = renderPath(full, schema);
  const hint = hints[hintKey(full)];
  if (hint) return { path, message: `unknown field; ${hint}` };
  const def = defOf(walk(schema, parent).at);
  const known = def?.type === 'object' ? Object.keys(def.shape as object) : [];
  const guess = closestField(key, known);
  const parentPath = renderPath(parent, schema);
  return {
    path,
    message: guess
      ? `unknown field; did you mean ${parentPath ? `${parentPath}.` : ''}${guess}?`
      : known.length
        ? `unknown field (known fields: ${known.join(', ')})`
        : 'unknown field',
  };
}

function withGot(message: string, issue: Issue): string {
  const input = (issue as { input?: unknown }).input;
  if (input === undefined || typeof input === 'object' || message.includes('(got ')) return message;
  return `${message} (got ${describeValue(input)})`;
}

/** One FieldError per field; `schema` renders map keys and finds close field names; `hints` per kind. */
export function issuesToErrors(
  issues: readonly Issue[],
  opts: { schema?: unknown; hints?: FieldHints; prefix?: readonly PropertyKey[] } = {},
): FieldError[] {
  const { schema, hints = {}, prefix = [] } = opts;
  const out: FieldError[] = [];
  for (const issue of issues) {
    const path = [...prefix, ...issue.path];
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) out.push(unknownField(path, key, schema, hints));
    } else if (issue.code === 'invalid_key') {
      const inner = issue.issues[0];
      out.push({ path: renderPath(path, schema), message: `invalid key: ${inner?.message ?? issue.message}` });
    } else if (
      issue.code === 'invalid_union' &&
      issue.errors.length > 0 &&
      issue.message === 'does not match any allowed form'
    ) {
      // No message of its own: report the first alternative's complaint.
      out.push(...issuesToErrors(issue.errors[0]!, { schema, hints, prefix: path }));
    } else {
      out.push({ path: renderPath(path, schema), message: withGot(issue.message, issue) });
    }
  }
  return dedupe(out);
}

function dedupe(errors: FieldError[]): FieldError[] {
  const seen = new Set<string>();
  return errors.filter((e) => {
    const key = `${e.path}\0${e.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/**
 * One line per error. Plain by default (`spec.replicas: must be 0 or 1 (got 3)`); with
 * `positions`, compiler style (`sandbox.yaml:7:13: spec.replicas: ...`) where the line is known.
 */
export function formatIssues(
  errors: readonly FieldError[],
  opts: { positions?: boolean; source?: string } = {},
): string {
  return errors
    .map((e) => {
      const where =
        e.line !== undefined
          ? `${opts.source ?? 'line'}${opts.source ? ':' : ' '}${e.line}:${e.column ?? 1}`
          : undefined;
      const field = e.path ? `${e.path}: ` : '';
      if (!e.path && where) return `${where}: ${e.message}`;
      return opts.positions && where ? `${where}: ${field}${e.message}` : `${field}${e.message}`;
    })
    .join('\n');
}
