// The engine's own API (everything without X-Sandbox-ID). Two layers:
// - /apis/{group}/{version}/...: the four kinds as the Kubernetes API serves them (get, list with
//   labelSelector, watch, create, replace, merge-patch, delete), in both served versions, so
//   `asb get/describe/delete/scale` speak one dialect to both substrates.
// - /v1/...: the SDK's conveniences (create a sandbox from a template and wait, list, kill),
//   apply of YAML, templates, events and engine info.
// Errors are Kubernetes-style Status bodies with a stable reason. Which routes exist, and what their
// bodies and query parameters may be, is routes.ts; bodies arrive read and capped (server.ts).
import { PREVIEW_PARAM, RUNTIME_PORT, exposedPorts, isPort, previewHost, previewToken } from '../exposed-ports.ts';
import { Hono, type Context } from 'hono';
import { stream } from 'hono/streaming';
import { z } from 'zod';
import {
  DEFAULT_TEMPLATE,
  WARM_POOL_NONE,
  KINDS,
  KIND_NAMES,
  VERSIONS,
  fromHub,
  toHub,
  validateObject,
  formatIssues,
  claimSource,
  isKind,
  type Kind,
  type Version,
  type Sandbox,
} from '@asb/api';
import type { AnyHub, WatchEvent } from '@asb/lifecycle';
import { EngineError, statusBody, toEngineError } from '../errors.ts';
import { applyObjects, parseApplyBody } from '../apply.ts';
import type { SqliteStore } from '../store/sqlite-store.ts';
import type { SandboxService } from '../sandbox-service.ts';
import {
  API_ROUTES,
  type CreateSandboxBody,
  type ResumeBody,
  type RouteName,
  type RouteSpec,
  type SuspendBody,
} from './routes.ts';
import { parseJsonBody } from './json.ts';
import { templateAnnotationIssues } from '../network/policy.ts';

export interface EngineInfo {
  version: string;
  driver: string;
  isolation: string;
  runtime?: string;
}

function kindOfPath(group: string, version: string, plural: string): { kind: Kind; version: Version } {
  const kind = KIND_NAMES.find(
    (k) =>
      KINDS[k].group === group &&
      (KINDS[k].plural === plural ||
        (KINDS[k].shortNames as readonly string[]).includes(plural) ||
        KINDS[k].kind.toLowerCase() === plural),
  );
  if (!kind)
    throw new EngineError(
      'NotFound',
      `the server could not find the requested resource: ${group}/${version} ${plural} (served: ${KIND_NAMES.map((k) => `${KINDS[k].group} ${KINDS[k].plural}`).join(', ')})`,
    );
  if (!(VERSIONS as readonly string[]).includes(version))
    throw new EngineError('NotFound', `${group} serves ${VERSIONS.join(' and ')}, not ${version}`);
  return { kind, version: version as Version };
}

/** `a=b,c=d` → labels that must all match. */
function parseSelector(sel: string | undefined): Record<string, string> | undefined {
  if (!sel) return undefined;
  const out: Record<string, string> = {};
  for (const part of sel.split(',')) {
    const m = /^\s*([^=!\s]+)\s*==?\s*([^,\s]*)\s*$/.exec(part);
    if (!m) throw new EngineError('BadRequest', `labelSelector "${sel}": only key=value terms are supported`);
    out[m[1]!] = m[2]!;
  }
  return out;
}

/** The request's body as text. The server has read it already (capped) and left it on node's
 *  request: taken from there, since Hono's c.req.text() builds a web Request around it and reads
 *  it back (~0.5 ms of CPU a call). */
async function bodyText(c: Context): Promise<string> {
  const raw = (c.env as { incoming?: { rawBody?: unknown } } | undefined)?.incoming?.rawBody;
  return Buffer.isBuffer(raw) ? utf8.decode(raw) : c.req.text();
}
/** As Request.text() decodes: a byte-order mark dropped, bad bytes replaced. */
const utf8 = new TextDecoder();

/** The body as JSON; undefined when empty. */
async function readJson(c: Context): Promise<unknown> {
  const text = await bodyText(c);
  return text.trim() ? parseJsonBody(text) : undefined;
}

function invalid(issues: z.core.$ZodIssue[]): EngineError {
  const causes = issues.map((i) => ({ field: i.path.join('.') || '(body)', message: i.message }));
  return new EngineError('Invalid', causes.map((x) => `${x.field}: ${x.message}`).join('; '), causes);
}

