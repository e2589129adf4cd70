// The agent's HTTP routes: upstream's runtime API and our /v1 extensions. Handlers only parse and
// shape; ProcessManager and FileService do the work. The same app serves HTTP/2 over the engine's
// socketpair and HTTP/1.1 on a TCP port.
import { Hono, type Context } from 'hono';
import { Readable } from 'node:stream';
import type { z } from 'zod';
import { AgentError, toAgentError } from './errors.ts';
import { ExecRequest, ExecuteRequest, SignalRequest, type ExecEvent } from './schemas.ts';
import type { ProcessManager } from './processes.ts';
import type { FileService } from './files.ts';

const MAX_JSON_BYTES = 20 * 1024 * 1024;

async function jsonBody<S extends z.ZodType>(c: Context, schema: S): Promise<z.infer<S>> {
  const text = await c.req.text();
  if (text.length > MAX_JSON_BYTES) throw new AgentError('PayloadTooLarge', `JSON body over ${MAX_JSON_BYTES} bytes`);
  let raw: unknown;
  try { raw = JSON.parse(text); } catch (err) { throw new AgentError('MalformedJSON', `request body is not valid JSON: ${(err as Error).message}`); }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    throw new AgentError('Invalid', parsed.error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`).join('; '));
  }
  return parsed.data;
}

/** The path after a route prefix, URL-decoded once (clients send it quoted, slashes too). */
function pathParam(c: Context, prefix: string): string {
  const rawPath = new URL(c.req.url).pathname.slice(prefix.length);
  let p: string;
  try { p = decodeURIComponent(rawPath); } catch { throw new AgentError('Invalid', `path "${rawPath}" is not valid URL encoding`); }
  return p === '' ? '.' : p;
}

function ndjson(subscribe: (push: (ev: ExecEvent) => void, end: () => void) => () => void, onCancel?: () => void): Response {
  let unsubscribe = () => {};
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      const enc = new TextEncoder();
      let closed = false;
      const end = () => { if (!closed) { closed = true; controller.close(); } };
      unsubscribe = subscribe((ev) => { if (!closed) { controller.enqueue(enc.encode(JSON.stringify(ev) + '\n')); if (ev.type === 'exit') end(); } }, end);
    },
    cancel() { unsubscribe(); onCancel?.(); },
  });
  return new Response(stream, { headers: { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' } });
}

export function agentApp(procs: ProcessManager, files: FileService): Hono {
  const app = new Hono();
  app.onError((err, c) => {
    const e = toAgentError(err);
    return c.json(e.body(), e.status as 400);
  });
  app.notFound((c) => c.json({ detail: `no route ${c.req.method} ${new URL(c.req.url).pathname}`, reason: 'NotFound' }, 404));

  app.get('/', (c) => c.json({ status: 'ok', message: 'Sandbox Runtime is active.' }));

  // ---- upstream's runtime API ----
  app.post('/execute', async (c) => {
    const req = await jsonBody(c, ExecuteRequest);
    return c.json(await procs.runBuffered({ ...req, timeoutMs: req.timeout !== undefined ? Math.round(req.timeout * 1000) : undefined }));
  });
  app.post('/upload', async (c) => {
    const declared = Number(c.req.header('content-length') ?? 0);
    if (declared > files.maxUploadBytes + 64 * 1024) throw new AgentError('PayloadTooLarge', `upload exceeds the limit of ${files.maxUploadBytes} bytes`);
    const form = await c.req.formData().catch(() => { throw new AgentError('Invalid', 'expected multipart/form-data with a "file" field'); });
    const file = form.get('file');
    if (!file || typeof file === 'string') throw new AgentError('Invalid', 'file: a multipart "file" field is required');
    await files.writeBuffer(file.name, new Uint8Array(await file.arrayBuffer()));
    return c.json({ message: `File '${file.name}' uploaded successfully.` });
  });
  app.get('/download/*', async (c) => {
    const { stream, size } = await files.openRead(pathParam(c, '/download/'));
    return new Response(Readable.toWeb(stream) as ReadableStream, { headers: { 'content-type': 'application/octet-stream', 'content-length': String(size) } });
  });
  app.get('/list/*', async (c) => c.json(await files.list(pathParam(c, '/list/'))));
  app.get('/exists/*', async (c) => {
    const p = pathParam(c, '/exists/');
    return c.json({ path: p, exists: await files.exists(p) });
  });

  // ---- extensions ----
  app.post('/v1/exec', async (c) => {
    const req = await jsonBody(c, ExecRequest);
    const proc = procs.spawn(req);
    // A foreground command whose caller went away (closed the stream) is killed, tree and all,
    // rather than left running until its timeout.
    return ndjson((push) => proc.subscribe(push, true), () => proc.kill('SIGKILL'));
  });
  app.post('/v1/processes', async (c) => {
    const proc = procs.start(await jsonBody(c, ExecRequest));
    return c.json({ id: proc.id, pid: proc.pid }, 201);
  });
  app.get('/v1/processes', (c) => c.json(procs.list()));
  app.get('/v1/processes/:id', (c) => c.json(procs.get(c.req.param('id')).info()));
  app.get('/v1/processes/:id/output', (c) => {
    const proc = procs.get(c.req.param('id'));
    const follow = c.req.query('follow') === '1' || c.req.query('follow') === 'true';
    return ndjson((push, end) => {
      const unsub = proc.subscribe(push, follow);
      if (!follow || !proc.running) queueMicrotask(end);
      return unsub;
    });
  });
  app.post('/v1/processes/:id/stdin', async (c) => {
    const proc = procs.get(c.req.param('id'));
    if (!proc.running) throw new AgentError('Conflict', `process "${proc.id}" has exited`);
    const data = new Uint8Array(await c.req.arrayBuffer());
    if (data.length) proc.writeStdin(data);
    if (c.req.query('eof') === '1') proc.endStdin();
    return c.body(null, 204);
  });
  app.post('/v1/processes/:id/signal', async (c) => {
    const { signal } = await jsonBody(c, SignalRequest);
    procs.get(c.req.param('id')).kill(signal);
    return c.body(null, 204);
  });
  app.delete('/v1/processes/:id', (c) => { procs.remove(c.req.param('id')); return c.body(null, 204); });

  app.get('/v1/files/*', async (c) => {
    const { stream, size } = await files.openRead(pathParam(c, '/v1/files/'));
    return new Response(Readable.toWeb(stream) as ReadableStream, { headers: { 'content-type': 'application/octet-stream', 'content-length': String(size) } });
  });
  app.put('/v1/files/*', async (c) => {
    const p = pathParam(c, '/v1/files/');
    const declared = Number(c.req.header('content-length') ?? 0);
    if (declared > files.maxUploadBytes) throw new AgentError('PayloadTooLarge', `upload of ${declared} bytes exceeds the limit of ${files.maxUploadBytes} bytes`);
    const body = c.req.raw.body ? Readable.fromWeb(c.req.raw.body as never) : Readable.from([]);
    return c.json(await files.writeStream(p, body), 201);
  });
  app.delete('/v1/files/*', async (c) => {
    await files.remove(pathParam(c, '/v1/files/'), c.req.query('recursive') === '1');
    return c.body(null, 204);
  });
  app.get('/v1/stat/*', async (c) => c.json(await files.stat(pathParam(c, '/v1/stat/'))));
  app.post('/v1/mkdir/*', async (c) => { await files.mkdir(pathParam(c, '/v1/mkdir/')); return c.body(null, 201); });
  return app;
}
