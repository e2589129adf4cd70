// The main job: start the local engine, run the seeds' flows in gVisor sandboxes, print what each
// produced (mirroring seed 000's "Expected tail of output"), and clean up.
//   seed 001: a shell command in the python runtime;
//   seed 004: tests 1, 2 and 4 (python, file write/read, runtime isolation);
//   seed 000: the Go single-file smoke flow and the multi-file module flow;
//   seed 002: a counter suspended with a memory snapshot and resumed where it stopped.
// The seeds' runtime images are built first from images/ and served under the seeds' names by a
// registry on loopback (scripts/runtime-images.ts), so the sandboxes run those images, pulled as on
// Kubernetes, not the host's software.
import { readFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tmpdir, release } from 'node:os';
import pino from 'pino';
import { Engine } from '@asb/engine';
import { Sandbox, apply } from '@asb/sdk';
import { multiFlow, show, smokeFlow } from './go/flows.ts';
import { RUNTIME_IMAGES, serveRuntimeImages } from '../scripts/runtime-images.ts';

const here = dirname(fileURLToPath(import.meta.url));

async function main(): Promise<void> {
  const home = process.env.ASB_HOME ?? mkdtempSync(join(tmpdir(), 'asb-quickstart-'));
  console.log("==> the seeds' runtime images, built from images/ (RUN steps under gVisor)");
  const t0 = performance.now();
  const served = await serveRuntimeImages();
  const conf = join(mkdtempSync(join(tmpdir(), 'asb-quickstart-conf-')), 'registries.conf');
  writeFileSync(conf, served.registriesConf);
  process.env.ASB_REGISTRIES_CONF = conf;
  console.log(`==> built in ${((performance.now() - t0) / 1000).toFixed(0)} s; served by ${served.registry} as:`);
  for (const image of RUNTIME_IMAGES) console.log(`    ${image.seedName}  (${image.tag})`);
  // Seed 002 names Docker Hub's python:3.13-slim, which is not made here: the host's Python stands
  // in for it, asked for by name (the host table is never the default).
  process.env.ASB_IMAGE_MAP ??= JSON.stringify({ 'python:3.13-slim': 'host-python' });
  console.log(`==> seed 002's python:3.13-slim: the host's Python in its place (ASB_IMAGE_MAP)`);
  const engine = new Engine({ home, port: 0 }, pino({ level: process.env.ASB_LOG_LEVEL ?? 'warn' }));
  const state = await engine.start();
  console.log(`==> local engine at ${state.url} (driver: ${state.driver})`);
  const conn = { url: engine.url, token: engine.bearerToken };
  try {
    console.log('=== seed 001: isolate AI code execution ===');
    {
      const t0 = performance.now();
      await using sb = await Sandbox.create({ ...conn, template: 'python-runtime-template' });
      console.log(`sandbox ${sb.id} ready in ${(performance.now() - t0).toFixed(0)} ms`);
      show(
        `echo 'Hello from the sandboxed environment!'`,
        await sb.run(`echo 'Hello from the sandboxed environment!'`),
      );
    }

    console.log('=== seed 004: SDK test script ===');
    {
      await using sb = await Sandbox.create({ ...conn, template: 'python-runtime-template' });
      console.log('Test 1: Running Python command');
      show(`python3 -c 'print("Hello from SDK!")'`, await sb.run(`python3 -c 'print("Hello from SDK!")'`));
      console.log('Test 2: File operations');
      await sb.files.write('test.txt', 'SDK test content');
      console.log(`  Content: ${(await sb.files.read('test.txt')).trim()}`);
      console.log('Test 4: Runtime isolation check');
      const kernel = (await sb.run('uname -r')).stdout.trim();
      console.log(`  Sandbox kernel: ${kernel}`);
      console.log(`  Host kernel:    ${release()}`);
      console.log(
        kernel !== release()
          ? '  Running with userspace isolation (gVisor)!'
          : '  WARNING: the sandbox reports the host kernel',
      );
      const dmesg = await sb.run('dmesg | head -3');
      console.log(
        dmesg.stdout
          .trimEnd()
          .split('\n')
          .map((l) => `  dmesg: ${l}`)
          .join('\n'),
      );
    }

    {
      await using sb = await Sandbox.create({ ...conn, template: 'go-runtime-template' });
      await smokeFlow(sb);
      await multiFlow(sb);
    }
    console.log('=== seed 002: suspend and resume with a memory snapshot ===');
    {
      await apply(readFileSync(join(here, 'seed002/python-counter-template.yaml'), 'utf8'), conn);
      await using sb = await Sandbox.create({ ...conn, template: 'python-counter-template' });
      const count = async () =>
        [...(await sb.commands.output('main')).stdout.matchAll(/Count: (\d+)/g)].map((m) => Number(m[1])).at(-1) ?? -1;
      await new Promise((r) => setTimeout(r, 3000));
      const before = await count();
      const { snapshotId } = await sb.suspend({ snapshot: true });
      console.log(`Count before suspend: ${before}; suspended with snapshot ${snapshotId}`);
      await new Promise((r) => setTimeout(r, 3000));
      const resumed = await sb.resume();
      await new Promise((r) => setTimeout(r, 1500));
      const after = await count();
      console.log(`Resumed (restored from snapshot: ${resumed.restoredFromSnapshot}); count after resume: ${after}`);
      if (!(after >= before)) throw new Error(`the counter went backwards: ${before} → ${after}`);
      console.log('SUCCESS: Sandbox resumed from where it left off (or later).');
    }
    console.log('==> PoC complete');
  } finally {
    await engine.stop();
    await served.stop();
    rmSync(dirname(conf), { recursive: true, force: true });
    if (!process.env.ASB_HOME) rmSync(home, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(`quickstart failed: ${err instanceof Error ? err.message : err}`);
  process.exit(1);
});
