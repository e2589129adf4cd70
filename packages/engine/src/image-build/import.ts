// An image from a root filesystem on this machine (what `docker import` makes of a tarball): the
// directory as one layer, owners and modes kept, with the config given. How a rootfs made by
// debootstrap becomes a base image that Dockerfiles build FROM.
import type { ImageConfig, ImageStore, LocalImage } from '@asb/oci';
import { writeLayer } from './layers.ts';

export async function importRootfs(
  store: ImageStore,
  dir: string,
  tag: string,
  config: NonNullable<ImageConfig['config']> = {},
  createdBy = `imported from ${dir}`,
): Promise<LocalImage> {
  const layer = await writeLayer(store.blobs, dir);
  const created = new Date().toISOString();
  return store.add(
    tag,
    {
      architecture: 'amd64',
      os: 'linux',
      created,
      config,
      rootfs: { type: 'layers', diff_ids: [layer.diffId] },
      history: [{ created, created_by: createdBy }],
    },
    [layer.descriptor],
  );
}
