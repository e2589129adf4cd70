// Requests for every route of the engine's API, generated from its route table
// (packages/engine/src/http/routes.ts): path parameters from the names that exist and from junk,
// query parameters from each route's schema (and junk), bodies from each route's schema, from the
// Kubernetes kinds' schemas, from valid objects mutated once, and junk: what the hostile-client
// suite sends. Objects are made harmless before they are sent (Sandboxes suspended, pools empty,
// claims on a template that does not exist): the fuzzer exercises the API, not gVisor.
import fc from 'fast-check';
import YAML from 'yaml';
import { KINDS, KIND_NAMES, VERSIONS } from '@asb/api';
import { API_ROUTES, type RouteName, type RouteSpec } from '../../../packages/engine/src/http/routes.ts';
import { hostileValuesOf, mutatedOnce } from '../../../packages/http-guard/test/support/schema-arbitrary.ts';

export interface FuzzRequest {
  route: RouteName;
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string;
}

export const MISSING_TEMPLATE = 'fuzz-no-such-template';
const TEMPLATES = ['python-runtime-template', 'go-runtime-template'];

const junkSegment = fc.oneof(
  fc.string({ maxLength: 20 }).map(encodeURIComponent),
  fc.constantFrom('%zz', '..', '%2e%2e', '%00', 'a%2Fb', '%E0%A4%A', 'x'.repeat(300), 'UPPER_case', '-', '%20'),
);
const segment = (valid: string[]) =>
  valid.length
    ? fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...valid) }, { weight: 1, arbitrary: junkSegment })
    : junkSegment;

/** Path parameter → the values worth trying; `sandbox` is the name of the one running sandbox. */
function paramValues(route: RouteName, sandbox: string): Record<string, string[]> {
  const plurals = KIND_NAMES.flatMap((k) => [KINDS[k].plural, ...KINDS[k].shortNames, k.toLowerCase()]);
  // The running sandbox is offered (rarely) to the routes that act on one, never to its deletion.
  const sandboxNames =
    route === 'deleteSandbox'
      ? ['no-such-sandbox']
      : ['no-such-sandbox', 'no-such-sandbox', 'no-such-sandbox', sandbox];
  return {
    ns: ['default', 'default', 'other-ns'],
    name: route.endsWith('Object') ? [...TEMPLATES, 'fuzz-a', 'fuzz-b', 'no-such-object'] : sandboxNames,
    id: ['snap-00000000', 'no-such-snapshot'],
    kind: [...KIND_NAMES, 'Pod'],
    group: [...new Set(KIND_NAMES.map((k) => KINDS[k].group)), 'apps'],
    version: [...VERSIONS, 'v1'],
    plural: [...plurals, 'pods'],
  };
}

type Target = { kind: keyof typeof KINDS; version: (typeof VERSIONS)[number] };

/** The path, and for object routes the kind and version it names (when it names one as served). */
function pathOf(route: RouteName, sandbox: string): fc.Arbitrary<{ path: string; target?: Target }> {
  const spec: RouteSpec = API_ROUTES[route];
  const names = [...spec.path.matchAll(/:(\w+)/g)].map((m) => m[1]!);
  const values = paramValues(route, sandbox);
  const anyParams = fc.record(Object.fromEntries(names.map((n) => [n, segment(values[n] ?? [])]))) as fc.Arbitrary<
    Record<string, string>
  >;
  const fill = (params: Record<string, string>) => spec.path.replace(/:(\w+)/g, (_, n: string) => params[n]!);
  if (!names.includes('plural')) return anyParams.map((params) => ({ path: fill(params) }));
  // Most object paths name a kind as it is served (group, version and plural that go together),
  // so that requests get past routing to the body and the store.
  const served = fc
    .tuple(fc.constantFrom(...KIND_NAMES), fc.constantFrom(...VERSIONS), anyParams)
    .map(([kind, version, params]) => ({
      path: fill({ ...params, group: KINDS[kind].group, version, plural: KINDS[kind].plural }),
      target: { kind, version },
    }));
  return fc.oneof(
    { weight: 3, arbitrary: served },
    { weight: 1, arbitrary: anyParams.map((params) => ({ path: fill(params) })) },
  );
}