/** A `json` body of its route, validated by the route's schema. */
async function jsonBody<R extends RouteName>(c: Context, route: R): Promise<unknown> {
  const spec = (API_ROUTES[route] as RouteSpec).body;
  if (spec?.kind !== 'json') throw new Error(`${route} takes no JSON body`);
  const raw = await readJson(c);
  if (raw === undefined && !spec.optional)
    throw new EngineError('BadRequest', 'request body is empty: send a JSON object');
  const parsed = spec.schema.safeParse(raw ?? {});
  if (!parsed.success) throw invalid(parsed.error.issues);
  return parsed.data;
}

/** The query parameters a route reads, validated (unknown ones are ignored). */
function query<R extends RouteName>(c: Context, route: R): Record<string, unknown> {
  const schema = (API_ROUTES[route] as RouteSpec).query;
  if (!schema) return {};
  const parsed = schema.safeParse(c.req.query());
  if (!parsed.success) {
    const causes = parsed.error.issues.map((i) => ({ field: `query ${i.path.join('.')}`, message: i.message }));
    throw new EngineError(
      'BadRequest',
      `bad query parameter: ${causes.map((x) => `${x.field}: ${x.message}`).join('; ')}`,
      causes,
    );
  }
  return parsed.data;
}

/** RFC 7386 JSON merge patch. */
function mergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return patch;
  const out: Record<string, unknown> =
    target && typeof target === 'object' && !Array.isArray(target) ? { ...(target as Record<string, unknown>) } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

type Handler = (c: Context) => Response | Promise<Response>;

export function apiApp(store: SqliteStore, sandboxes: SandboxService, info: EngineInfo, previewSecret: string): Hono {
  const app = new Hono();
  app.onError((err, c) => {
    const e = toEngineError(err);
    return c.json(statusBody(e.reason, e.message, e.causes), e.status as 400);
  });
  app.notFound((c) => c.json(statusBody('NotFound', `no route ${c.req.method} ${c.req.path}`), 404));
  // A change is acknowledged once it is on the disk: the store commits without waiting for the
  // disk, and a request's writes (a claim makes seven) share this one sync. A failed request may
  // have written too (a claim made, then removed), so every answer but a read's waits for it.
  app.use('*', async (c, next) => {
    await next();
    if (c.req.method !== 'GET' && c.req.method !== 'HEAD') await store.flush();
  });
  const conveniences = sdkHandlers(store, sandboxes, info, previewSecret);
  const objects = objectHandlers(store);
  const handlers: Record<RouteName, Handler> = { ...conveniences, ...objects };
  for (const name of Object.keys(API_ROUTES) as RouteName[]) {
    const route: RouteSpec = API_ROUTES[name];
    app.on(route.method, route.path, handlers[name]);
  }
  return app;
}

type SdkRoute = Exclude<RouteName, ObjectRoute>;
type ObjectRoute =
  | 'listObjects'
  | 'listNamespacedObjects'
  | 'getObject'
  | 'createObject'
  | 'replaceObject'
  | 'patchObject'
  | 'deleteObject';

/** /v1: the SDK's conveniences, apply, templates, events, info. */
/** A port in a path: a TCP port, or the request is Invalid. */
function portParam(c: Context): number {
  const text = c.req.param('port') ?? '';
  const port = Number(text);
  if (!/^\d{1,5}$/.test(text) || !isPort(port))
    throw new EngineError('Invalid', `"${text}" is not a TCP port (1-65535)`, [
      { field: 'port', message: 'not a port' },
    ]);
  return port;
}

/** How a client reaches an exposed port: upstream's router headers through the engine, or a
 *  preview URL a browser opens (its token in it once; the runtime API has none). */
function exposedPort(c: Context, sb: Sandbox, port: number, secret: string) {
  const { namespace, name } = sb.metadata;
  const engine = new URL(c.req.url);
  const preview =
    port === RUNTIME_PORT
      ? {}
      : {
          url: `http://${previewHost(namespace, name!, port)}${engine.port ? `:${engine.port}` : ''}/?${PREVIEW_PARAM}=${previewToken(secret, sb, port)}`,
        };
  return {
    port,
    headers: { 'X-Sandbox-ID': name!, 'X-Sandbox-Namespace': namespace, 'X-Sandbox-Port': String(port) },
    ...preview,
  };
}

