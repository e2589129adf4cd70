// sandbox.files: read, write, list, exists, stat, mkdir, remove. Paths are relative to the
// sandbox's workspace (or absolute inside it); the agent refuses anything outside.
import { Readable } from 'node:stream';
import { call, callReply, callStreaming, parseSandboxReply, type ResolvedConnection } from './connection.ts';
import { InvalidError } from './errors.ts';

import { ExistsResponse, FileList, FileStat, WriteFileResponse, type FileEntry } from '@asb/runtime/replies';
export type { FileEntry, FileStat };

// The whole path is one URL segment (slashes too, as upstream's client quotes it), so `..` in a
// path reaches the agent, which refuses it, instead of being resolved away by the URL parser.
const enc = (p: string) => encodeURIComponent(p);

export class Files {
  constructor(
    private readonly conn: ResolvedConnection,
    private readonly target: { id: string; namespace: string },
  ) {}

  /** Writes a file (parents are made); the bytes arrive exactly as given. A stream (a Node
   *  Readable, a web ReadableStream, any async iterable of bytes) is sent as it is read, so a file
   *  of any size costs no more memory than a few chunks; give its `size` when known, so that one
   *  over the engine's limit (ASB_MAX_UPLOAD_BYTES) is refused before a byte is sent. */
  async write(
    path: string,
    data: string | Uint8Array | Blob | ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>,
    opts: { size?: number } = {},
  ): Promise<{ path: string; size: number }> {
    const headers: Record<string, string> = { 'content-type': 'application/octet-stream' };
    if (opts.size !== undefined) {
      if (!Number.isSafeInteger(opts.size) || opts.size < 0)
        throw new InvalidError(`write ${path}: size must be a whole number of bytes, not ${opts.size}`);
      headers['content-length'] = String(opts.size);
    }
    const call = { method: 'PUT', headers, sandbox: this.target, timeoutMs: 600_000 };
    if (typeof data === 'string' || data instanceof Uint8Array || data instanceof Blob) {
      return callReply(this.conn, `/v1/files/${enc(path)}`, `write ${path}`, WriteFileResponse, {
        ...call,
        body: data,
      });
    }
    const stream = data instanceof ReadableStream ? Readable.fromWeb(data) : data;
    const written = await callStreaming<unknown>(this.conn, `/v1/files/${enc(path)}`, `write ${path}`, {
      ...call,
      stream,
    });
    return parseSandboxReply(WriteFileResponse, written, `write ${path}`);
  }

  read(path: string): Promise<string>;
  read(path: string, opts: { format: 'bytes' }): Promise<Uint8Array>;
  read(path: string, opts: { format: 'text' }): Promise<string>;
  /** The file's bytes as they arrive (for files too large to hold in memory): it errors, rather
   *  than ending early, if the transfer is cut. */
  read(path: string, opts: { format: 'stream' }): Promise<ReadableStream<Uint8Array>>;
  async read(
    path: string,
    opts: { format?: 'text' | 'bytes' | 'stream' } = {},
  ): Promise<string | Uint8Array | ReadableStream<Uint8Array>> {
    const res = await call(this.conn, `/v1/files/${enc(path)}`, `read ${path}`, {
      sandbox: this.target,
      timeoutMs: 600_000,
    });
    if (opts.format === 'stream') return res.body ?? new ReadableStream<Uint8Array>({ start: (c) => c.close() });
    const buf = new Uint8Array(await res.arrayBuffer());
    return opts.format === 'bytes' ? buf : new TextDecoder().decode(buf);
  }

  async list(path = '.'): Promise<FileEntry[]> {
    return callReply(this.conn, `/list/${enc(path)}`, `list ${path}`, FileList, { sandbox: this.target });
  }

  async exists(path: string): Promise<boolean> {
    const reply = await callReply(this.conn, `/exists/${enc(path)}`, `check ${path}`, ExistsResponse, {
      sandbox: this.target,
    });
    return reply.exists;
  }

  async stat(path: string): Promise<FileStat> {
    return callReply(this.conn, `/v1/stat/${enc(path)}`, `stat ${path}`, FileStat, { sandbox: this.target });
  }

  async mkdir(path: string): Promise<void> {
    await call(this.conn, `/v1/mkdir/${enc(path)}`, `mkdir ${path}`, { method: 'POST', sandbox: this.target });
  }

  async remove(path: string, opts: { recursive?: boolean } = {}): Promise<void> {
    await call(this.conn, `/v1/files/${enc(path)}${opts.recursive ? '?recursive=1' : ''}`, `remove ${path}`, {
      method: 'DELETE',
      sandbox: this.target,
    });
  }
}
