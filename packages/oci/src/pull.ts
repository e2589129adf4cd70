// A pull: the manifest for this platform, then its config and layers into the blob store (a few
// at a time), each checked against its digest. What is stored already is not fetched again.
import type { BlobStore } from './blob-store.ts';
import { RegistryError } from './errors.ts';
import { layerCompression, type Descriptor, type ImageConfig, type ImageManifest } from './media-types.ts';
import type { ImageReference } from './reference.ts';
import { formatReference } from './reference.ts';
import type { RegistryClient } from './registry-client.ts';

export interface PulledImage {
  /** The reference asked for, in full. */
  reference: string;
  /** Where it came from: the reference itself, or a mirror of it. */
  source: string;
  /** The image manifest's digest: what a sandbox of this image runs, whatever the tag says later. */
  digest: string;
  manifest: ImageManifest;
  config: ImageConfig;
}

export type PullProgress =
  | { type: 'resolved'; digest: string; layers: Descriptor[] }
  | { type: 'layer'; digest: string; size: number; received: number }
  | { type: 'layer-done'; digest: string; size: number; cached: boolean };

export interface PullOptions {
  /** Where to pull from, in order (mirrors, then the registry itself): `sourcesFor`. Default: the reference. */
  sources?: ImageReference[];
  onProgress?: (p: PullProgress) => void;
  /** Layers fetched at the same time. @default 3 */
  concurrency?: number;
}

export async function pullImage(
  ref: ImageReference,
  client: RegistryClient,
  store: BlobStore,
  opts: PullOptions = {},
): Promise<PulledImage> {
  const sources = opts.sources?.length ? opts.sources : [ref];
  const reference = formatReference(ref);
  const from = async (source: ImageReference) => ({
    ...(await pullFrom(source, client, store, opts)),
    reference,
    source: formatReference(source),
  });
  // A mirror that fails (down, stale, tampered) is passed over for the next source.
  const failed: string[] = [];
  for (const mirror of sources.slice(0, -1)) {
    try {
      return await from(mirror);
    } catch (err) {
      if (!(err instanceof RegistryError)) throw err;
      failed.push(`mirror ${formatReference(mirror)}: ${err.message}`);
    }
  }
  try {
    return await from(sources.at(-1)!);
  } catch (err) {
    if (!failed.length || !(err instanceof RegistryError)) throw err;
    throw new RegistryError(err.code, `${err.message} (before it: ${failed.join('; ')})`, err.status);
  }
}

async function pullFrom(
  ref: ImageReference,
  client: RegistryClient,
  store: BlobStore,
  opts: PullOptions,
): Promise<Omit<PulledImage, 'reference' | 'source'>> {
  const resolved = await client.resolve(ref);
  const { manifest } = resolved;
  for (const layer of manifest.layers) {
    if (!layerCompression(layer.mediaType)) {
      throw new RegistryError(
        'Unsupported',
        `${formatReference(ref)}: layer ${layer.digest} has an unsupported media type "${layer.mediaType}"`,
      );
    }
  }
  opts.onProgress?.({ type: 'resolved', digest: resolved.digest, layers: manifest.layers });
  const fetchBlob = (d: Descriptor, report: boolean) => {
    const cached = store.has(d.digest);
    let received = 0;
    return store
      .ensure(
        d.digest,
        d.size,
        () => client.blob(ref, d.digest),
        report
          ? (n) => {
              received += n;
              opts.onProgress?.({ type: 'layer', digest: d.digest, size: d.size, received });
            }
          : undefined,
      )
      .then(() => {
        if (report) opts.onProgress?.({ type: 'layer-done', digest: d.digest, size: d.size, cached });
      });
  };
  await fetchBlob(manifest.config, false);
  await inBatches(manifest.layers, opts.concurrency ?? 3, (l) => fetchBlob(l, true));
  // The manifests last: an image whose manifest is stored has all its blobs.
  if (resolved.index) await store.put(resolved.index.digest, resolved.index.bytes);
  await store.put(resolved.digest, resolved.bytes);
  let config: ImageConfig;
  try {
    config = JSON.parse((await store.read(manifest.config.digest)).toString('utf8')) as ImageConfig;
  } catch {
    throw new RegistryError('Unsupported', `${formatReference(ref)}: the image's config is not JSON`);
  }
  return { digest: resolved.digest, manifest, config };
}

/** Runs `f` on every item, at most `n` at a time; the first failure fails the whole. */
async function inBatches<T>(items: T[], n: number, f: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await f(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
}