function queryOf(route: RouteName): fc.Arbitrary<string> {
  const spec: RouteSpec = API_ROUTES[route];
  const junk = fc.constantFrom(
    '',
    '?',
    '?%zz',
    '?a=%',
    '?=x',
    '?watch=true&watch=false',
    '?namespace=',
    '?labelSelector=a!=b',
    '?waitReadyMs=-1',
    '?waitReadyMs=1e999',
    '?propagationPolicy=Nope',
  );
  if (!spec.query) return fc.oneof({ weight: 3, arbitrary: fc.constant('') }, { weight: 1, arbitrary: junk });
  const fromSchema = hostileValuesOf(spec.query).map((q) => {
    if (!q || typeof q !== 'object' || Array.isArray(q)) return `?q=${encodeURIComponent(String(q))}`;
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(q))
      if (v !== undefined) params.set(k, typeof v === 'string' ? v : JSON.stringify(v));
    return params.size ? `?${params}` : '';
  });
  return fc.oneof({ weight: 4, arbitrary: fromSchema }, { weight: 1, arbitrary: junk });
}

/** A valid object of each kind and version: the seeds that mutations start from. */
function seed(kind: keyof typeof KINDS, version: string, name: string): Record<string, unknown> {
  const apiVersion = `${KINDS[kind].group}/${version}`;
  const pod = { spec: { containers: [{ name: 'main', image: 'python:3.12' }] } };
  const metadata = { name, namespace: 'default', labels: { 'app.kubernetes.io/name': 'fuzz' } };
  switch (kind) {
    case 'Sandbox':
      return { apiVersion, kind, metadata, spec: { podTemplate: pod } };
    case 'SandboxTemplate':
      return { apiVersion, kind, metadata, spec: { podTemplate: pod } };
    case 'SandboxClaim':
      return { apiVersion, kind, metadata, spec: { sandboxTemplateRef: { name: MISSING_TEMPLATE } } };
    case 'SandboxWarmPool':
      return { apiVersion, kind, metadata, spec: { replicas: 0, sandboxTemplateRef: { name: MISSING_TEMPLATE } } };
  }
}

/** Whatever the fuzzer made, nothing it creates may start a sandbox. */
export function harmless(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(harmless);
  if (!value || typeof value !== 'object') return value;
  const o = value as { kind?: unknown; apiVersion?: unknown; spec?: Record<string, unknown> };
  const spec = o.spec && typeof o.spec === 'object' && !Array.isArray(o.spec) ? o.spec : undefined;
  if (!spec) return value;
  if (o.kind === 'Sandbox') {
    if (String(o.apiVersion).endsWith('v1alpha1')) spec.replicas = 0;
    else spec.operatingMode = 'Suspended';
  }
  if (o.kind === 'SandboxWarmPool') spec.replicas = 0;
  if (o.kind === 'SandboxClaim') {
    for (const ref of ['sandboxTemplateRef', 'warmPoolRef']) {
      const r = spec[ref];
      if (r && typeof r === 'object' && !Array.isArray(r)) (r as Record<string, unknown>).name = MISSING_TEMPLATE;
    }
  }
  return value;
}

const kindVersion = fc.tuple(fc.constantFrom(...KIND_NAMES), fc.constantFrom(...VERSIONS));
const objectName = fc.oneof(
  fc.constantFrom('fuzz-a', 'fuzz-b', ...TEMPLATES),
  fc.stringMatching(/^[a-z][a-z0-9-]{0,20}[a-z0-9]$/),
);

