// The agent's HTTP routes: upstream's runtime API and our /v1 extensions. Handlers only parse and
// shape; ProcessManager and FileService do the work. The same app serves HTTP/2 over the engine's
// socketpair and HTTP/1.1 on a TCP port (server.ts).
import { Hono, type Context } from 'hono';
import { getPath as honoGetPath } from 'hono/utils/url';
import net from 'node:net';
import { Readable } from 'node:stream';
import type { z } from 'zod';
import { AgentError, toAgentError } from './errors.ts';
import { ExecRequest, ExecuteRequest, LIMITS, SignalRequest } from './schemas.ts';
import type { ExistsResponse, HealthResponse, StartProcessResponse, UploadResponse } from './replies.ts';
import type { ProcessManager } from './processes.ts';
import type { FileService } from './files.ts';
import { ndjsonResponse } from './ndjson.ts';

/** Room for multipart boundaries and part headers around an upload's bytes. */
const MULTIPART_OVERHEAD_BYTES = 64 * 1024;

/** What @hono/node-server passes as the env: the node request, whose url is the path as sent. */
interface NodeEnv {
  incoming?: { url?: string };
}

/** The request path as the client sent it, before URL normalisation. The URL parser would turn
 *  `/v1/files/%2e%2e/etc/passwd` into `/v1/etc/passwd` and route it elsewhere; routed as sent, a
 *  path with `..` reaches its file route and is refused there by the Confiner, as upstream does. */
