// `asb image` and `asb run --image` as a user runs them, against a real registry on loopback.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pushImage, startRegistry, type TestRegistry } from '../../packages/oci/test/support/registry.ts';
import { busybox } from '../support/images.ts';
import { startEngineProcess, type EngineProcess } from './harness.ts';

const ASB = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '../../bin/asb');

describe('asb image', () => {
  const home = mkdtempSync(join(tmpdir(), 'asb-image-cli-'));
  let reg: TestRegistry;
  const asb = (...args: string[]) =>
    spawnSync(process.execPath, [ASB, ...args], {
      env: { ...process.env, ASB_HOME: home, DOCKER_CONFIG: join(home, 'docker') },
      encoding: 'utf8',
      timeout: 120_000,
    });

  before(async () => {
    reg = await startRegistry({ auth: 'htpasswd' });
    await pushImage(reg, 'team/app', 'v1', [
      { layers: [{ files: { 'etc/os-release': 'ID=test\n' } }, { files: { 'app/main.py': 'print(1)\n' } }] },
    ]);
  });
  after(async () => {
    await reg?.stop();
    rmSync(home, { recursive: true, force: true });
  });

  it('pulls with credentials from a Docker config.json, with progress per layer; lists, removes and prunes', () => {
    const ref = `${reg.host}/team/app:v1`;
    const denied = asb('image', 'pull', ref);
    assert.equal(denied.status, 1);
    assert.match(denied.stderr, /asb: .*unauthorized.*no credentials for this registry/);
    const { username, password } = reg.credentials!;
    const auth = Buffer.from(`${username}:${password}`).toString('base64');
    spawnSync('mkdir', ['-p', join(home, 'docker')]);
    writeFileSync(join(home, 'docker', 'config.json'), JSON.stringify({ auths: { [reg.host]: { auth } } }));

    const pulled = asb('image', 'pull', ref);
    assert.equal(pulled.status, 0, pulled.stderr);
    assert.match(pulled.stdout.trim(), new RegExp(`^${ref}@sha256:[a-f0-9]{64}$`));
    assert.match(pulled.stderr, /resolved sha256:[a-f0-9]{64}, 2 layer\(s\)/);
    assert.equal((pulled.stderr.match(/: pulled \(/g) ?? []).length, 2, pulled.stderr);
    const again = asb('image', 'pull', ref);
    assert.equal((again.stderr.match(/: already here/g) ?? []).length, 2, again.stderr);

    const list = JSON.parse(asb('image', 'ls', '-o', 'json').stdout) as {
      items: Array<{ reference: string; size: number }>;
    };
    assert.deepEqual(
      list.items.map((i) => i.reference),
      [ref],
    );
    assert.ok(list.items[0]!.size > 0);
    assert.equal(asb('image', 'rm', ref).status, 0);
    assert.equal(asb('image', 'rm', ref).status, 4);
    const pruned = asb('image', 'prune', '-o', 'json');
    assert.equal(pruned.status, 0, pruned.stderr);
    assert.ok((JSON.parse(pruned.stdout) as { freedBytes: number }).freedBytes > 0, pruned.stdout);
    assert.match(asb('image', 'prune').stdout, /^0\.0 MB freed/, 'nothing left to free');
  });

  it('an unknown tag, and Never with nothing here, exit 4 with the reason', () => {
    const unknown = asb('image', 'pull', `${reg.host}/team/app:nope`);
    assert.equal(unknown.status, 4);
    assert.match(unknown.stderr, /manifest nope not found/);
    const never = asb('image', 'pull', '--policy', 'Never', `${reg.host}/team/absent:v1`);
    assert.equal(never.status, 4);
    assert.match(never.stderr, /not on this machine, and its pull policy is Never/);
    const bad = asb('image', 'pull', 'Not/A:Reference!');
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /not a valid/);
  });
});

describe('asb run --image', () => {
  let reg: TestRegistry;
  let engine: EngineProcess;
  const docker = mkdtempSync(join(tmpdir(), 'asb-docker-config-'));
  before(async () => {
    reg = await startRegistry({ auth: 'htpasswd' });
    await pushImage(reg, 'team/tools', 'v1', [busybox({ Env: ['PATH=/bin', 'WHO=team-tools'] })]);
    const { username, password } = reg.credentials!;
    const auth = Buffer.from(`${username}:${password}`).toString('base64');
    writeFileSync(join(docker, 'config.json'), JSON.stringify({ auths: { [reg.host]: { auth } } }));
    // The engine pulls with the credentials of its own machine's Docker config.
    engine = await startEngineProcess({ DOCKER_CONFIG: docker });
  });
  after(async () => {
    await engine?.stop();
    await reg?.stop();
    rmSync(docker, { recursive: true, force: true });
  });

  it("runs a command in a sandbox of a private registry's image, and deletes the sandbox", () => {
    const ref = `${reg.host}/team/tools:v1`;
    const ran = engine.asb('run', '--image', ref, '--', 'sh', '-c', 'echo $WHO; cat /etc/os-release; exit 3');
    assert.equal(ran.status, 3, ran.stderr);
    assert.equal(ran.stdout, 'team-tools\nID=asb-test-busybox\n');
    assert.equal(engine.asb('ls', '-o', 'name').stdout.trim(), '', 'the sandbox is gone');
    const missing = engine.asb('run', '--image', `${reg.host}/team/absent:v1`, '--', 'true');
    assert.notEqual(missing.status, 0);
    assert.match(missing.stderr, /ErrImagePull: Failed to pull image ".*\/team\/absent:v1"/);
  });
});
