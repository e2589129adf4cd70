// The engine's own API (everything without X-Sandbox-ID). Two layers:
// - /apis/{group}/{version}/...: the four kinds as the Kubernetes API serves them (get, list with
//   labelSelector, watch, create, replace, merge-patch, delete), in both served versions, so
//   `asb get/describe/delete/scale` speak one dialect to both substrates.
// - /v1/...: the SDK's conveniences (create a sandbox from a template and wait, list, kill),
//   apply of YAML, templates, events and engine info.
// Errors are Kubernetes-style Status bodies with a stable reason.
import { Hono, type Context } from 'hono';
import { stream } from 'hono/streaming';
import { z } from 'zod';
import {
  KINDS, KIND_NAMES, VERSIONS, fromHub, toHub, validateObject, formatIssues, claimSource,
  type Kind, type Version, type HubObject,
} from '@asb/api';
import type { AnyHub, KindName, WatchEvent } from '@asb/lifecycle';
import { EngineError, statusBody, toEngineError } from '../errors.ts';
import { applyObjects, parseApplyBody } from '../apply.ts';
import type { SqliteStore } from '../store/sqlite-store.ts';
import type { SandboxService } from '../sandbox-service.ts';

const NS = z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/).max(63);
const CreateSandboxBody = z.object({
  template: z.string().min(1).max(253).optional(),
  /** A fork: a new sandbox from this snapshot instead of from a template. */
  fromSnapshot: z.string().min(1).max(100).optional(),
  namespace: NS.default('default'),
  name: z.string().max(63).optional(),
  ttlSeconds: z.number().int().positive().optional(),
  warmpool: z.string().max(253).optional(),
  timeoutMs: z.number().int().positive().max(600_000).optional(),
}).strict();

export interface EngineInfo { version: string; driver: string; isolation: string; runtime?: string }

