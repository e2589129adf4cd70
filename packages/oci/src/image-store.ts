// The images on this machine: blobs by digest, each image's root filesystem unpacked once (by
// manifest digest, shared by every sandbox of it), and the references pulled, with the digest
// each resolved to. Pull policies as Kubernetes applies them.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { BlobStore, removeLeftovers } from './blob-store.ts';
import { RegistryError, diskFullOr } from './errors.ts';
import { OCI_CONFIG, OCI_MANIFEST, type Descriptor, type ImageConfig, type ImageManifest } from './media-types.ts';
import { pullImage, type PullProgress } from './pull.ts';
import { formatReference, parseReference } from './reference.ts';
import type { Credentials, RegistryClient } from './registry-client.ts';
import { sourcesFor, type RegistryEntry } from './registries.ts';
import { unpackLayers } from './unpack.ts';

export type PullPolicy = 'Always' | 'IfNotPresent' | 'Never';

export interface LocalImage {
  /** The reference as pulled, in full (`docker.io/library/python:3.13-slim`). */
  reference: string;
  digest: string;
  manifest: ImageManifest;
  config: ImageConfig;
  pulledAt: string;
}

/** Kubernetes' default: Always for `:latest` or no tag (and no digest), else IfNotPresent. */
export function defaultPullPolicy(reference: string): PullPolicy {
  const ref = parseReference(reference);
  return !ref.digest && (ref.tag ?? 'latest') === 'latest' ? 'Always' : 'IfNotPresent';
}

/** What a reference was last pulled as. */
interface Ref {
  reference: string;
  digest: string;
  pulledAt: string;
}

export class ImageStore {
  readonly blobs: BlobStore;
  private readonly rootfsDir: string;
  /** One file per reference (no index that two processes could both rewrite). */
  private readonly refsDir: string;
  private readonly unpacking = new Map<string, Promise<string>>();

  constructor(
    readonly root: string,
    private readonly client: RegistryClient,
    /** Mirrors and locations (registries.conf): where each reference is pulled from. */
    private readonly registries: RegistryEntry[] = [],
  ) {
    this.blobs = new BlobStore(root);
    this.rootfsDir = join(root, 'rootfs');
    this.refsDir = join(root, 'refs');
    mkdirSync(this.rootfsDir, { recursive: true });
    // Half-unpacked root filesystems of a killed process: never renamed into place, never used.
    removeLeftovers(this.rootfsDir, (name) => name.includes('.partial-'));
    mkdirSync(this.refsDir, { recursive: true });
  }

  /**
   * The image the reference names, pulled as the policy says: Always asks the registry (what is
   * stored is not downloaded again), IfNotPresent only when the reference was never pulled (or
   * a digest is missing), Never never (an image that is not here is an error).
   */
  async pull(
    reference: string,
    opts: {
      policy?: PullPolicy;
      onProgress?: (p: PullProgress) => void;
      /** Tried before the machine's own, for this pull only (a pod's imagePullSecrets). */
      credentials?: Record<string, Credentials>;
    } = {},
  ): Promise<LocalImage> {
    const ref = parseReference(reference);
    const full = formatReference(ref);
    const policy = opts.policy ?? defaultPullPolicy(reference);
    const local = this.get(full);
    if (local && policy !== 'Always') return local;
    if (policy === 'Never') {
      throw new RegistryError('NotFound', `${full}: not on this machine, and its pull policy is Never`);
    }
    const client = opts.credentials ? this.client.withCredentials(opts.credentials) : this.client;
    const pulled = await pullImage(ref, client, this.blobs, {
      sources: sourcesFor(ref, this.registries),
      onProgress: opts.onProgress,
    });
    const pulledAt = new Date().toISOString();
    this.writeRef({ reference: full, digest: pulled.digest, pulledAt });
    return { ...pulled, pulledAt };
  }

  /** The image a reference was last pulled as, if it is here whole. */
  get(reference: string): LocalImage | undefined {
    const full = formatReference(parseReference(reference));
    const entry = this.readRef(full);
    if (!entry || !this.blobs.has(entry.digest)) return undefined;
    const manifest = JSON.parse(readFileSync(this.blobs.path(entry.digest), 'utf8')) as ImageManifest;
    if (![manifest.config, ...manifest.layers].every((d) => this.blobs.has(d.digest))) return undefined;
    const config = JSON.parse(readFileSync(this.blobs.path(manifest.config.digest), 'utf8')) as ImageConfig;
    return { reference: full, digest: entry.digest, manifest, config, pulledAt: entry.pulledAt };
  }

  list(): LocalImage[] {
    return this.refs()
      .map((r) => this.get(r.reference))
      .filter((i): i is LocalImage => i !== undefined);
  }

  /**
   * The image's root filesystem, unpacked once per manifest digest (concurrent callers wait for
   * the one unpack) into a directory that appears whole, by rename, or not at all.
   */
  async rootfs(image: Pick<LocalImage, 'digest' | 'manifest'>): Promise<string> {
    const dest = join(this.rootfsDir, image.digest.replace(/^sha256:/, ''));
    if (existsSync(dest)) return dest;
    const running = this.unpacking.get(dest);
    if (running) return running;
    const job = (async () => {
      const partial = `${dest}.partial-${process.pid}-${randomBytes(4).toString('hex')}`;
      mkdirSync(partial, { mode: 0o755 });
      try {
        await unpackLayers(this.blobs, image.manifest.layers, partial);
        await rename(partial, dest);
        return dest;
      } catch (err) {
        await rm(partial, { recursive: true, force: true });
        throw diskFullOr(err, `the device of ${this.rootfsDir} to unpack ${image.digest}`);
      }
    })().finally(() => this.unpacking.delete(dest));
    this.unpacking.set(dest, job);
    return job;
  }