function rawPath(req: Request, env: unknown): string {
  const sent = (env as NodeEnv | undefined)?.incoming?.url;
  if (typeof sent === 'string' && sent.startsWith('/')) return sent.split(/[?#]/, 1)[0]!;
  return new URL(req.url).pathname;
}

/** The body, read up to `maxBytes`: over it is 413 at once, whatever content-length said (or did
 *  not say: a chunked body has none), so a client cannot make the agent buffer without bound. */
async function readBody(c: Context, maxBytes: number, what: string): Promise<Uint8Array> {
  const tooLarge = () => new AgentError('PayloadTooLarge', `${what} exceeds the limit of ${maxBytes} bytes`);
  if (Number(c.req.header('content-length') ?? 0) > maxBytes) throw tooLarge();
  const body = c.req.raw.body;
  if (!body) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
    size += chunk.byteLength;
    if (size > maxBytes) throw tooLarge();
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

async function jsonBody<S extends z.ZodType>(c: Context, schema: S): Promise<z.infer<S>> {
  const text = Buffer.from(await readBody(c, LIMITS.jsonBodyBytes, 'JSON body')).toString('utf8');
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new AgentError('MalformedJSON', `request body is not valid JSON: ${(err as Error).message}`);
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    throw new AgentError(
      'Invalid',
      parsed.error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`).join('; '),
    );
  }
  return parsed.data;
}

/** The path after a route prefix, URL-decoded once (clients send it quoted, slashes too). */
function pathParam(c: Context, prefix: string): string {
  const sent = rawPath(c.req.raw, c.env).slice(prefix.length);
  let p: string;
  try {
    p = decodeURIComponent(sent);
  } catch {
    throw new AgentError('Invalid', `path "${sent}" is not valid URL encoding`);
  }
  return p === '' ? '.' : p;
}

const flag = (c: Context, name: string) => ['1', 'true'].includes(c.req.query(name) ?? '');

function fileResponse({ stream, size }: { stream: Readable; size: number }): Response {
  return new Response(Readable.toWeb(stream) as ReadableStream, {
    headers: { 'content-type': 'application/octet-stream', 'content-length': String(size) },
  });
}

export function agentApp(procs: ProcessManager, files: FileService): Hono {
  const app = new Hono({
    getPath: (req, opts) => honoGetPath({ url: `http://agent${rawPath(req, opts?.env)}` } as Request),
  });
  app.onError((err, c) => {
    const e = toAgentError(err);
    return c.json(e.body(), e.status as 400);
  });
  app.notFound((c) =>
    c.json(new AgentError('NotFound', `no route ${c.req.method} ${rawPath(c.req.raw, c.env)}`).body(), 404),
  );

  app.get('/', (c) => c.json({ status: 'ok', message: 'Sandbox Runtime is active.' } satisfies HealthResponse));

  // ---- upstream's runtime API ----
  app.post('/execute', async (c) => {
    const req = await jsonBody(c, ExecuteRequest);
    return c.json(
      await procs.runBuffered({
        ...req,
        timeoutMs: req.timeout !== undefined ? Math.round(req.timeout * 1000) : undefined,
      }),
    );
  });
  app.post('/upload', async (c) => {
    const body = await readBody(c, files.maxUploadBytes + MULTIPART_OVERHEAD_BYTES, 'upload');
    const form = await new Request('http://agent/upload', {
      method: 'POST',
      body,
      headers: { 'content-type': c.req.header('content-type') ?? '' },
    })
      .formData()
      .catch(() => {
        throw new AgentError('Invalid', 'expected multipart/form-data with a "file" field');
      });
    const file = form.get('file');
    if (!file || typeof file === 'string')
      throw new AgentError('Invalid', 'file: a multipart "file" field with a filename is required');
    await files.writeBuffer(file.name, new Uint8Array(await file.arrayBuffer()));
    return c.json({ message: `File '${file.name}' uploaded successfully.` } satisfies UploadResponse);
  });
  app.get('/download/*', async (c) => fileResponse(await files.openRead(pathParam(c, '/download/'))));
  app.get('/list/*', async (c) => c.json(await files.list(pathParam(c, '/list/'))));
  app.get('/exists/*', async (c) => {
    const p = pathParam(c, '/exists/');
    return c.json({ path: p, exists: await files.exists(p) } satisfies ExistsResponse);
  });

  // ---- extensions: processes ----
  app.post('/v1/exec', async (c) => {
    const proc = procs.spawn(await jsonBody(c, ExecRequest));
    return ndjsonResponse({
      subscribe: (push) => proc.subscribe(push, true),
      pause: () => proc.pause(),
      resume: () => proc.resume(),
      // A foreground command whose caller went away is killed, tree and all, rather than left
      // running until its timeout; resumed, so that its pipes drain and its exit is seen.
      onCancel: () => {
        proc.kill('SIGKILL');
        proc.resume();
      },
    });
  });
  // An exposed port: a byte stream to a server on the sandbox's own loopback (ports.go's twin).
  app.post('/v1/ports/:port/tunnel', async (c) => {
    const text = c.req.param('port');
    const port = Number(text);
    if (!/^\d{1,5}$/.test(text) || port < 1 || port > 65535)
      throw new AgentError('Invalid', `port ${text} is not a TCP port (1-65535)`);
    const conn = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect({ host: '127.0.0.1', port });
      s.once('connect', () => resolve(s));
      s.once('error', (err: NodeJS.ErrnoException) =>
        reject(
          new AgentError(
            'BadGateway',
            err.code === 'ECONNREFUSED'
              ? `nothing listens on port ${port} in the sandbox`
              : `port ${port} in the sandbox: ${err.message}`,
          ),
        ),
      );
    });
    conn.on('error', () => conn.destroy());
    const body = c.req.raw.body;
    if (body) Readable.fromWeb(body).pipe(conn);
    else conn.end();
    return new Response(Readable.toWeb(conn) as ReadableStream, {
      headers: { 'content-type': 'application/octet-stream' },
    });
  });
  app.get('/v1/exec-context', (c) => c.json(procs.execContext()));
  app.post('/v1/processes', async (c) => {
    const proc = procs.start(await jsonBody(c, ExecRequest));
    await proc.started; // the reply carries the pid
    return c.json({ id: proc.id, pid: proc.pid } satisfies StartProcessResponse, 201);
  });
  app.get('/v1/processes', (c) => c.json(procs.list()));
  app.get('/v1/processes/:id', (c) => c.json(procs.get(c.req.param('id')).info()));
  app.get('/v1/processes/:id/output', (c) => {
    const proc = procs.get(c.req.param('id'));
    const follow = flag(c, 'follow');
    return ndjsonResponse({
      subscribe: (push, end) => {
        const unsub = proc.subscribe(push, follow);
        if (!follow || !proc.running) queueMicrotask(end);
        return unsub;
      },
    });
  });
  app.post('/v1/processes/:id/stdin', async (c) => {
    const proc = procs.get(c.req.param('id'));
    const data = await readBody(c, LIMITS.stdinChars, 'stdin');
    if (!proc.running) throw new AgentError('Conflict', `process "${proc.id}" has exited`);
    if (data.length) proc.writeStdin(data);
    if (flag(c, 'eof')) proc.endStdin();
    return c.body(null, 204);
  });
  app.post('/v1/processes/:id/signal', async (c) => {
    const { signal } = await jsonBody(c, SignalRequest);
    procs.get(c.req.param('id')).kill(signal);
    return c.body(null, 204);
  });
  app.delete('/v1/processes/:id', (c) => {
    procs.remove(c.req.param('id'));
    return c.body(null, 204);
  });

  // ---- extensions: files ----
  app.get('/v1/files/*', async (c) => fileResponse(await files.openRead(pathParam(c, '/v1/files/'))));
  app.put('/v1/files/*', async (c) => {
    const p = pathParam(c, '/v1/files/');
    const declared = Number(c.req.header('content-length') ?? 0);
    if (declared > files.maxUploadBytes)
      throw new AgentError(
        'PayloadTooLarge',
        `upload of ${declared} bytes exceeds the limit of ${files.maxUploadBytes} bytes (ASB_MAX_UPLOAD_BYTES)`,
      );
    const body = c.req.raw.body ? Readable.fromWeb(c.req.raw.body as never) : Readable.from([]);
    return c.json(await files.writeStream(p, body), 201);
  });
  app.delete('/v1/files/*', async (c) => {
    await files.remove(pathParam(c, '/v1/files/'), flag(c, 'recursive'));
    return c.body(null, 204);
  });
  app.get('/v1/stat/*', async (c) => c.json(await files.stat(pathParam(c, '/v1/stat/'))));
  app.post('/v1/mkdir/*', async (c) => {
    await files.mkdir(pathParam(c, '/v1/mkdir/'));
    return c.body(null, 201);
  });
  return app;
}
