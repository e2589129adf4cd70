// npm run bench:images: an image of ~100 MB (the host's Python standard library, Perl's and
// Python's packages, as two layers) pulled from a registry on loopback (Debian's docker-registry)
// and unpacked, with gzip layers and with zstd ones, each into a fresh store; then pulled again
// when it is here. Download (manifest, blobs, digests checked): MB/s of compressed bytes; unpack:
// MB/s of the image's files; a second pull: Always (asks the registry for the manifest) and
// IfNotPresent. The floor: GNU tar unpacking the same layers.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ImageStore, RegistryClient } from '@asb/oci';
import { pushImage, startRegistry } from '../packages/oci/test/support/registry.ts';
import { SideBySide, printReport } from './stats.ts';

const N = Number(process.env.BENCH_IMAGES_N ?? 3);
// Whichever of these the host has (Debian 12 has all: ~120 MB of files, thousands of them).
const LAYERS = [['usr/lib/python3.11'], ['usr/share/perl', 'usr/lib/python3/dist-packages']]
  .map((paths) => paths.filter((p) => existsSync(`/${p}`)))
  .filter((paths) => paths.length > 0);

const ms = (n: number) => `${n.toFixed(1)} ms`;
const mbps = (n: number) => `${n.toFixed(1)} MB/s`;
const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;

async function main(): Promise<void> {
  const reg = await startRegistry();
  const results = new SideBySide();
  const notes: string[] = [];
  try {
    for (const compression of ['gzip', 'zstd'] as const) {
      const ref = `${reg.host}/bench/big-${compression}:v1`;
      await pushImage(reg, `bench/big-${compression}`, 'v1', [
        { layers: LAYERS.map((fromHost) => ({ fromHost, compression })) },
      ]);
      const download: number[] = [];
      const unpack: number[] = [];
      const tarFloor: number[] = [];
      const always: number[] = [];
      const ifNotPresent: number[] = [];
      let compressed = 0;
      let files = 0;
      for (let i = 0; i < N; i++) {
        const root = mkdtempSync(join(tmpdir(), 'asb-bench-images-'));
        try {
          const store = new ImageStore(root, new RegistryClient());
          const t0 = performance.now();
          const image = await store.pull(ref);
          const t1 = performance.now();
          const rootfs = await store.rootfs(image);
          const t2 = performance.now();
          compressed = image.manifest.layers.reduce((a, l) => a + l.size, 0);
          files = Number(execFileSync('du', ['-sb', rootfs], { encoding: 'utf8' }).split('\t')[0]);
          download.push(compressed / 1e6 / ((t1 - t0) / 1000));
          unpack.push(files / 1e6 / ((t2 - t1) / 1000));
          // The floor: GNU tar (and the zstd program) unpacking the same layers into another directory.
          const floorDir = join(root, 'floor');
          execFileSync('mkdir', [floorDir]);
          const t2b = performance.now();
          for (const l of image.manifest.layers) {
            const flag = compression === 'zstd' ? '--zstd' : '-z';
            execFileSync('tar', ['-x', flag, '-f', store.blobs.path(l.digest), '-C', floorDir]);
          }
          tarFloor.push(files / 1e6 / ((performance.now() - t2b) / 1000));
          const t3 = performance.now();
          await store.pull(ref, { policy: 'Always' });
          const t4 = performance.now();
          await store.pull(ref, { policy: 'IfNotPresent' });
          always.push(t4 - t3);
          ifNotPresent.push(performance.now() - t4);
        } finally {
          rmSync(root, { recursive: true, force: true });
        }
      }
      notes.push(`${compression}: ${mb(compressed)} in its layers, ${mb(files)} of files`);
      results.add(compression, 'pull: download and check (compressed bytes)', '', download, mbps);
      results.add(compression, 'unpack: layers applied (bytes of files)', '', unpack, mbps);
      results.add(compression, 'floor: GNU tar unpacking the same layers', '', tarFloor, mbps);
      results.add(compression, 'pull again, Always (the manifest asked for)', '', always, ms);
      results.add(compression, 'pull again, IfNotPresent', '', ifNotPresent, ms);
    }
  } finally {
    await reg.stop();
  }
  printReport('image pull benchmark', notes, results);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
