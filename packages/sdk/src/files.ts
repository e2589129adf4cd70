// sandbox.files: read, write, list, exists, stat, mkdir, remove. Paths are relative to the
// sandbox's workspace (or absolute inside it); the agent refuses anything outside.
import { call, callJson, type ResolvedConnection } from './connection.ts';

import type { FileEntry, FileStat } from '@asb/runtime';
export type { FileEntry, FileStat };

// The whole path is one URL segment (slashes too, as upstream's client quotes it), so `..` in a
// path reaches the agent, which refuses it, instead of being resolved away by the URL parser.
const enc = (p: string) => encodeURIComponent(p);

export class Files {
  constructor(private readonly conn: ResolvedConnection, private readonly target: { id: string; namespace: string }) {}

  /** Writes a file (parents are made); the bytes arrive exactly as given. */
  async write(path: string, data: string | Uint8Array): Promise<{ path: string; size: number }> {
    return callJson(this.conn, `/v1/files/${enc(path)}`, `write ${path}`, {
      method: 'PUT', body: data as RequestInit['body'], headers: { 'content-type': 'application/octet-stream' }, sandbox: this.target, timeoutMs: 600_000,
    });
  }

  read(path: string): Promise<string>;
  read(path: string, opts: { format: 'bytes' }): Promise<Uint8Array>;
  read(path: string, opts: { format: 'text' }): Promise<string>;
  async read(path: string, opts: { format?: 'text' | 'bytes' } = {}): Promise<string | Uint8Array> {
    const res = await call(this.conn, `/v1/files/${enc(path)}`, `read ${path}`, { sandbox: this.target, timeoutMs: 600_000 });
    const buf = new Uint8Array(await res.arrayBuffer());
    return opts.format === 'bytes' ? buf : new TextDecoder().decode(buf);
  }

  async list(path = '.'): Promise<FileEntry[]> {
    return callJson(this.conn, `/list/${enc(path)}`, `list ${path}`, { sandbox: this.target });
  }

  async exists(path: string): Promise<boolean> {
    return (await callJson<{ exists: boolean }>(this.conn, `/exists/${enc(path)}`, `check ${path}`, { sandbox: this.target })).exists;
  }

  async stat(path: string): Promise<FileStat> {
    return callJson(this.conn, `/v1/stat/${enc(path)}`, `stat ${path}`, { sandbox: this.target });
  }

  async mkdir(path: string): Promise<void> {
    await call(this.conn, `/v1/mkdir/${enc(path)}`, `mkdir ${path}`, { method: 'POST', sandbox: this.target });
  }

  async remove(path: string, opts: { recursive?: boolean } = {}): Promise<void> {
    await call(this.conn, `/v1/files/${enc(path)}${opts.recursive ? '?recursive=1' : ''}`, `remove ${path}`, { method: 'DELETE', sandbox: this.target });
  }
}
