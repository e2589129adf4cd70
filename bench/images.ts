// npm run bench:images: an image of ~100 MB (the host's Python standard library, Perl's and
// Python's packages, as two layers) pulled from a registry on loopback (Debian's docker-registry)
// and unpacked, with gzip layers and with zstd ones, each into a fresh store; then pulled again
// when it is here. Download (manifest, blobs, digests checked): MB/s of compressed bytes; unpack:
// MB/s of the image's files; a second pull: Always (asks the registry for the manifest) and
// IfNotPresent. The floor: GNU tar unpacking the same layers; node-tar (the fallback without Go)
// beside them. Then sandboxes of an image on the
// engine (gVisor): the first one (pull, unpack, overlay, boot), the next ones (the image here),
// against a sandbox of the host table's image (host /usr, no overlay), and exec in each; memory
// per idle sandbox of a Debian image (debootstrap) against the host table's, and the disk each
// sandbox of it costs beyond the image.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { Engine, unmountAll } from '@asb/engine';
import { ImageStore, RegistryClient, unpackLayers } from '@asb/oci';
import { Sandbox } from '@asb/sdk';
import { pushImage, startRegistry, type TestRegistry } from '../packages/oci/test/support/registry.ts';
import { busybox, debian, debianRootfs } from '../test/support/images.ts';
import { childrenOf, pssBytes, treeOf } from './procmem.ts';
import { SideBySide, printReport } from './stats.ts';

const N = Number(process.env.BENCH_IMAGES_N ?? 3);
const RUN_N = Number(process.env.BENCH_IMAGES_RUN_N ?? 10);
const IDLE_N = Number(process.env.BENCH_IMAGES_IDLE_N ?? 10);
// Whichever of these the host has (Debian 12 has all: ~120 MB of files, thousands of them).
const LAYERS = [['usr/lib/python3.11'], ['usr/share/perl', 'usr/lib/python3/dist-packages']]
  .map((paths) => paths.filter((p) => existsSync(`/${p}`)))
  .filter((paths) => paths.length > 0);

const ms = (n: number) => `${n.toFixed(1)} ms`;
const mbps = (n: number) => `${n.toFixed(1)} MB/s`;
const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;
const mib = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MB`;

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
      const unpackNode: number[] = [];
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
          // Before the Go unpacker: node-tar, the fallback where Go is absent, on the same layers.
          const nodeDir = join(root, 'node-tar');
          execFileSync('mkdir', [nodeDir]);
          const t2c = performance.now();
          await unpackLayers(store.blobs, image.manifest.layers, nodeDir, { unpacker: 'node' });
          unpackNode.push(files / 1e6 / ((performance.now() - t2c) / 1000));
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
      results.add(compression, 'unpack by node-tar (the fallback without Go)', '', unpackNode, mbps);
      results.add(compression, 'floor: GNU tar unpacking the same layers', '', tarFloor, mbps);
      results.add(compression, 'pull again, Always (the manifest asked for)', '', always, ms);
      results.add(compression, 'pull again, IfNotPresent', '', ifNotPresent, ms);
    }
    notes.push(await measureRuns(reg, results));
  } finally {
    await reg.stop();
  }
  printReport('image pull benchmark', notes, results);
}

/** Cold starts and exec of sandboxes of an image (busybox, ~2 MB), and of a host-table image. */
async function measureRuns(reg: TestRegistry, results: SideBySide): Promise<string> {
  await pushImage(reg, 'bench/busybox', 'v1', [busybox({ Env: ['PATH=/bin'] })]);
  const image = `${reg.host}/bench/busybox:v1`;
  const home = mkdtempSync(join(tmpdir(), 'asb-bench-images-run-'));
  const engine = new Engine({ home, port: 0, hostImages: true }, pino({ level: process.env.ASB_LOG_LEVEL ?? 'warn' }));
  await engine.start();
  const conn = { url: engine.url, token: engine.bearerToken };
  const column = 'sandboxes';
  try {
    const coldOf = async (opts: { image?: string; template?: string }) => {
      const t0 = performance.now();
      const sb = await Sandbox.create({ ...conn, ...opts, warmPool: 'none' });
      await sb.run('true');
      const took = performance.now() - t0;
      await sb.kill();
      return took;
    };
    const first = await coldOf({ image });
    results.add(column, 'first sandbox of an image → first result (pull, unpack, boot)', '', [first], ms);
    const host: number[] = [];
    const pulled: number[] = [];
    await coldOf({ template: 'python-runtime-template' }); // page cache and code paths, not counted
    for (let i = 0; i < RUN_N; i++) {
      pulled.push(await coldOf({ image }));
      host.push(await coldOf({ template: 'python-runtime-template' }));
    }
    results.add(column, 'cold sandbox of an image here → first result', '', pulled, ms);
    results.add(column, 'cold sandbox of a host-table image → first result', '', host, ms);
    for (const [label, opts] of [
      ['exec of `true`, image sandbox', { image }],
      ['exec of `true`, host-table sandbox', { template: 'python-runtime-template' }],
    ] as const) {
      const sb = await Sandbox.create({ ...conn, ...opts, warmPool: 'none' });
      for (let i = 0; i < 20; i++) await sb.run('true');
      const exec: number[] = [];
      for (let i = 0; i < 100; i++) {
        const t0 = performance.now();
        const { exitCode, stderr } = await sb.run('true');
        exec.push(performance.now() - t0);
        // A command that fails (no `true` in the image) takes no exec: its time is not an exec's.
        if (exitCode !== 0) throw new Error(`\`true\` failed in the ${label}: exit ${exitCode}: ${stderr}`);
      }
      results.add(column, label, '', exec, ms);
      await sb.kill();
    }
    await measureIdle(reg, engine, conn, results);
  } finally {
    await engine.stop({ deleteAll: true });
    await unmountAll(home);
    rmSync(home, { recursive: true, force: true });
  }
  return `sandboxes: busybox image (static, ~2 MB) on the engine's default runsc, alternated with python-runtime-template (host table) ${RUN_N} times`;
}