function kindOfPath(group: string, version: string, plural: string): { kind: Kind; version: Version } {
  const kind = KIND_NAMES.find((k) => KINDS[k].group === group && (KINDS[k].plural === plural || (KINDS[k].shortNames as readonly string[]).includes(plural) || KINDS[k].kind.toLowerCase() === plural));
  if (!kind) throw new EngineError('NotFound', `the server could not find the requested resource: ${group}/${version} ${plural} (served: ${KIND_NAMES.map((k) => `${KINDS[k].group} ${KINDS[k].plural}`).join(', ')})`);
  if (!(VERSIONS as readonly string[]).includes(version)) throw new EngineError('NotFound', `${group} serves ${VERSIONS.join(' and ')}, not ${version}`);
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

async function jsonBody(c: Context): Promise<unknown> {
  try { return await c.req.json(); } catch { throw new EngineError('BadRequest', 'request body is not valid JSON'); }
}

/** RFC 7386 JSON merge patch. */
function mergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return patch;
  const out: Record<string, unknown> = target && typeof target === 'object' && !Array.isArray(target) ? { ...(target as Record<string, unknown>) } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

export function apiApp(store: SqliteStore, sandboxes: SandboxService, info: EngineInfo): Hono {
  const app = new Hono();
  app.onError((err, c) => {
    const e = toEngineError(err);
    return c.json(statusBody(e.reason, e.message, e.causes), e.status as 400);
  });
  app.notFound((c) => c.json(statusBody('NotFound', `no route ${c.req.method} ${c.req.path}`), 404));

  app.get('/v1/info', (c) => c.json(info));

  // ---- the SDK's conveniences ----
  app.post('/v1/sandboxes', async (c) => {
    const parsed = CreateSandboxBody.safeParse(await jsonBody(c));
    if (!parsed.success) {
      const causes = parsed.error.issues.map((i) => ({ field: i.path.join('.') || '(body)', message: i.message }));
      throw new EngineError('Invalid', causes.map((x) => `${x.field}: ${x.message}`).join('; '), causes);
    }
    const body = parsed.data;
    const timeoutMs = body.timeoutMs ?? 120_000;
    if (body.fromSnapshot) {
      if (body.template || body.warmpool) throw new EngineError('Invalid', 'fromSnapshot: a fork starts from the snapshot, not from a template or a pool; give one or the other', [{ field: 'fromSnapshot', message: 'not with template or warmpool' }]);
      const sb = await sandboxes.fork({ snapshotId: body.fromSnapshot, namespace: body.namespace, name: body.name, ttlSeconds: body.ttlSeconds, timeoutMs });
      return c.json(sandboxes.view(sb), 201);
    }
    return c.json(await sandboxes.create({ ...body, template: body.template ?? 'python-runtime-template', timeoutMs }), 201);
  });
  const SuspendBody = z.object({ snapshot: z.boolean().default(false) }).strict();
  const ResumeBody = z.object({ discardSnapshot: z.boolean().default(false), timeoutMs: z.number().int().positive().max(600_000).default(120_000) }).strict();
  const parseBody = async <T extends z.ZodTypeAny>(c: Context, schema: T): Promise<z.infer<T>> => {
    const text = await c.req.text();
    let raw: unknown = {};
    if (text.trim()) {
      try { raw = JSON.parse(text); } catch (err) { throw new EngineError('BadRequest', `the body is not valid JSON: ${(err as Error).message}`); }
    }
    const parsed = schema.safeParse(raw);
    if (!parsed.success) {
      const causes = parsed.error.issues.map((i) => ({ field: i.path.join('.') || '(body)', message: i.message }));
      throw new EngineError('Invalid', causes.map((x) => `${x.field}: ${x.message}`).join('; '), causes);
    }
    return parsed.data;
  };
  app.post('/v1/sandboxes/:ns/:name/suspend', async (c) => {
    const { snapshot } = await parseBody(c, SuspendBody);
    const res = await sandboxes.suspend(c.req.param('ns'), c.req.param('name'), { snapshot });
    return c.json({ suspended: true, snapshot: res.snapshot, snapshotId: res.snapshot?.id });
  });
  app.post('/v1/sandboxes/:ns/:name/resume', async (c) => {
    const body = await parseBody(c, ResumeBody);
    const res = await sandboxes.resume(c.req.param('ns'), c.req.param('name'), body);
    return c.json({ resumed: true, restoredFromSnapshot: res.restoredFromSnapshot, snapshotId: res.snapshotId, sandbox: sandboxes.view(res.sandbox) });
  });
  app.post('/v1/sandboxes/:ns/:name/reset', async (c) => c.json(sandboxes.view(await sandboxes.reset(c.req.param('ns'), c.req.param('name')))));
  app.post('/v1/sandboxes/:ns/:name/snapshots', async (c) => c.json(await sandboxes.snapshot(c.req.param('ns'), c.req.param('name')), 201));
  app.get('/v1/sandboxes/:ns/:name/snapshots', (c) => c.json({ items: sandboxes.listSnapshots({ namespace: c.req.param('ns'), sandbox: c.req.param('name') }) }));
  app.get('/v1/snapshots', (c) => c.json({ items: sandboxes.listSnapshots({ namespace: c.req.query('namespace'), sandbox: c.req.query('sandbox') }) }));
  app.get('/v1/snapshots/:id', (c) => c.json(sandboxes.getSnapshot(c.req.param('id'))));
  app.delete('/v1/snapshots/:id', (c) => { sandboxes.deleteSnapshot(c.req.param('id')); return c.body(null, 204); });
  app.get('/v1/sandboxes', (c) => c.json({ items: sandboxes.list(c.req.query('namespace')).map((s) => sandboxes.view(s)) }));
  app.get('/v1/sandboxes/:ns/:name', async (c) => {
    // ?waitReadyMs=N: answer once the sandbox is ready (a Sandbox applied as YAML starts in the background).
    const wait = Number(c.req.query('waitReadyMs') ?? 0);
    const sb = wait > 0 ? await sandboxes.waitReady(c.req.param('ns'), c.req.param('name'), Math.min(wait, 600_000)) : sandboxes.get(c.req.param('ns'), c.req.param('name'));
    return c.json(sandboxes.view(sb));
  });
  app.delete('/v1/sandboxes/:ns/:name', async (c) => {
    await sandboxes.delete(c.req.param('ns'), c.req.param('name'));
    return c.body(null, 204);
  });
  app.post('/v1/apply', async (c) => {
    const text = await c.req.text();
    if (text.length > 4 * 1024 * 1024) throw new EngineError('PayloadTooLarge', 'a manifest is at most 4 MiB');
    const objects = parseApplyBody(text, c.req.header('content-type'));
    const ns = c.req.query('namespace');
    if (ns) for (const o of objects) if (!o.metadata.namespace || o.metadata.namespace === 'default') o.metadata.namespace = ns;
    return c.json({ items: await applyObjects(store, objects) });
  });
  app.get('/v1/templates', (c) => c.json({
    items: store.listSync('SandboxTemplate', { namespace: c.req.query('namespace') }).map((t) => ({
      name: t.metadata.name, namespace: t.metadata.namespace, image: t.spec.podTemplate.spec.containers[0]?.image, createdAt: t.metadata.creationTimestamp,
    })),
  }));
  app.get('/v1/events/:ns/:kind/:name', (c) => {
    const kind = c.req.param('kind') as KindName;
    const obj = store.getSync(kind, c.req.param('ns'), c.req.param('name'));
    if (!obj) throw new EngineError('NotFound', `${kind} "${c.req.param('name')}" not found in namespace "${c.req.param('ns')}"`);
    return c.json({ items: store.eventsOf(obj.metadata.uid!) });
  });

  // ---- the objects, Kubernetes-style ----
  const served = (obj: AnyHub, version: Version) => fromHub(obj as HubObject, version, {
    templateOfPool: (ns, pool) => store.getSync('SandboxWarmPool', ns, pool)?.spec.sandboxTemplateRef.name,
  });
  const list = (c: Context, namespace?: string) => {
    const { kind, version } = kindOfPath(c.req.param('group')!, c.req.param('version')!, c.req.param('plural')!);
    const labels = parseSelector(c.req.query('labelSelector'));
    if (c.req.query('watch') === 'true' || c.req.query('watch') === '1') return watch(c, kind, version, namespace, labels);
    const items = store.listSync(kind, { namespace, labels }).map((o) => served(o, version));
    return c.json({ apiVersion: `${KINDS[kind].group}/${version}`, kind: `${kind}List`, items });
  };
  // A watch: the current objects as ADDED, then every change, one JSON event per line.
  const watch = (c: Context, kind: Kind, version: Version, namespace: string | undefined, labels: Record<string, string> | undefined) => {
    c.header('content-type', 'application/json; stream=watch');
    c.header('cache-control', 'no-store');
    return stream(c, async (s) => {
      const matches = (o: AnyHub) => o.kind === kind && (namespace === undefined || o.metadata.namespace === namespace)
        && (!labels || Object.entries(labels).every(([k, v]) => o.metadata.labels?.[k] === v));
      const queue: WatchEvent[] = store.listSync(kind, { namespace, labels }).map((object) => ({ type: 'ADDED', object }));
      let wake: (() => void) | undefined;
      const unwatch = store.watch((ev) => { if (matches(ev.object)) { queue.push(ev); wake?.(); } });
      s.onAbort(() => { unwatch(); wake?.(); });
      while (!s.aborted) {
        while (queue.length) {
          const ev = queue.shift()!;
          await s.write(JSON.stringify({ type: ev.type, object: served(ev.object, version) }) + '\n');
        }
        await new Promise<void>((r) => { wake = r; });
        wake = undefined;
      }
      unwatch();
    });
  };
  const getOne = (c: Context) => {
    const { kind, version } = kindOfPath(c.req.param('group')!, c.req.param('version')!, c.req.param('plural')!);
    const obj = store.getSync(kind, c.req.param('ns')!, c.req.param('name')!);
    if (!obj) throw new EngineError('NotFound', `${KINDS[kind].plural} "${c.req.param('name')}" not found in namespace "${c.req.param('ns')}"`);
    return { kind, version, obj };
  };
  /** Validates a served object from a request against the path's kind, version and namespace. */
  const admit = (raw: unknown, kind: Kind, version: Version, namespace: string): AnyHub => {
    const v = validateObject(raw);
    if (!v.ok) throw new EngineError('Invalid', `invalid ${kind}:\n${formatIssues(v.errors)}`, v.errors.map((e) => ({ field: e.path, message: e.message })));
    const obj = v.object;
    if (obj.kind !== kind || obj.apiVersion !== `${KINDS[kind].group}/${version}`) throw new EngineError('BadRequest', `the body is ${obj.apiVersion} ${obj.kind}, the path is ${KINDS[kind].group}/${version} ${KINDS[kind].plural}`);
    if (obj.metadata.namespace !== namespace) {
      if (obj.metadata.namespace !== 'default' || (raw as { metadata?: { namespace?: string } }).metadata?.namespace !== undefined) {
        throw new EngineError('BadRequest', `the namespace of the body (${obj.metadata.namespace}) does not match the namespace of the path (${namespace})`);
      }
      obj.metadata.namespace = namespace;
    }
    const hub = toHub(obj) as AnyHub;
    if (hub.kind === 'SandboxClaim') claimSource(hub); // exactly one source: checked by the schema
    return hub;
  };

  const base = '/apis/:group/:version';
  app.get(`${base}/:plural`, (c) => list(c));
  app.get(`${base}/namespaces/:ns/:plural`, (c) => list(c, c.req.param('ns')));
  app.get(`${base}/namespaces/:ns/:plural/:name`, (c) => { const { version, obj } = getOne(c); return c.json(served(obj, version)); });
  app.post(`${base}/namespaces/:ns/:plural`, async (c) => {
    const { kind, version } = kindOfPath(c.req.param('group'), c.req.param('version'), c.req.param('plural'));
    const made = await store.create(admit(await jsonBody(c), kind, version, c.req.param('ns')));
    return c.json(served(made, version), 201);
  });
  app.put(`${base}/namespaces/:ns/:plural/:name`, async (c) => {
    const { kind, version, obj } = getOne(c);
    const hub = admit(await jsonBody(c), kind, version, c.req.param('ns'));
    if (hub.metadata.name !== obj.metadata.name) throw new EngineError('BadRequest', `metadata.name "${hub.metadata.name}" does not match the path ("${obj.metadata.name}")`);
    return c.json(served(await store.update(hub), version));
  });
  app.patch(`${base}/namespaces/:ns/:plural/:name`, async (c) => {
    const { kind, version, obj } = getOne(c);
    const ct = c.req.header('content-type') ?? '';
    if (!ct.includes('merge-patch') && !ct.includes('application/json')) throw new EngineError('BadRequest', `unsupported patch type ${ct}: send application/merge-patch+json`);
    const patched = mergePatch(served(obj, version), await jsonBody(c)) as { status?: unknown; metadata: Record<string, unknown> };
    delete patched.status;
    const hub = admit(patched, kind, version, c.req.param('ns'));
    return c.json(served(await store.update({ ...hub, metadata: { ...hub.metadata, resourceVersion: obj.metadata.resourceVersion } } as AnyHub), version));
  });
  app.delete(`${base}/namespaces/:ns/:plural/:name`, async (c) => {
    const { kind } = getOne(c);
    const propagation = c.req.query('propagationPolicy') === 'Foreground' ? 'Foreground' : 'Background';
    await store.delete(kind, c.req.param('ns'), c.req.param('name'), { propagation });
    return c.json({ kind: 'Status', apiVersion: 'v1', status: 'Success', details: { name: c.req.param('name'), kind: KINDS[kind].plural } });
  });
  return app;
}
