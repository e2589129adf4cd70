// Blobs by digest under one directory (`blobs/sha256/<hex>`), as an OCI image layout keeps them:
// each is downloaded once, however many pulls want it at the same moment, checked against its
// digest and size as it streams, and published by a rename, so that a blob that is there is whole.
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { open as openFile, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { RegistryError, diskFullOr } from './errors.ts';

const DIGEST = /^sha256:([a-f0-9]{64})$/;

export class BlobStore {
  private readonly inFlight = new Map<string, Promise<string>>();
  /** Where this store's downloads are written before they are published. */
  readonly tmp: string;

  constructor(readonly root: string) {
    mkdirSync(join(root, 'blobs', 'sha256'), { recursive: true });
    // Downloads in progress live in a directory of their process's own (an engine and `asb image
    // pull` may share the store); what a killed process left behind is removed, never used.
    const tmpRoot = join(root, 'tmp');
    mkdirSync(tmpRoot, { recursive: true });
    removeLeftovers(tmpRoot);
    this.tmp = join(tmpRoot, `${process.pid}-${randomBytes(4).toString('hex')}`);
    mkdirSync(this.tmp);
  }

  /** Where the blob is (or would be). Throws on anything but a sha256 digest. */
  path(digest: string): string {
    const m = DIGEST.exec(digest);
    if (!m) throw new RegistryError('Unsupported', `"${digest}" is not a sha256 digest`);
    return join(this.root, 'blobs', 'sha256', m[1]!);
  }

  has(digest: string): boolean {
    return existsSync(this.path(digest));
  }

  /** Every blob stored, by digest. */
  digests(): string[] {
    return readdirSync(join(this.root, 'blobs', 'sha256')).map((hex) => `sha256:${hex}`);
  }

  /** Deletes a blob; returns the bytes freed. */
  remove(digest: string): number {
    const path = this.path(digest);
    const size = statSync(path, { throwIfNoEntry: false })?.size ?? 0;
    rmSync(path, { force: true });
    return size;
  }

  async read(digest: string): Promise<Buffer> {
    return readFile(this.path(digest));
  }

  /**
   * The blob's path once it is stored: at once when it is, else after `open`'s stream has been
   * written and checked. Callers asking for a blob that is being fetched wait for that fetch.
   * `onBytes` sees the bytes of this call's own download as they arrive.
   */
  async ensure(
    digest: string,
    size: number | undefined,
    open: () => Promise<Readable>,
    onBytes?: (n: number) => void,
  ): Promise<string> {
    const path = this.path(digest);
    if (existsSync(path)) return path;
    const running = this.inFlight.get(digest);
    if (running) return running;
    const fetch = this.download(digest, size, path, open, onBytes).finally(() => this.inFlight.delete(digest));
    this.inFlight.set(digest, fetch);
    return fetch;
  }

  /** Stores bytes already at hand (a manifest, a config) under their digest, checked. */
  async put(digest: string, bytes: Buffer): Promise<string> {
    return this.ensure(digest, bytes.length, async () => Readable.from([bytes]));
  }

  private async download(
    digest: string,
    size: number | undefined,
    path: string,
    open: () => Promise<Readable>,
    onBytes?: (n: number) => void,
  ): Promise<string> {
    const tmp = join(this.tmp, `${digest.slice(7, 19)}-${randomBytes(4).toString('hex')}`);
    const hash = createHash('sha256');
    let got = 0;
    const check = new Transform({
      transform(chunk: Buffer, _enc, done) {
        got += chunk.length;
        if (size !== undefined && got > size) {
          done(new RegistryError('BadDigest', `blob ${digest} is larger than the ${size} bytes its descriptor says`));
          return;
        }
        hash.update(chunk);
        onBytes?.(chunk.length);
        done(null, chunk);
      },
    });
    try {
      await pipeline(await open(), check, createWriteStream(tmp, { flags: 'wx' }));
      const actual = `sha256:${hash.digest('hex')}`;
      if (actual !== digest) {
        throw new RegistryError('BadDigest', `blob ${digest} arrived with digest ${actual}: refused`);
      }
      if (size !== undefined && got !== size) {
        throw new RegistryError('BadDigest', `blob ${digest} arrived with ${got} bytes, its descriptor says ${size}`);
      }
      // On disk before it is published: a power cut leaves no blob that is there but empty.
      const fh = await openFile(tmp, 'r');
      await fh.datasync().finally(() => fh.close());
      await rename(tmp, path);
      return path;
    } catch (err) {
      await rm(tmp, { force: true });
      const mb = size === undefined ? '' : ` (${(size / 1e6).toFixed(1)} MB)`;
      throw diskFullOr(err, `the device of ${this.root} for blob ${digest}${mb}`);
    }
  }
}

/** A name of the form `<pid>-…` or `….partial-<pid>-…`: whose process it is. */
function ownerPid(name: string): number | undefined {
  const m = /(?:^|\.partial-)(\d+)-/.exec(name);
  return m ? Number(m[1]) : undefined;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes the entries of `dir` whose process is gone (or that name none). */
export function removeLeftovers(dir: string, only: (name: string) => boolean = () => true): void {
  for (const name of readdirSync(dir)) {
    if (!only(name)) continue;
    const pid = ownerPid(name);
    if (pid === undefined || (pid !== process.pid && !alive(pid)))
      rmSync(join(dir, name), { recursive: true, force: true });
  }
}
