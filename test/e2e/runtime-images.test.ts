// The seeds' runtime images as the quickstart gets them: images/runtime-python and
// images/runtime-go built from their own Dockerfiles (multi-stage, RUN under gVisor) on base
// images made here, pushed to a registry on loopback, and pulled by an engine under the seeds'
// names through registries.conf's mirrors, with the host table off (the default). The built-in
// templates (seeds 001 and 000) then run those images, not the host's software.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { localImageStore } from '@asb/oci';
import { Sandbox, UnavailableError } from '@asb/sdk';
import { RUNTIME_IMAGES, serveRuntimeImages, type ServedImages } from '../../scripts/runtime-images.ts';
import { startTestEngine, type TestEngine } from './harness.ts';

const why =
  process.getuid?.() !== 0
    ? 'needs root (debootstrap, overlay mounts)'
    : !existsSync('/usr/sbin/debootstrap')
      ? 'no debootstrap (apt-get install debootstrap)'
      : !existsSync('/usr/bin/docker-registry')
        ? 'no docker-registry (apt-get install docker-registry)'
        : undefined;

describe("the seeds' runtime images, built from images/ and served under the seeds' names", { skip: why }, () => {
  let served: ServedImages;
  let t: TestEngine;
  before(async () => {
    served = await serveRuntimeImages();
    const home = mkdtempSync(join(tmpdir(), 'asb-e2e-runtime-images-'));
    writeFileSync(join(home, 'registries.conf'), served.registriesConf);
    t = await startTestEngine({ home, hostImages: false });
  });
  after(async () => {
    await t?.stop();
    await served?.stop();
  });

  it("seed 001's python-runtime-template runs images/runtime-python, pulled as registry.k8s.io/agent-sandbox/python-runtime-sandbox:v0.1.0", async () => {
    await using sb = await Sandbox.create({ ...t.conn, template: 'python-runtime-template' });
    const r = await sb.run(
      [
        'python3 -c "import sys; print(sys.executable)"',
        'ls /opt/asb',
        'id -un',
        'pwd',
        'cat /etc/debian_version',
        'test -e /usr/local/go && echo host-go || echo no-host-go',
      ].join('; '),
    );
    assert.equal(r.exitCode, 0, r.stderr);
    const [exe, ...rest] = r.stdout.trim().split('\n');
    assert.equal(exe, '/usr/bin/python3', "the image's Python (Debian's), not the host's");
    assert.deepEqual(rest.slice(0, 3), ['agent.cjs', 'asb-spawn', 'sandboxd.cjs'], 'what the Dockerfile copied');
    assert.deepEqual(rest.slice(3, 5), ['sandbox', '/app'], "the Dockerfile's USER and WORKDIR");
    assert.match(rest[5]!, /^12\./, 'Debian bookworm');
    assert.equal(rest[6], 'no-host-go', "nothing of the host's /usr");
    // asb-spawn, as the Dockerfile's gcc stage built it: static.
    const spawn = await sb.run('ldd /opt/asb/asb-spawn 2>&1');
    assert.match(spawn.stdout, /not a dynamic executable/);
    const pulled = localImageStore(t.home).get(RUNTIME_IMAGES[0].seedName);
    assert.ok(pulled, "the engine pulled it under the seed's name");
    assert.equal(pulled.config.config?.User, '1000:1000');
  });

  it("seed 000's go-runtime-template runs images/runtime-go (ghcr.io/gke-demos/go-runtime-sandbox:latest, Always) and builds Go there", async () => {
    await using sb = await Sandbox.create({ ...t.conn, template: 'go-runtime-template' });
    await sb.files.write(
      'main.go',
      'package main\n\nimport "fmt"\n\nfunc main() { fmt.Println("built in the image") }\n',
    );
    const r = await sb.run('go version && which go && go run main.go', { timeoutMs: 300_000 });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(r.stdout, /^go version go1\.\d+/);
    assert.match(r.stdout, /\/usr\/local\/go\/bin\/go\n/);
    assert.match(r.stdout, /built in the image\n$/);
  });

  it('without the host table, a seed name no registry serves is ErrImagePull, saying how to get it', async () => {
    const image = 'registry.k8s.io/agent-sandbox/python-runtime-sandbox:v0.0.0-absent';
    await assert.rejects(Sandbox.create({ ...t.conn, image, name: 'absent' }), (err: Error) => {
      assert.ok(err instanceof UnavailableError, String(err));
      assert.match(
        err.message,
        /ErrImagePull: Failed to pull image "registry\.k8s\.io\/agent-sandbox\/python-runtime-sandbox:v0\.0\.0-absent"/,
      );
      assert.match(err.message, /scripts\/runtime-images\.ts.*ASB_HOST_IMAGES=1/);
      return true;
    });
  });
});