function sdkHandlers(
  store: SqliteStore,
  sandboxes: SandboxService,
  info: EngineInfo,
  previewSecret: string,
): Record<SdkRoute, Handler> {
  const ns = (c: Context) => c.req.param('ns')!;
  const name = (c: Context) => c.req.param('name')!;
  return {
    info: (c) => c.json(info),
    createSandbox: async (c) => {
      const body = (await jsonBody(c, 'createSandbox')) as z.infer<typeof CreateSandboxBody>;
      const timeoutMs = body.timeoutMs ?? 120_000;
      if (body.fromSnapshot) {
        if (body.template || body.warmpool)
          throw new EngineError(
            'Invalid',
            'fromSnapshot: a fork starts from the snapshot, not from a template or a pool; give one or the other',
            [{ field: 'fromSnapshot', message: 'not with template or warmpool' }],
          );
        const sb = await sandboxes.fork({
          snapshotId: body.fromSnapshot,
          namespace: body.namespace,
          name: body.name,
          ttlSeconds: body.ttlSeconds,
          timeoutMs,
        });
        return c.json(sandboxes.view(sb), 201);
      }
      if (body.image) {
        if (body.template || (body.warmpool && body.warmpool !== WARM_POOL_NONE))
          throw new EngineError(
            'Invalid',
            'image: a sandbox of an image is made from the image alone, not from a template or a pool; give one or the other',
            [{ field: 'image', message: 'not with template or warmpool' }],
          );
        const { image, namespace, name, ttlSeconds } = body;
        return c.json(await sandboxes.createFromImage({ image, namespace, name, ttlSeconds, timeoutMs }), 201);
      }
      return c.json(await sandboxes.create({ ...body, template: body.template ?? DEFAULT_TEMPLATE, timeoutMs }), 201);
    },
    suspendSandbox: async (c) => {
      const { snapshot } = (await jsonBody(c, 'suspendSandbox')) as z.infer<typeof SuspendBody>;
      const res = await sandboxes.suspend(ns(c), name(c), { snapshot });
      return c.json({ suspended: true, snapshot: res.snapshot, snapshotId: res.snapshot?.id });
    },
    resumeSandbox: async (c) => {
      const body = (await jsonBody(c, 'resumeSandbox')) as z.infer<typeof ResumeBody>;
      const res = await sandboxes.resume(ns(c), name(c), body);
      return c.json({
        resumed: true,
        restoredFromSnapshot: res.restoredFromSnapshot,
        snapshotId: res.snapshotId,
        sandbox: sandboxes.view(res.sandbox),
      });
    },
    resetSandbox: async (c) => c.json(sandboxes.view(await sandboxes.reset(ns(c), name(c)))),
    snapshotSandbox: async (c) => c.json(await sandboxes.snapshot(ns(c), name(c)), 201),
    listSandboxSnapshots: (c) => c.json({ items: sandboxes.listSnapshots({ namespace: ns(c), sandbox: name(c) }) }),
    listSandboxPorts: (c) => {
      const sb = sandboxes.get(ns(c), name(c));
      return c.json({ items: exposedPorts(sb).map((p) => exposedPort(c, sb, p, previewSecret)) });
    },
    exposeSandboxPort: async (c) => {
      const sb = await sandboxes.exposePort(ns(c), name(c), portParam(c));
      return c.json(exposedPort(c, sb, portParam(c), previewSecret));
    },
    unexposeSandboxPort: async (c) => {
      await sandboxes.unexposePort(ns(c), name(c), portParam(c));
      return c.body(null, 204);
    },
    listSnapshots: (c) => {
      const q = query(c, 'listSnapshots') as { namespace?: string; sandbox?: string };
      return c.json({ items: sandboxes.listSnapshots(q) });
    },
    getSnapshot: (c) => c.json(sandboxes.getSnapshot(c.req.param('id')!)),
    deleteSnapshot: (c) => {
      sandboxes.deleteSnapshot(c.req.param('id')!);
      return c.body(null, 204);
    },
    listSandboxes: (c) => {
      const { namespace } = query(c, 'listSandboxes') as { namespace?: string };
      return c.json({ items: sandboxes.list(namespace).map((s) => sandboxes.view(s)) });
    },
    getSandbox: async (c) => {
      const { waitReadyMs = 0 } = query(c, 'getSandbox') as { waitReadyMs?: number };
      const sb =
        waitReadyMs > 0
          ? await sandboxes.waitReady(ns(c), name(c), Math.min(waitReadyMs, 600_000))
          : sandboxes.get(ns(c), name(c));
      return c.json(sandboxes.view(sb));
    },
    deleteSandbox: async (c) => {
      await sandboxes.delete(ns(c), name(c));
      return c.body(null, 204);
    },
    apply: async (c) => {
      const { namespace } = query(c, 'apply') as { namespace?: string };
      const objects = parseApplyBody(await bodyText(c), c.req.header('content-type'));
      if (namespace)
        for (const o of objects)
          if (!o.metadata.namespace || o.metadata.namespace === 'default') o.metadata.namespace = namespace;
      return c.json({ items: await applyObjects(store, objects) });
    },
    listTemplates: (c) => {
      const { namespace } = query(c, 'listTemplates') as { namespace?: string };
      return c.json({
        items: store.listSync('SandboxTemplate', { namespace }).map((t) => ({
          name: t.metadata.name,
          namespace: t.metadata.namespace,
          image: t.spec.podTemplate.spec.containers[0]?.image,
          createdAt: t.metadata.creationTimestamp,
        })),
      });
    },
    listEvents: (c) => {
      const kind = c.req.param('kind')!;
      if (!isKind(kind)) throw new EngineError('BadRequest', `kind "${kind}": give one of ${KIND_NAMES.join(', ')}`);
      const obj = store.getSync(kind, ns(c), name(c));
      if (!obj) throw new EngineError('NotFound', `${kind} "${name(c)}" not found in namespace "${ns(c)}"`);
      return c.json({ items: store.eventsOf(obj.metadata.uid!) });
    },
  };
}

