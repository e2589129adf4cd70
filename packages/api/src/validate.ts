// Validation of one object: dispatch on kind and apiVersion, apply defaults, and report every
// problem with its field path. An object in the wrong API group (seed 003 writes SandboxClaim as
// agents.x-k8s.io/v1alpha1) is still checked against its kind's schema, so one pass reports the
// group and the field mistakes together.
import { VERSIONS, type Version } from './meta.ts';
import { KINDS, KIND_NAMES, describeServed, isKind, type AnyObject, type HubObject, type Kind } from './kinds.ts';
import { closestField, errorMap, issuesToErrors, type FieldError } from './issues.ts';

export type Validated<T = AnyObject> = { ok: true; object: T } | { ok: false; errors: FieldError[] };

const isMapping = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v);
const fail = (path: string, message: string): { ok: false; errors: FieldError[] } => ({
  ok: false,
  errors: [{ path, message }],
});

function kindError(kind: unknown): FieldError {
  const served = KIND_NAMES.map(describeServed).join('; ');
  if (kind === undefined) return { path: 'kind', message: `Required: one of ${served}` };
  const guess = typeof kind === 'string' ? closestField(kind, KIND_NAMES) : undefined;
  return {
    path: 'kind',
    message: `unknown kind ${JSON.stringify(kind)}${guess ? `; did you mean ${guess}?` : ''} (this API serves ${served})`,
  };
}

/** The served version named by apiVersion, with an error when the group or version is wrong. */
function resolveVersion(kind: Kind, apiVersion: unknown): { version?: Version; error?: FieldError } {
  const { group } = KINDS[kind];
  const want = VERSIONS.map((v) => `${group}/${v}`).join(' or ');
  if (typeof apiVersion !== 'string') {
    return { error: { path: 'apiVersion', message: `Required: ${kind} is served as ${want}` } };
  }
  const slash = apiVersion.lastIndexOf('/');
  const g = slash >= 0 ? apiVersion.slice(0, slash) : '';
  const v = apiVersion.slice(slash + 1);
  const version = (VERSIONS as readonly string[]).includes(v) ? (v as Version) : undefined;
  if (g === group && version) return { version };
  if (version) {
    return {
      version,
      error: {
        path: 'apiVersion',
        message: `${kind} belongs to the API group ${group}: use apiVersion ${group}/${version} (got ${JSON.stringify(apiVersion)})`,
      },
    };
  }
  return { error: { path: 'apiVersion', message: `${kind} is served as ${want} (got ${JSON.stringify(apiVersion)})` } };
}

/**
 * Validates one served object (any kind, either version) and applies its defaults. Unknown kinds
 * and versions are refused with the list of what is served.
 */
export function validateObject(raw: unknown): Validated {
  if (!isMapping(raw)) return fail('', 'must be a mapping with apiVersion, kind, metadata and spec');
  const { kind, apiVersion } = raw;
  if (!isKind(kind)) return { ok: false, errors: [kindError(kind)] };
  const { version, error } = resolveVersion(kind, apiVersion);
  if (!version) return { ok: false, errors: [error!] };
  const schema = KINDS[kind].served[version];
  const input = error ? { ...raw, apiVersion: `${KINDS[kind].group}/${version}` } : raw;
  const parsed = schema.safeParse(input, { error: errorMap, reportInput: true });
  const errors = parsed.success
    ? []
    : issuesToErrors(parsed.error.issues, { schema, hints: KINDS[kind].hints[version] });
  if (error) errors.unshift(error);
  return errors.length ? { ok: false, errors } : { ok: true, object: parsed.data as AnyObject };
}

/** Validates a hub object (as stored), applying hub defaults. */
export function validateHub(raw: unknown): Validated<HubObject> {
  if (!isMapping(raw)) return fail('', 'must be a mapping with apiVersion, kind, metadata and spec');
  const { kind } = raw;
  if (!isKind(kind)) return { ok: false, errors: [kindError(kind)] };
  const schema = KINDS[kind].hub;
  const parsed = schema.safeParse(raw, { error: errorMap, reportInput: true });
  return parsed.success
    ? { ok: true, object: parsed.data }
    : { ok: false, errors: issuesToErrors(parsed.error.issues, { schema, hints: KINDS[kind].hints.v1beta1 }) };
}