/**
 * Memory (PSS) per idle sandbox of a Debian image (debootstrap, with Python) against the host
 * table's, IDLE_N of each held at once (alternated as they start), and the disk each sandbox of
 * the image costs beyond the image itself: its own layer and workspace, after a write of 1 MB.
 */
async function measureIdle(
  reg: TestRegistry,
  engine: Engine,
  conn: { url: string; token: string },
  results: SideBySide,
): Promise<void> {
  const column = 'sandboxes';
  const rootfs = await debianRootfs();
  if (typeof rootfs !== 'string') {
    console.warn(`no Debian image (${rootfs.skip}): its memory and disk are not measured`);
    return;
  }
  await pushImage(reg, 'bench/debian', 'bookworm', [debian(rootfs)]);
  const image = `${reg.host}/bench/debian:bookworm`;
  await (await Sandbox.create({ ...conn, image, warmPool: 'none' })).kill(); // the pull, not counted
  const debianSbs: Sandbox[] = [];
  const hostSbs: Sandbox[] = [];
  for (let i = 0; i < IDLE_N; i++) {
    debianSbs.push(await Sandbox.create({ ...conn, image, warmPool: 'none' }));
    hostSbs.push(await Sandbox.create({ ...conn, template: 'python-runtime-template', warmPool: 'none' }));
  }
  for (const sb of [...debianSbs, ...hostSbs]) await sb.run('true');
  await new Promise((r) => setTimeout(r, 3000));
  const kids = childrenOf();
  const pssOf = (sbs: Sandbox[]) =>
    sbs.map((sb) => {
      const w = engine.workloads.get('default', sb.id)!;
      return treeOf(w.handle!.pid!, kids).reduce((a, p) => a + pssBytes(p), 0);
    });
  results.add(column, `memory (PSS) per idle sandbox, Debian image, ${IDLE_N} held`, '', pssOf(debianSbs), mib);
  results.add(column, `memory (PSS) per idle sandbox, host table, ${IDLE_N} held`, '', pssOf(hostSbs), mib);
  // Disk: each sandbox writes 1 MB; what its directory holds on disk (du: blocks, not sizes).
  for (const sb of debianSbs) await sb.run('head -c 1048576 /dev/urandom > /var/tmp/mine');
  const du = (path: string) =>
    Number(execFileSync('du', ['-sk', '-x', path], { encoding: 'utf8' }).split('\t')[0]) * 1024;
  const perSandbox = debianSbs.map((sb) => du(join(engine.config.home, 'sandboxes', 'default', sb.id)));
  results.add(
    column,
    `disk per sandbox of the Debian image beyond the image (1 MB written), ${IDLE_N}`,
    '',
    perSandbox,
    mb,
  );
  results.add(
    column,
    'disk: the images, each unpacked once (Debian, busybox)',
    '',
    [du(join(engine.config.home, 'images', 'rootfs'))],
    mb,
  );
  await Promise.all([...debianSbs, ...hostSbs].map((sb) => sb.kill()));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