/** /apis/{group}/{version}/...: the objects, Kubernetes-style. */
function objectHandlers(store: SqliteStore): Record<ObjectRoute, Handler> {
  const served = (obj: AnyHub, version: Version) =>
    fromHub(obj, version, {
      templateOfPool: (ns, pool) => store.getSync('SandboxWarmPool', ns, pool)?.spec.sandboxTemplateRef.name,
    });
  const list = (c: Context, route: 'listObjects' | 'listNamespacedObjects', namespace?: string) => {
    const { kind, version } = kindOfPath(c.req.param('group')!, c.req.param('version')!, c.req.param('plural')!);
    const q = query(c, route) as { labelSelector?: string; watch?: string };
    const labels = parseSelector(q.labelSelector);
    if (q.watch === 'true' || q.watch === '1') return watch(c, kind, version, namespace, labels);
    const items = store.listSync(kind, { namespace, labels }).map((o) => served(o, version));
    return c.json({ apiVersion: `${KINDS[kind].group}/${version}`, kind: `${kind}List`, items });
  };
  // A watch: the current objects as ADDED, then every change, one JSON event per line.
  const watch = (
    c: Context,
    kind: Kind,
    version: Version,
    namespace: string | undefined,
    labels: Record<string, string> | undefined,
  ) => {
    c.header('content-type', 'application/json; stream=watch');
    c.header('cache-control', 'no-store');
    return stream(c, async (s) => {
      const matches = (o: AnyHub) =>
        o.kind === kind &&
        (namespace === undefined || o.metadata.namespace === namespace) &&
        (!labels || Object.entries(labels).every(([k, v]) => o.metadata.labels?.[k] === v));
      const queue: WatchEvent[] = store
        .listSync(kind, { namespace, labels })
        .map((object) => ({ type: 'ADDED', object }));
      let wake: (() => void) | undefined;
      const unwatch = store.watch((ev) => {
        if (matches(ev.object)) {
          queue.push(ev);
          wake?.();
        }
      });
      s.onAbort(() => {
        unwatch();
        wake?.();
      });
      while (!s.aborted) {
        while (queue.length) {
          const ev = queue.shift()!;
          await s.write(JSON.stringify({ type: ev.type, object: served(ev.object, version) }) + '\n');
        }
        await new Promise<void>((r) => {
          wake = r;
        });
        wake = undefined;
      }
      unwatch();
    });
  };
  const getOne = (c: Context) => {
    const { kind, version } = kindOfPath(c.req.param('group')!, c.req.param('version')!, c.req.param('plural')!);
    const obj = store.getSync(kind, c.req.param('ns')!, c.req.param('name')!);
    if (!obj)
      throw new EngineError(
        'NotFound',
        `${KINDS[kind].plural} "${c.req.param('name')}" not found in namespace "${c.req.param('ns')}"`,
      );
    return { kind, version, obj };
  };
  /** Validates a served object from a request against the path's kind, version and namespace. */
  const admit = (raw: unknown, kind: Kind, version: Version, namespace: string): AnyHub => {
    if (raw === undefined) throw new EngineError('BadRequest', `request body is empty: send a ${kind} object`);
    const v = validateObject(raw);
    if (!v.ok)
      throw new EngineError(
        'Invalid',
        `invalid ${kind}:\n${formatIssues(v.errors)}`,
        v.errors.map((e) => ({ field: e.path, message: e.message })),
      );
    const obj = v.object;
    const ours = templateAnnotationIssues(obj);
    if (ours.length) throw new EngineError('Invalid', `invalid ${kind}: ${ours[0]!.message}`, ours);
    if (obj.kind !== kind || obj.apiVersion !== `${KINDS[kind].group}/${version}`)
      throw new EngineError(
        'BadRequest',
        `the body is ${obj.apiVersion} ${obj.kind}, the path is ${KINDS[kind].group}/${version} ${KINDS[kind].plural}`,
      );
    if (obj.metadata.namespace !== namespace) {
      if (
        obj.metadata.namespace !== 'default' ||
        (raw as { metadata?: { namespace?: string } }).metadata?.namespace !== undefined
      ) {
        throw new EngineError(
          'BadRequest',
          `the namespace of the body (${obj.metadata.namespace}) does not match the namespace of the path (${namespace})`,
        );
      }
      obj.metadata.namespace = namespace;
    }
    const hub: AnyHub = toHub(obj);
    if (hub.kind === 'SandboxClaim') claimSource(hub); // exactly one source: checked by the schema
    return hub;
  };

  return {
    listObjects: (c) => list(c, 'listObjects'),
    listNamespacedObjects: (c) => list(c, 'listNamespacedObjects', c.req.param('ns')),
    getObject: (c) => {
      const { version, obj } = getOne(c);
      return c.json(served(obj, version));
    },
    createObject: async (c) => {
      const { kind, version } = kindOfPath(c.req.param('group')!, c.req.param('version')!, c.req.param('plural')!);
      const made = await store.create(admit(await readJson(c), kind, version, c.req.param('ns')!));
      return c.json(served(made, version), 201);
    },
    replaceObject: async (c) => {
      const { kind, version, obj } = getOne(c);
      const hub = admit(await readJson(c), kind, version, c.req.param('ns')!);
      if (hub.metadata.name !== obj.metadata.name)
        throw new EngineError(
          'BadRequest',
          `metadata.name "${hub.metadata.name}" does not match the path ("${obj.metadata.name}")`,
        );
      return c.json(served(await store.update(hub), version));
    },
    patchObject: async (c) => {
      const { kind, version, obj } = getOne(c);
      const ct = c.req.header('content-type') ?? '';
      if (!ct.includes('merge-patch') && !ct.includes('application/json'))
        throw new EngineError('BadRequest', `unsupported patch type ${ct}: send application/merge-patch+json`);
      const patch = await readJson(c);
      if (patch === null || typeof patch !== 'object' || Array.isArray(patch))
        throw new EngineError('BadRequest', 'a merge patch is a JSON object');
      const patched = mergePatch(served(obj, version), patch) as {
        status?: unknown;
        metadata: Record<string, unknown>;
      };
      delete patched.status;
      const hub = admit(patched, kind, version, c.req.param('ns')!);
      return c.json(
        served(
          await store.update({ ...hub, metadata: { ...hub.metadata, resourceVersion: obj.metadata.resourceVersion } }),
          version,
        ),
      );
    },
    deleteObject: async (c) => {
      const { propagationPolicy } = query(c, 'deleteObject') as { propagationPolicy?: string };
      const { kind } = getOne(c);
      const propagation = propagationPolicy === 'Foreground' ? 'Foreground' : 'Background';
      await store.delete(kind, c.req.param('ns')!, c.req.param('name')!, { propagation });
      return c.json({
        kind: 'Status',
        apiVersion: 'v1',
        status: 'Success',
        details: { name: c.req.param('name'), kind: KINDS[kind].plural },
      });
    },
  };
}
