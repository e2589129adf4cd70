// fast-check arbitraries from zod schemas, through their JSON Schema (z.toJSONSchema): values
// that follow the schema ("valid-ish": optional fields come and go, strings follow their patterns),
// the same with one hostile mutation (a subtree replaced by any JSON, a field dropped, an unknown
// field added), and plain junk. What a fuzzer of an HTTP API feeds its routes' bodies and queries.
import fc from 'fast-check';
import { z } from 'zod';

type Schema = Record<string, unknown> & {
  type?: string | string[];
  properties?: Record<string, Schema>;
  required?: string[];
  additionalProperties?: boolean | Schema;
  propertyNames?: Schema;
  items?: Schema;
  enum?: unknown[];
  const?: unknown;
  anyOf?: Schema[];
  oneOf?: Schema[];
  allOf?: Schema[];
  pattern?: string;
  format?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  minItems?: number;
  maxItems?: number;
};

const anyJson = () => fc.jsonValue({ maxDepth: 2 });

function stringOf(s: Schema): fc.Arbitrary<string> {
  if (s.format === 'date-time')
    return fc
      .date({ min: new Date('2000-01-01'), max: new Date('2100-01-01'), noInvalidDate: true })
      .map((d) => d.toISOString());
  const max = Math.min(s.maxLength ?? 24, 24);
  const min = Math.min(s.minLength ?? 0, max);
  if (s.pattern) {
    try {
      return fc
        .stringMatching(new RegExp(s.pattern))
        .filter((x) => x.length >= (s.minLength ?? 0) && x.length <= (s.maxLength ?? Infinity));
    } catch {
      /* a pattern fast-check cannot generate from: plain strings */
    }
  }
  return fc.string({ minLength: min, maxLength: Math.max(min, max) });
}

function numberOf(s: Schema, integer: boolean): fc.Arbitrary<number> {
  const lo = Math.max(
    s.minimum ?? (s.exclusiveMinimum !== undefined ? s.exclusiveMinimum + (integer ? 1 : 1e-9) : -1e6),
    -1e9,
  );
  const hi = Math.min(
    s.maximum ?? (s.exclusiveMaximum !== undefined ? s.exclusiveMaximum - (integer ? 1 : 1e-9) : 1e6),
    1e9,
  );
  return integer
    ? fc.integer({ min: Math.ceil(lo), max: Math.floor(hi) })
    : fc.double({ min: lo, max: hi, noNaN: true, noDefaultInfinity: true });
}

/** A value following `schema` (depth-limited: past `depth` 8, objects stop growing optional fields). */
export function arbitraryOfJsonSchema(schema: Schema, depth = 0): fc.Arbitrary<unknown> {
  if (schema.const !== undefined) return fc.constant(schema.const);
  if (schema.enum) return fc.constantFrom(...schema.enum);
  const alternatives = schema.anyOf ?? schema.oneOf;
  if (alternatives) return fc.oneof(...alternatives.map((a) => arbitraryOfJsonSchema(a, depth)));
  if (schema.allOf?.length) return arbitraryOfJsonSchema(schema.allOf[0]!, depth);
  const type = Array.isArray(schema.type) ? schema.type[0] : schema.type;
  switch (type) {
    case 'string':
      return stringOf(schema);
    case 'integer':
      return numberOf(schema, true);
    case 'number':
      return numberOf(schema, false);
    case 'boolean':
      return fc.boolean();
    case 'null':
      return fc.constant(null);
    case 'array': {
      const items = schema.items ? arbitraryOfJsonSchema(schema.items, depth + 1) : anyJson();
      const minLength = schema.minItems ?? 0;
      return fc.array(items, { minLength, maxLength: Math.max(minLength, Math.min(schema.maxItems ?? 2, 2)) });
    }
    case 'object': {
      const props = schema.properties ?? {};
      const required = new Set(schema.required ?? []);
      const keys = Object.keys(props).filter((k) => required.has(k) || depth < 8);
      if (keys.length) {
        return fc.record(Object.fromEntries(keys.map((k) => [k, arbitraryOfJsonSchema(props[k]!, depth + 1)])), {
          requiredKeys: keys.filter((k) => required.has(k)),
        });
      }
      if (
        schema.additionalProperties &&
        typeof schema.additionalProperties === 'object' &&
        Object.keys(schema.additionalProperties).length
      ) {
        const key = schema.propertyNames ? stringOf(schema.propertyNames) : fc.string({ maxLength: 12 });
        return fc.dictionary(key, arbitraryOfJsonSchema(schema.additionalProperties, depth + 1), { maxKeys: 3 });
      }
      return fc.dictionary(fc.string({ maxLength: 8 }), anyJson(), { maxKeys: 2 });
    }
    default:
      return anyJson();
  }
}

/** Every path to a node of a JSON value, the root first. */
function nodePaths(
  value: unknown,
  at: Array<string | number> = [],
  out: Array<Array<string | number>> = [],
): Array<Array<string | number>> {
  out.push(at);
  if (value && typeof value === 'object') {
    for (const [k, v] of Array.isArray(value) ? value.entries() : Object.entries(value)) nodePaths(v, [...at, k], out);
  }
  return out;
}

/** `value` with one hostile change at one of its nodes. */
function mutate(value: unknown, pick: number, op: 'replace' | 'drop' | 'add', junk: unknown, key: string): unknown {
  const copy = structuredClone<unknown>(value);
  const paths = nodePaths(copy);
  const path = paths[pick % paths.length]!;
  if (path.length === 0) return op === 'replace' ? junk : copy;
  let parent = copy as Record<string | number, unknown>;
  for (const p of path.slice(0, -1)) parent = parent[p] as Record<string | number, unknown>;
  const last = path[path.length - 1]!;
  if (op === 'replace') parent[last] = junk;
  else if (op === 'drop') {
    if (Array.isArray(parent)) parent.splice(Number(last), 1);
    else delete parent[last];
  } else if (parent[last] && typeof parent[last] === 'object' && !Array.isArray(parent[last]))
    (parent[last] as Record<string, unknown>)[key] = junk;
  else parent[last] = { [key]: junk };
  return copy;
}

/** Values of `values`, each with one hostile change somewhere in it. */
export function mutatedOnce(values: fc.Arbitrary<unknown>): fc.Arbitrary<unknown> {
  return fc
    .tuple(
      values,
      fc.nat(),
      fc.constantFrom<'replace' | 'drop' | 'add'>('replace', 'drop', 'add'),
      anyJson(),
      fc.string({ minLength: 1, maxLength: 10 }),
    )
    .map(([v, pick, op, junk, key]) => mutate(v, pick, op, junk, key));
}

/** Valid-ish values of `schema` (mostly), the same mutated once, and junk. */
export function hostileValuesOf(schema: z.ZodType): fc.Arbitrary<unknown> {
  const valid = arbitraryOfJsonSchema(z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Schema);
  return fc.oneof(
    { weight: 4, arbitrary: valid },
    { weight: 3, arbitrary: mutatedOnce(valid) },
    { weight: 1, arbitrary: anyJson() },
  );
}
