// sandboxd's Filesystem & Runtime REST API (upstream's spec/filesystem/v1/filesystem.yaml, as its
// server answers it): GET/HEAD/PUT/DELETE /v1/files/{path}, GET /v1/health, GET /v1/metadata.
// Every path goes through SandboxdPaths (403 PERMISSION_DENIED when it leaves the root dir), the
// file work through our FileService; errors are {"code": ..., "message": ...}.
import { Hono, type Context } from 'hono';
import { lstat, open, readdir, rm, stat, type FileHandle } from 'node:fs/promises';
import { constants as fsConstants, type Stats } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { readExactly, type FileService } from '../files.ts';
import { PathEscapes, type SandboxdPaths } from './paths.ts';

export interface RestOptions {
  paths: SandboxdPaths;
  files: FileService;
  /** Only variables with this prefix (and no credential-like name) are on /v1/metadata. */
  metadataEnvPrefix: string;
  env: NodeJS.ProcessEnv;
  /** False during shutdown: /v1/health answers 503. */
  ready: () => boolean;
}

const MODE = /^0[0-7]{3}$/;
/** Names that look like credentials never reach /v1/metadata, whatever their prefix. */
const SENSITIVE = ['TOKEN', 'SECRET', 'PASSWORD', 'PASSWD', 'CRED', 'KEY', 'AUTH', 'BEARER', 'PRIVATE', 'CERT'];
const FILES = '/v1/files/';

/** JSON as upstream's encoder writes it (with its trailing newline). */
const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body) + '\n', { status, headers: { 'content-type': 'application/json', ...headers } });
const error = (status: number, code: string, message: string) => json(status, { code, message });
const text = (status: number, body: string, headers: Record<string, string> = {}) =>
  new Response(body, { status, headers: { 'content-type': 'text/plain; charset=utf-8', ...headers } });

const errno = (err: unknown) => (err as NodeJS.ErrnoException)?.code;
const isPermission = (err: unknown) => errno(err) === 'EACCES' || errno(err) === 'EPERM';
const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

/** Go's strconv.ParseBool. */
function parseBool(v: string): boolean | undefined {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(v)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(v)) return false;
  return undefined;
}

/** RFC 3339 in UTC to the second, as Go's time.RFC3339. */
const rfc3339 = (d: Date) => d.toISOString().replace(/\.\d+Z$/, 'Z');

/** One byte range of `size` (RFC 9110), or 'unsatisfiable', or undefined to send the whole file
 *  (no Range, a unit other than bytes, or several ranges). */
function byteRange(
  header: string | undefined,
  size: number,
): { start: number; end: number } | 'unsatisfiable' | undefined {
  const m = /^bytes=\s*(\d*)\s*-\s*(\d*)\s*$/.exec(header ?? '');
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size };
  }
  const start = Number(m[1]);
  if (start >= size) return 'unsatisfiable';
  const last = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (last < start) return undefined;
  return { start, end: last + 1 };
}

/** A regular file opened for reading (as FileService.openRead: one descriptor for the size and
 *  the bytes, O_NONBLOCK so a FIFO cannot hold a thread), or undefined for anything else. */
