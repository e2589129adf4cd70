// The engine's own API (everything without X-Sandbox-ID): sandboxes and templates. JSON in,
// JSON out, errors as Kubernetes-style Status bodies with a stable reason.
import { Hono } from 'hono';
import { z } from 'zod';
import type { SandboxManager, SandboxRecord, TemplateRecord } from '../sandboxes.ts';
import { EngineError, statusBody, toEngineError } from '../errors.ts';
import { applyObjects, parseApplyBody } from '../apply.ts';

const CreateSandboxBody = z.object({
  template: z.string().min(1).max(253),
  namespace: z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/).max(63).default('default'),
  name: z.string().max(63).optional(),
}).strict();

export function sandboxView(s: SandboxRecord) {
  return {
    id: s.name, name: s.name, namespace: s.namespace, uid: s.uid, template: s.template, phase: s.phase,
    ready: s.phase === 'Running', message: s.message, image: s.image, containerId: s.containerId,
    createdAt: s.createdAt.toISOString(), readyAt: s.readyAt?.toISOString(),
    startupMs: s.readyAt ? s.readyAt.getTime() - s.createdAt.getTime() : undefined,
    limits: { ...s.limits, diskBytes: s.diskQuotaBytes },
  };
}

export function templateView(t: TemplateRecord) {
  return { name: t.name, namespace: t.namespace, image: t.podTemplate.spec.containers[0]?.image, createdAt: t.createdAt.toISOString() };
}

export interface EngineInfo { version: string; driver: string; isolation: string; runtime?: string }

export function apiApp(sandboxes: SandboxManager, info: EngineInfo): Hono {
  const app = new Hono();
  app.onError((err, c) => {
    const e = toEngineError(err);
    return c.json(statusBody(e.reason, e.message, e.causes), e.status as 400);
  });
  app.notFound((c) => c.json(statusBody('NotFound', `no route ${c.req.method} ${c.req.path}`), 404));

  app.get('/v1/info', (c) => c.json(info));

  app.post('/v1/sandboxes', async (c) => {
    let raw: unknown;
    try { raw = await c.req.json(); } catch { throw new EngineError('BadRequest', 'request body is not valid JSON'); }
    const parsed = CreateSandboxBody.safeParse(raw);
    if (!parsed.success) {
      const causes = parsed.error.issues.map((i) => ({ field: i.path.join('.') || '(body)', message: i.message }));
      throw new EngineError('Invalid', causes.map((x) => `${x.field}: ${x.message}`).join('; '), causes);
    }
    const rec = await sandboxes.create(parsed.data);
    return c.json(sandboxView(rec), 201);
  });
  app.get('/v1/sandboxes', (c) => c.json({ items: sandboxes.list(c.req.query('namespace')).map(sandboxView) }));
  app.get('/v1/sandboxes/:ns/:name', (c) => c.json(sandboxView(sandboxes.get(c.req.param('ns'), c.req.param('name')))));
  app.delete('/v1/sandboxes/:ns/:name', async (c) => {
    await sandboxes.delete(c.req.param('ns'), c.req.param('name'));
    return c.body(null, 204);
  });

  app.post('/v1/apply', async (c) => {
    const text = await c.req.text();
    if (text.length > 4 * 1024 * 1024) throw new EngineError('PayloadTooLarge', 'a manifest is at most 4 MiB');
    const objects = parseApplyBody(text, c.req.header('content-type'));
    return c.json({ items: await applyObjects(sandboxes, objects) });
  });
  app.get('/v1/templates', (c) => c.json({ items: sandboxes.listTemplates(c.req.query('namespace')).map(templateView) }));
  app.delete('/v1/templates/:ns/:name', (c) => { sandboxes.deleteTemplate(c.req.param('ns'), c.req.param('name')); return c.body(null, 204); });
  app.get('/v1/templates/:ns/:name', (c) => c.json(templateView(sandboxes.getTemplate(c.req.param('ns'), c.req.param('name')))));
  return app;
}