  /**
   * Stores an image made here (`asb image build`): its config and manifest as blobs (its layers
   * must be stored already), and the reference naming it.
   */
  async add(reference: string, config: ImageConfig, layers: Descriptor[]): Promise<LocalImage> {
    const full = formatReference(parseReference(reference));
    const put = async (bytes: Buffer, mediaType: string): Promise<Descriptor> => {
      const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
      await this.blobs.put(digest, bytes);
      return { mediaType, digest, size: bytes.length };
    };
    const configDescriptor = await put(Buffer.from(JSON.stringify(config)), OCI_CONFIG);
    const manifest: ImageManifest = { schemaVersion: 2, mediaType: OCI_MANIFEST, config: configDescriptor, layers };
    const m = await put(Buffer.from(JSON.stringify(manifest)), OCI_MANIFEST);
    const pulledAt = new Date().toISOString();
    this.writeRef({ reference: full, digest: m.digest, pulledAt });
    return { reference: full, digest: m.digest, manifest, config, pulledAt };
  }

  /** Pushes an image of this store to the registry its reference names (mirrors are for pulls). */
  async push(reference: string): Promise<LocalImage> {
    const image = this.get(reference);
    if (!image) throw new RegistryError('NotFound', `${reference}: not on this machine`);
    const bytes = await this.blobs.read(image.digest);
    await this.client.push(
      parseReference(image.reference),
      [image.manifest.config, ...image.manifest.layers],
      (digest) => this.blobs.read(digest),
      { bytes, mediaType: image.manifest.mediaType ?? OCI_MANIFEST },
    );
    return image;
  }

  /** Forgets a reference (its blobs stay until `prune`). */
  remove(reference: string): boolean {
    const file = this.refFile(formatReference(parseReference(reference)));
    if (!existsSync(file)) return false;
    rmSync(file, { force: true });
    return true;
  }

  /**
   * Deletes blobs and root filesystems no reference needs, except those `keep` names (the
   * digests of images sandboxes run). Returns the bytes freed.
   */
  prune(keep: Iterable<string> = []): number {
    // A root filesystem that a mounted overlay (a running or stopped sandbox's) has beneath it
    // stays, with its image's blobs, even when no reference names it any more.
    const live = new Set<string>([...keep, ...this.mountedRoots()]);
    for (const { digest } of this.refs()) live.add(digest);
    const blobs = new Set<string>();
    for (const digest of live) {
      if (!this.blobs.has(digest)) continue;
      blobs.add(digest);
      const m = JSON.parse(readFileSync(this.blobs.path(digest), 'utf8')) as ImageManifest;
      for (const d of [m.config, ...m.layers]) blobs.add(d.digest);
    }
    let freed = 0;
    for (const digest of this.blobs.digests()) if (!blobs.has(digest)) freed += this.blobs.remove(digest);
    for (const hex of readdirSync(this.rootfsDir)) {
      if (!live.has(`sha256:${hex}`)) rmSync(join(this.rootfsDir, hex), { recursive: true, force: true });
    }
    return freed;
  }

  /** The digests of root filesystems some overlay mount on this machine has as a lower layer. */
  private mountedRoots(): string[] {
    let mounts: string;
    try {
      mounts = readFileSync('/proc/self/mounts', 'utf8');
    } catch {
      return [];
    }
    const prefix = `${this.rootfsDir}/`;
    const out: string[] = [];
    for (const m of mounts.matchAll(/lowerdir=([^, ]+)/g)) {
      for (const dir of m[1]!.split(':')) {
        if (dir.startsWith(prefix)) out.push(`sha256:${dir.slice(prefix.length).split('/')[0]}`);
      }
    }
    return out;
  }

  private refFile(reference: string): string {
    return join(this.refsDir, `${createHash('sha256').update(reference).digest('hex')}.json`);
  }

  private readRef(reference: string): Ref | undefined {
    try {
      const ref = JSON.parse(readFileSync(this.refFile(reference), 'utf8')) as Ref;
      return ref.reference === reference ? ref : undefined;
    } catch {
      return undefined;
    }
  }

  private refs(): Ref[] {
    return readdirSync(this.refsDir)
      .filter((f) => f.endsWith('.json'))
      .map((f) => {
        try {
          return JSON.parse(readFileSync(join(this.refsDir, f), 'utf8')) as Ref;
        } catch {
          return undefined;
        }
      })
      .filter((r): r is Ref => r !== undefined)
      .sort((a, b) => a.reference.localeCompare(b.reference));
  }

  private writeRef(ref: Ref): void {
    const file = this.refFile(ref.reference);
    const tmp = `${file}.${process.pid}-${randomBytes(4).toString('hex')}`;
    writeFileSync(tmp, JSON.stringify(ref));
    // A rename: a reader sees the old entry or the new one, never half of one.
    renameSync(tmp, file);
  }
}