async function openFile(p: string): Promise<{ fh: FileHandle; st: Stats } | undefined> {
  const fh = await open(p, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
  const st = await fh.stat().catch((err) => {
    void fh.close();
    throw err;
  });
  if (st.isFile()) return { fh, st };
  await fh.close();
  return undefined;
}

/** What @hono/node-server passes as the env: the node request, whose url is the path as sent. */
interface NodeEnv {
  incoming?: { url?: string };
}

export function sandboxdRestApp(o: RestOptions): Hono {
  const startedAt = Date.now();
  let metadata: Record<string, string> | undefined;
  const metadataEnv = () => {
    metadata ??= Object.fromEntries(
      Object.entries(o.env).filter(
        ([k, v]): boolean =>
          v !== undefined && k.startsWith(o.metadataEnvPrefix) && !SENSITIVE.some((s) => k.toUpperCase().includes(s)),
      ) as [string, string][],
    );
    return metadata;
  };

  /** The file path of a /v1/files/ request, the way the client sent it (%2F decoded to '/'),
   *  resolved under the root; or the response refusing it. */
  const target = (userPath: string): string | Response => {
    try {
      return o.paths.resolve(userPath);
    } catch (err) {
      if (err instanceof PathEscapes)
        return error(403, 'PERMISSION_DENIED', 'path traversal outside sandbox root is forbidden');
      return error(500, 'INTERNAL', message(err));
    }
  };

  const getFile = async (c: Context, userPath: string): Promise<Response> => {
    const p = target(userPath);
    if (p instanceof Response) return p;
    let st;
    try {
      st = await stat(p);
    } catch (err) {
      if (errno(err) === 'ENOENT') return error(404, 'NOT_FOUND', 'path does not exist within the sandbox');
      if (isPermission(err)) return error(403, 'PERMISSION_DENIED', 'permission denied');
      return error(500, 'INTERNAL', message(err));
    }
    if (st.isDirectory()) return listing(userPath, p);

    let file;
    try {
      file = await openFile(p);
    } catch (err) {
      if (isPermission(err)) return error(403, 'PERMISSION_DENIED', 'permission denied');
      return error(500, 'INTERNAL', message(err));
    }
    if (!file) return error(500, 'INTERNAL', `${userPath} is not a regular file`);
    const headers: Record<string, string> = {
      'content-type': 'application/octet-stream',
      'accept-ranges': 'bytes',
      'last-modified': file.st.mtime.toUTCString(),
    };
    const since = Date.parse(c.req.header('if-modified-since') ?? '');
    if (!c.req.header('range') && since && Math.floor(file.st.mtimeMs / 1000) * 1000 <= since) {
      await file.fh.close();
      return new Response(null, { status: 304, headers: { 'last-modified': headers['last-modified']! } });
    }
    const range = byteRange(c.req.header('range'), file.st.size);
    if (range === 'unsatisfiable') {
      await file.fh.close();
      return text(416, 'invalid range: failed to overlap\n', { 'content-range': `bytes */${file.st.size}` });
    }
    const { start, end } = range ?? { start: 0, end: file.st.size };
    if (range) headers['content-range'] = `bytes ${start}-${end - 1}/${file.st.size}`;
    headers['content-length'] = String(end - start);
    if (c.req.method === 'HEAD') {
      await file.fh.close();
      return new Response(null, { status: range ? 206 : 200, headers });
    }
    return new Response(Readable.toWeb(readExactly(file.fh, start, end, userPath)) as ReadableStream, {
      status: range ? 206 : 200,
      headers,
    });
  };

  const listing = async (userPath: string, dir: string): Promise<Response> => {
    let names: string[];
    try {
      names = (await readdir(dir)).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    } catch (err) {
      return error(500, 'INTERNAL', message(err));
    }
    const entries = [];
    for (const name of names) {
      let st = await lstat(join(dir, name)).catch(() => undefined);
      if (!st) continue; // gone meanwhile
      if (st.isSymbolicLink()) {
        // Listed as what it leads to; a link out of the root, or a broken one, is left out.
        try {
          st = await stat(o.paths.resolve(join(userPath, name)));
        } catch {
          continue;
        }
      }
      entries.push({
        name,
        size: st.size,
        type: st.isDirectory() ? 'directory' : 'file',
        modified_at: rfc3339(st.mtime),
        mode: (st.mode & 0o777).toString(8).padStart(4, '0'),
      });
    }
    return json(200, { path: userPath.startsWith('/') ? userPath : `/${userPath}`, entries });
  };

  const putFile = async (c: Context, userPath: string): Promise<Response> => {
    let mode = 0o644;
    const modeParam = c.req.query('mode');
    if (modeParam) {
      if (!MODE.test(modeParam))
        return error(400, 'INVALID_ARGUMENT', `mode ${JSON.stringify(modeParam)} must match ^0[0-7]{3}$`);
      mode = parseInt(modeParam, 8);
    }
    const p = target(userPath);
    if (p instanceof Response) return p;
    if ((await stat(p).catch(() => undefined))?.isDirectory())
      return error(400, 'INVALID_ARGUMENT', 'target path is a directory');

    let body: Readable;
    const type = c.req.header('content-type') ?? '';
    if (/^multipart\/form-data\s*(;|$)/i.test(type)) {
      // The web platform's parser holds the whole form in memory; raw bodies stream.
      let form: FormData;
      try {
        form = await c.req.raw.formData();
      } catch (err) {
        return error(400, 'INVALID_ARGUMENT', `invalid multipart body: ${message(err)}`);
      }
      const part = form.get('file');
      if (part === null) return error(400, 'INVALID_ARGUMENT', 'multipart body is missing the required "file" part');
      body = Readable.from(typeof part === 'string' ? [Buffer.from(part)] : [Buffer.from(await part.arrayBuffer())]);
    } else {
      body = c.req.raw.body ? Readable.fromWeb(c.req.raw.body) : Readable.from([]);
    }
    try {
      await o.files.writeStream(p, body, { mode, sync: true });
    } catch (err) {
      if (isPermission(err)) return error(403, 'PERMISSION_DENIED', 'permission denied');
      return error(500, 'INTERNAL', message(err));
    }
    return new Response(null, { status: 204 });
  };

  const deleteFile = async (c: Context, userPath: string): Promise<Response> => {
    const p = target(userPath);
    if (p instanceof Response) return p;
    try {
      await lstat(p);
    } catch (err) {
      if (errno(err) === 'ENOENT') return error(404, 'NOT_FOUND', 'path does not exist within the sandbox');
      return error(500, 'INTERNAL', message(err));
    }
    let recursive = false;
    const recParam = c.req.query('recursive');
    if (recParam) {
      const parsed = parseBool(recParam);
      if (parsed === undefined)
        return error(400, 'INVALID_ARGUMENT', `recursive ${JSON.stringify(recParam)} must be a boolean`);
      recursive = parsed;
    }
    try {
      if (p === o.paths.root) {
        if (!recursive)
          return error(409, 'CONFLICT', 'cannot delete the sandbox root; pass recursive=true to clear its contents');
        // The root itself (often a volume's mount point) stays; what is in it goes.
        for (const name of await readdir(p)) await rm(join(p, name), { recursive: true, force: true });
      } else {
        await o.files.remove(p, recursive);
      }
    } catch (err) {
      if (errno(err) === 'ENOTEMPTY' || errno(err) === 'EEXIST')
        return error(409, 'CONFLICT', 'directory is not empty; pass recursive=true to remove it');
      if (isPermission(err)) return error(403, 'PERMISSION_DENIED', 'permission denied');
      return error(500, 'INTERNAL', message(err));
    }
    return new Response(null, { status: 204 });
  };

  const app = new Hono();
  app.all('*', async (c) => {
    const sent = (c.env as NodeEnv | undefined)?.incoming?.url;
    const raw = (typeof sent === 'string' && sent.startsWith('/') ? sent : new URL(c.req.url).pathname).split(
      /[?#]/,
      1,
    )[0]!;
    const method = c.req.method;
    const allow = (methods: string) =>
      text(405, 'Method Not Allowed\n', { allow: methods, 'x-content-type-options': 'nosniff' });

    if (raw.startsWith(FILES)) {
      let userPath: string;
      try {
        userPath = decodeURIComponent(raw.slice(FILES.length));
      } catch {
        return text(400, '400 Bad Request');
      }
      if (method === 'GET' || method === 'HEAD') return getFile(c, userPath);
      if (method === 'PUT') return putFile(c, userPath);
      if (method === 'DELETE') return deleteFile(c, userPath);
      return allow('DELETE, GET, HEAD, PUT');
    }
    if (raw === '/v1/files') return new Response(null, { status: 301, headers: { location: FILES } });
    if (raw === '/v1/health' || raw === '/v1/metadata') {
      if (method !== 'GET' && method !== 'HEAD') return allow('GET, HEAD');
      if (raw === '/v1/metadata') return json(200, { env: metadataEnv() });
      if (!o.ready()) return error(503, 'UNAVAILABLE', 'sandboxd is shutting down');
      return json(200, { status: 'ok', uptime_seconds: Math.floor((Date.now() - startedAt) / 1000) });
    }
    return text(404, '404 page not found\n', { 'x-content-type-options': 'nosniff' });
  });
  return app;
}