/** An object of one kind and version: a seed, a seed mutated once, or one from the schema. */
function objectOf({ kind, version }: Target): fc.Arbitrary<unknown> {
  const seeds = objectName.map((n) => seed(kind, version, n));
  return fc
    .oneof(
      { weight: 2, arbitrary: seeds },
      { weight: 2, arbitrary: mutatedOnce(seeds) },
      { weight: 2, arbitrary: hostileValuesOf(KINDS[kind].served[version]) },
    )
    .map(harmless);
}

/** An object of any kind and version. */
export const objectValue: fc.Arbitrary<unknown> = kindVersion.chain(([kind, version]) => objectOf({ kind, version }));

const junkText = fc.oneof(
  fc.string({ maxLength: 200 }),
  fc.constantFrom(
    '',
    '{',
    '{"a":',
    'null',
    '[]',
    '"x"',
    '1e999',
    '\u0000',
    '{"__proto__":{"x":1}}',
    '['.repeat(5000) + ']'.repeat(5000),
    '{"spec":'.repeat(30_000) + '{}' + '}'.repeat(30_000),
    'a: [',
    '&a [*a, *a]',
    '- - - x',
    '\t- tabs',
    '--- !!js/function "x"',
    'a: &x 1\nb: *y',
  ),
);

function bodyOf(route: RouteName, target?: Target): fc.Arbitrary<{ body?: string; contentType?: string }> {
  const spec: RouteSpec = API_ROUTES[route];
  // Mostly of the kind the path names, so that it gets past the kind check to validation.
  const object = target
    ? fc.oneof({ weight: 3, arbitrary: objectOf(target) }, { weight: 1, arbitrary: objectValue })
    : objectValue;
  const json = (v: fc.Arbitrary<unknown>) =>
    v.map((x) => ({ body: JSON.stringify(x) ?? 'null', contentType: 'application/json' }));
  const junk = fc
    .tuple(junkText, fc.constantFrom(undefined, 'application/json', 'application/yaml', 'text/plain'))
    .map(([body, contentType]) => ({ body, contentType }));
  switch (spec.body?.kind) {
    case undefined:
      return fc.oneof({ weight: 4, arbitrary: fc.constant({}) }, { weight: 1, arbitrary: junk });
    case 'json':
      return fc.oneof(
        { weight: 4, arbitrary: json(hostileValuesOf(spec.body.schema)) },
        { weight: 1, arbitrary: junk },
      );
    case 'object':
      return fc.oneof({ weight: 4, arbitrary: json(object) }, { weight: 1, arbitrary: junk });
    case 'merge-patch':
      return fc.oneof(
        {
          weight: 4,
          arbitrary: object.map((v) => ({ body: JSON.stringify(v), contentType: 'application/merge-patch+json' })),
        },
        { weight: 1, arbitrary: junk },
      );
    case 'manifests':
      return fc.oneof(
        {
          weight: 2,
          arbitrary: fc.array(objectValue, { minLength: 1, maxLength: 3 }).map((docs) => ({
            body: docs.map((d) => YAML.stringify(d)).join('---\n'),
            contentType: 'application/yaml',
          })),
        },
        { weight: 2, arbitrary: json(objectValue) },
        { weight: 1, arbitrary: junk },
      );
  }
}

/** One request to one of the routes (each route as likely as any other). */
export function requestArbitrary(sandbox: string): fc.Arbitrary<FuzzRequest> {
  return fc.constantFrom(...(Object.keys(API_ROUTES) as RouteName[])).chain((route) => {
    const spec: RouteSpec = API_ROUTES[route];
    const method = fc.oneof(
      { weight: 8, arbitrary: fc.constant(spec.method) },
      { weight: 1, arbitrary: fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS') },
    );
    return pathOf(route, sandbox).chain((p) =>
      fc.tuple(queryOf(route), bodyOf(route, p.target), method).map(([query, b, m]): FuzzRequest => ({
        route,
        method: m,
        path: p.path + query,
        headers: b.contentType ? { 'content-type': b.contentType } : {},
        body: m === 'GET' || m === 'HEAD' ? undefined : b.body,
      })),
    );
  });
}
