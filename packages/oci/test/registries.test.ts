// Mirrors and credentials as the machine's configuration gives them, against real registries.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ImageStore,
  RegistryClient,
  RegistryConfigError,
  insecureHosts,
  loadDockerCredentials,
  loadRegistriesConf,
  parseReference,
  sourcesFor,
} from '../src/index.ts';
import { pushImage, startRegistry, type TestRegistry } from './support/registry.ts';

const SEED_IMAGE = 'registry.k8s.io/agent-sandbox/python-runtime-sandbox:v0.1.0';

describe('registry configuration', () => {
  let mirror: TestRegistry;
  const dirs: string[] = [];
  const tmp = () => {
    const d = mkdtempSync(join(tmpdir(), 'asb-registries-'));
    dirs.push(d);
    return d;
  };
  const conf = (text: string) => {
    const file = join(tmp(), 'registries.conf');
    writeFileSync(file, text);
    return loadRegistriesConf(file);
  };

  before(async () => {
    mirror = await startRegistry();
    await pushImage(mirror, 'k8s/agent-sandbox/python-runtime-sandbox', 'v0.1.0', [
      { layers: [{ files: { 'app/main.py': 'print("from the mirror")\n' } }], config: { Cmd: ['python3', 'main.py'] } },
    ]);
  });
  after(async () => {
    await mirror?.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it("reads registries.conf: mirrors in order, then the location, the reference's path kept", () => {
    const entries = conf(`
unqualified-search-registries = ["docker.io"]

[[registry]]
prefix = "registry.k8s.io"
location = "registry.k8s.io"

[[registry.mirror]]
location = "127.0.0.1:5999/dead"

[[registry.mirror]]
location = "10.1.2.3:5000/k8s"
insecure = true

[[registry]]
prefix = "docker.io/library"
location = "hub.example.com/library"
`);
    assert.deepEqual(
      sourcesFor(parseReference(SEED_IMAGE), entries).map((r) => `${r.registry}/${r.repository}:${r.tag}`),
      [
        '127.0.0.1:5999/dead/agent-sandbox/python-runtime-sandbox:v0.1.0',
        '10.1.2.3:5000/k8s/agent-sandbox/python-runtime-sandbox:v0.1.0',
        'registry.k8s.io/agent-sandbox/python-runtime-sandbox:v0.1.0',
      ],
    );
    assert.deepEqual(
      sourcesFor(parseReference('python:3.13'), entries).map((r) => `${r.registry}/${r.repository}:${r.tag}`),
      ['hub.example.com/library/python:3.13'],
    );
    assert.deepEqual(sourcesFor(parseReference('ghcr.io/a/b:1'), entries), [parseReference('ghcr.io/a/b:1')]);
    assert.deepEqual([...insecureHosts(entries)], ['10.1.2.3:5000']);
    assert.throws(() => conf('[[registry]]\ninsecure = true\n'), RegistryConfigError);
    assert.throws(() => conf('[[registry\n'), /not valid TOML/);
    assert.deepEqual(loadRegistriesConf(join(tmp(), 'absent.conf')), []);
  });

  it("serves the seeds' image name from a mirror on loopback, passing over a mirror that is down", async () => {
    const entries = conf(`
[[registry]]
prefix = "registry.k8s.io"

[[registry.mirror]]
location = "127.0.0.1:1/dead"

[[registry.mirror]]
location = "${mirror.host}/k8s"
`);
    const store = new ImageStore(tmp(), new RegistryClient({ timeoutMs: 3000 }), entries);
    const img = await store.pull(SEED_IMAGE);
    assert.equal(img.reference, SEED_IMAGE);
    assert.deepEqual(img.config.config?.Cmd, ['python3', 'main.py']);
    assert.equal(store.get(SEED_IMAGE)?.digest, img.digest, 'kept under the name it was asked by');
  });

  it('reads credentials from a Docker config.json', () => {
    const file = join(tmp(), 'config.json');
    writeFileSync(
      file,
      JSON.stringify({
        auths: {
          'https://index.docker.io/v1/': { auth: Buffer.from('hubuser:hub:pass').toString('base64') },
          'localhost:5000': { username: 'alice', password: 'secret' },
        },
        credHelpers: { 'gcr.io': 'gcloud' },
      }),
    );
    assert.deepEqual(loadDockerCredentials(file), {
      'docker.io': { username: 'hubuser', password: 'hub:pass' },
      'localhost:5000': { username: 'alice', password: 'secret' },
    });
    assert.deepEqual(loadDockerCredentials(join(tmp(), 'absent.json')), {});
  });
});
