// Sandboxes that run real OCI images on the local engine, under gVisor: images made here (a
// static busybox, a glibc bash from this machine's own files, one with no shell at all) pushed to
// a real registry on loopback, pulled by the engine, and run as the sandbox's root: their
// software, their config, each sandbox's writes its own; a failed pull reported as the kubelet
// reports it and retried until the image is there.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { localImageStore } from '@asb/oci';
import { Sandbox, UnavailableError, apply } from '@asb/sdk';
import { startTestEngine, type TestEngine } from './harness.ts';
import { pushImage, startRegistry, type TestRegistry } from '../../packages/oci/test/support/registry.ts';
import { busybox, glibc, noShell } from '../support/images.ts';
import { sandboxYaml } from '../support/manifests.ts';

// (Offline, as the suite's sandboxes need no network: Debian's runsc cannot snapshot a networked one.)
const template = (name: string, image: string, extra = '') => `apiVersion: extensions.agents.x-k8s.io/v1alpha1
kind: SandboxTemplate
metadata: { name: ${name} }
spec:
  networkPolicy: { egress: [] }
  podTemplate:
    spec:
      containers:
      - name: main
        image: ${image}
${extra}`;

async function waitUntil(what: string, ok: () => boolean, ms = 60_000): Promise<void> {
  for (const start = Date.now(); !ok(); await new Promise((r) => setTimeout(r, 50))) {
    if (Date.now() - start > ms) throw new Error(`timed out waiting for ${what}`);
  }
}

describe('OCI images on the local engine', () => {
  let reg: TestRegistry;
  let t: TestEngine;
  const backoff = process.env.ASB_IMAGE_PULL_BACKOFF_MS;
  before(async () => {
    reg = await startRegistry();
    await pushImage(reg, 'asb-test/busybox', '1', [
      busybox({ Env: ['PATH=/bin', 'GREETING=from-image'], WorkingDir: '/srv/app' }),
    ]);
    await pushImage(reg, 'asb-test/busybox-app', '1', [busybox({ Env: ['PATH=/bin'], User: 'app' })]);
    await pushImage(reg, 'asb-test/glibc', '1', [glibc]);
    await pushImage(reg, 'asb-test/noshell', '1', [noShell]);
    process.env.ASB_IMAGE_PULL_BACKOFF_MS = '300';
    t = await startTestEngine();
    await apply(template('bb', `${reg.host}/asb-test/busybox:1`), t.conn);
  });
  after(async () => {
    if (backoff === undefined) delete process.env.ASB_IMAGE_PULL_BACKOFF_MS;
    else process.env.ASB_IMAGE_PULL_BACKOFF_MS = backoff;
    await t?.stop();
    await reg?.stop();
  });

  it("runs the image as the sandbox's root: its software, env and working directory, nothing of the host's", async () => {
    await using sb = await Sandbox.create({ ...t.conn, template: 'bb' });
    const run = async (cmd: string) => {
      const r = await sb.run(cmd);
      assert.equal(r.exitCode, 0, `${cmd}: ${r.stderr}`);
      return r.stdout;
    };
    assert.equal(await run('cat /etc/os-release'), 'ID=asb-test-busybox\n');
    assert.equal(await run('echo $GREETING'), 'from-image\n');
    assert.equal(await run('pwd'), '/srv/app\n', "the image's WorkingDir");
    assert.equal(await run('cat hello.txt'), 'hello from the image\n', "the workspace starts with the image's files");
    assert.equal(await run('id -u'), '0\n', 'no User in the image: root, as on Kubernetes');
    assert.equal(await run('test -e /usr && echo host || echo none'), 'none\n', "no /usr: the host's is not there");
    assert.equal(await run('test -e /etc/ssl/certs && echo host || echo none'), 'none\n');
    assert.match(await run('uname -a'), /Linux/);
    assert.equal(await run('cat /etc/hostname'), `${sb.id}\n`);
    // Its writes are its own: not in the image, not in another sandbox of it.
    await run('echo mine > /etc/mine && echo note > /srv/app/note.txt && rm /etc/os-release');
    await using other = await Sandbox.create({ ...t.conn, template: 'bb' });
    const seen = await other.run('cat /etc/mine /srv/app/note.txt; cat /etc/os-release');
    assert.match(seen.stderr, /\/etc\/mine'?: No such file/);
    assert.match(seen.stderr, /note\.txt'?: No such file/);
    assert.equal(seen.stdout, 'ID=asb-test-busybox\n', 'what one sandbox removed, the other still has');
    const roots = join(t.home, 'images', 'rootfs');
    for (const hex of readdirSync(roots)) {
      assert.ok(!existsSync(join(roots, hex, 'etc', 'mine')), 'the shared image root is never written');
    }
    assert.equal(await run('cat /etc/mine'), 'mine\n');
  });

  it("an image's links never lead the engine onto the host: /etc files, the working directory and volumes land inside the image", async () => {
    const canary = mkdtempSync(join(tmpdir(), 'asb-canary-'));
    writeFileSync(join(canary, 'hosts'), 'the host file\n');
    try {
      const hostile = busybox({ Env: ['PATH=/bin'] });
      // Absolute links to the host's paths, as a hostile image would ship them.
      hostile.layers.push({
        files: { 'etc/.keep': '' },
        symlinks: {
          'etc/hosts': join(canary, 'hosts'),
          'etc/hostname': canary,
          work: canary,
          data: '/../../..' + canary,
        },
      });
      await pushImage(reg, 'asb-test/hostile', '1', [hostile]);
      await apply(
        `apiVersion: agents.x-k8s.io/v1alpha1
kind: Sandbox
metadata: { name: hostile }
spec:
  podTemplate:
    spec:
      containers:
      - name: main
        image: "${reg.host}/asb-test/hostile:1"
        workingDir: /work
        volumeMounts: [{ name: data, mountPath: /data }]
  volumeClaimTemplates:
  - metadata: { name: data }
    spec: { accessModes: [ReadWriteOnce], resources: { requests: { storage: 16Mi } } }
`,
        t.conn,
      );
      const sb = await Sandbox.connect('hostile', t.conn);
      const r = await sb.run(
        'cat /etc/hosts; cat /etc/hostname; pwd; echo in-work > w.txt; echo in-data > /data/d.txt',
      );
      assert.equal(r.exitCode, 0, r.stderr);
      assert.match(r.stdout, /^127\.0\.0\.1\tlocalhost hostile\n/);
      assert.match(r.stdout, /\nhostile\n/);
      await sb.kill();
      assert.deepEqual(readdirSync(canary), ['hosts'], 'nothing was made in the host directory the links name');
      assert.equal(readFileSync(join(canary, 'hosts'), 'utf8'), 'the host file\n');
    } finally {
      rmSync(canary, { recursive: true, force: true });
    }
  });

  it('Sandbox.create({ image }) runs an image without a template; a failed pull is an error naming the image, and leaves nothing', async () => {
    await using sb = await Sandbox.create({ ...t.conn, image: `${reg.host}/asb-test/busybox:1` });
    assert.equal((await sb.run('cat /etc/os-release')).stdout, 'ID=asb-test-busybox\n');
    const image = `${reg.host}/asb-test/nope:1`;
    await assert.rejects(Sandbox.create({ ...t.conn, image, name: 'nope' }), (err: Error) => {
      assert.ok(err instanceof UnavailableError, String(err));
      assert.match(
        err.message,
        /ErrImagePull: Failed to pull image "127\.0\.0\.1:\d+\/asb-test\/nope:1": manifest 1 not found/,
      );
      return true;
    });
    assert.equal(t.engine.store.getSync('Sandbox', 'default', 'nope'), undefined, 'the failed sandbox is gone');
  });

  it("pulls a private image with the pod's imagePullSecrets (a Secret kept in the engine's home), read at each retry", async () => {
    const priv = await startRegistry({ auth: 'htpasswd' });
    try {
      await pushImage(priv, 'team/private', '1', [busybox({ Env: ['PATH=/bin'] })]);
      await apply(
        `apiVersion: agents.x-k8s.io/v1alpha1
kind: Sandbox
metadata: { name: private }
spec:
  podTemplate:
    spec:
      imagePullSecrets: [{ name: regcred }]
      containers: [{ name: main, image: "${priv.host}/team/private:1" }]
`,
        t.conn,
      );
      const ready = () =>
        t.engine.store.getSync('Sandbox', 'default', 'private')?.status?.conditions?.find((c) => c.type === 'Ready');
      await waitUntil('ErrImagePull', () => ready()?.reason === 'ErrImagePull');
      assert.match(ready()!.message, /unauthorized/i);
      assert.match(ready()!.message, /imagePullSecrets "regcred": no .*secrets\/default\/regcred\.json or \.yaml/);
      // As `kubectl create secret docker-registry regcred --dry-run=client -o yaml` writes it.
      const { username, password } = priv.credentials!;
      const dockerconfig = JSON.stringify({ auths: { [priv.host]: { username, password } } });
      mkdirSync(join(t.home, 'secrets', 'default'), { recursive: true });
      writeFileSync(
        join(t.home, 'secrets', 'default', 'regcred.yaml'),
        `apiVersion: v1
kind: Secret
metadata: { name: regcred }
type: kubernetes.io/dockerconfigjson
data:
  .dockerconfigjson: ${Buffer.from(dockerconfig).toString('base64')}
`,
      );
      await waitUntil('Ready', () => ready()?.status === 'True');
      const sb = await Sandbox.connect('private', t.conn);
      assert.equal((await sb.run('cat /etc/os-release')).stdout, 'ID=asb-test-busybox\n');
      await sb.kill();
    } finally {
      await priv.stop();
    }
  });

  it('suspends and resumes an image sandbox with a memory snapshot: its processes and its own layer come back', async () => {
    await using sb = await Sandbox.create({ ...t.conn, template: 'bb' });
    await sb.run('echo kept > /etc/kept');
    await sb.commands.start('sleep 321');
    await sb.suspend({ snapshot: true });
    const resumed = await sb.resume();
    assert.equal(resumed.restoredFromSnapshot, true);
    const r = await sb.run('cat /etc/kept; ps -o args | grep -c "^sleep 321"');
    assert.equal(r.stdout, 'kept\n1\n', r.stderr);
  });

  it("a Never image that is not here is ErrImageNeverPull, in the kubelet's words, until it is pulled", async () => {
    const image = `${reg.host}/asb-test/never:1`;
    await pushImage(reg, 'asb-test/never', '1', [busybox({ Env: ['PATH=/bin'] })]);
    await apply(template('never', image, '        imagePullPolicy: Never\n'), t.conn);
    const said = `Container image "${image}" is not present with pull policy of Never`;
    await assert.rejects(Sandbox.create({ ...t.conn, template: 'never', warmPool: 'none' }), (err: Error) => {
      assert.ok(err instanceof UnavailableError, String(err));
      assert.ok(err.message.includes(`ErrImageNeverPull: ${said}`), err.message);
      return true;
    });
    // A Sandbox that waits for it says so, and starts once the image is on the machine.
    await apply(sandboxYaml('never', { image, imagePullPolicy: 'Never' }), t.conn);
    const ready = () =>
      t.engine.store.getSync('Sandbox', 'default', 'never')?.status?.conditions?.find((c) => c.type === 'Ready');
    await waitUntil('ErrImageNeverPull', () => ready()?.reason === 'ErrImageNeverPull');
    assert.equal(ready()!.message, said);
    await localImageStore(t.home).pull(image); // as `asb image pull` would
    await waitUntil('Ready', () => ready()?.status === 'True');
    const sb = await Sandbox.connect('never', t.conn);
    assert.equal((await sb.run('cat /etc/os-release')).stdout, 'ID=asb-test-busybox\n');
    await sb.kill();
  });

  it('an image a sandbox runs is never pruned from under it, even when no reference names it any more', async () => {
    const ref = `${reg.host}/asb-test/busybox-app:1`;
    await using sb = await Sandbox.create({ ...t.conn, image: ref });
    const store = localImageStore(t.home);
    const digest = store.get(ref)!.digest;
    assert.ok(store.remove(ref));
    store.prune();
    assert.ok(existsSync(join(t.home, 'images', 'rootfs', digest.slice(7))), 'its root filesystem stays');
    assert.equal((await sb.run('cat /etc/os-release')).stdout, 'ID=asb-test-busybox\n');
    await sb.kill();
    // It goes once nothing runs it (the sandbox's overlay is unmounted as it is deleted).
    await waitUntil('its root filesystem to be pruned', () => {
      store.prune();
      return !existsSync(join(t.home, 'images', 'rootfs', digest.slice(7)));
    });
  });

  it("runs as the image's User, with its home, and the workspace is that user's", async () => {
    await apply(template('bb-app', `${reg.host}/asb-test/busybox-app:1`), t.conn);
    await using sb = await Sandbox.create({ ...t.conn, template: 'bb-app' });
    const r = await sb.run('id -u; id -g; echo $HOME; pwd; touch made-here && echo wrote');
    assert.equal(r.stdout, '1001\n1001\n/home/app\n/app\nwrote\n', r.stderr);
    await sb.files.write('uploaded.txt', 'via the files API');
    assert.equal((await sb.run('cat uploaded.txt')).stdout, 'via the files API');
  });

  it('runs a glibc image on its own libraries, and one with no shell at all', async () => {
    await apply(template('glibc', `${reg.host}/asb-test/glibc:1`), t.conn);
    await using sb = await Sandbox.create({ ...t.conn, template: 'glibc' });
    const r = await sb.run('echo "bash ${BASH_VERSINFO[0]}"; cat /etc/os-release');
    assert.equal(r.stdout, `bash 5\nID=asb-test-glibc\n`, r.stderr);

    await apply(template('noshell', `${reg.host}/asb-test/noshell:1`), t.conn);
    await using bare = await Sandbox.create({ ...t.conn, template: 'noshell' });
    const plain = await bare.run('busybox echo no shell needed');
    assert.equal(plain.stdout, 'no shell needed\n', plain.stderr);
    const shell = await bare.run('echo $HOME | busybox cat');
    assert.notEqual(shell.exitCode, 0, 'shell syntax needs a shell, and the image has none');
    assert.match(shell.stderr, /sh/);
  });

  it('reports a failed pull as ErrImagePull, then ImagePullBackOff, and starts once the image is there', async () => {
    const image = `${reg.host}/asb-test/later:1`;
    await apply(template('later', image), t.conn);
    await apply(
      `apiVersion: agents.x-k8s.io/v1alpha1
kind: Sandbox
metadata: { name: later }
spec:
  podTemplate:
    spec:
      containers: [{ name: main, image: "${image}" }]
`,
      t.conn,
    );
    const ready = () =>
      t.engine.store.getSync('Sandbox', 'default', 'later')?.status?.conditions?.find((c) => c.type === 'Ready');
    const seen = new Set<string>();
    const until = async (what: string, ok: () => boolean) => {
      for (const start = Date.now(); !ok(); await new Promise((r) => setTimeout(r, 50))) {
        const r = ready();
        if (r) seen.add(r.reason);
        if (Date.now() - start > 60_000) throw new Error(`timed out waiting for ${what}; saw ${[...seen]}`);
      }
    };
    await until('ErrImagePull', () => ready()?.reason === 'ErrImagePull');
    assert.match(ready()!.message, /asb-test\/later:1/);
    assert.match(ready()!.message, /not found|unknown/i, "the registry's own words");
    await until('ImagePullBackOff', () => ready()?.reason === 'ImagePullBackOff');
    assert.equal(ready()!.status, 'False');
    await pushImage(reg, 'asb-test/later', '1', [busybox({ Env: ['PATH=/bin'] })]);
    await until('Ready', () => ready()?.status === 'True');
    const sb = await Sandbox.connect('later', t.conn);
    assert.equal((await sb.run('cat /etc/os-release')).stdout, 'ID=asb-test-busybox\n');
    await sb.kill();
  });
});

describe('OCI images under bubblewrap (the fallback where gVisor is absent)', () => {
  let reg: TestRegistry;
  let t: TestEngine;
  before(async () => {
    reg = await startRegistry();
    await pushImage(reg, 'asb-test/busybox', '1', [busybox({ Env: ['PATH=/bin'], WorkingDir: '/srv/app' })]);
    t = await startTestEngine({ driver: 'bubblewrap' });
  });
  after(async () => {
    await t?.stop();
    await reg?.stop();
  });

  it("runs the image as the root there too: its files, its user, nothing of the host's /usr", async () => {
    await using sb = await Sandbox.create({ ...t.conn, image: `${reg.host}/asb-test/busybox:1` });
    const r = await sb.run(
      'cat /etc/os-release hello.txt; id -u; test -e /usr && echo host-usr || echo no-usr; echo w > /etc/w && cat /etc/w',
    );
    assert.equal(r.stdout, 'ID=asb-test-busybox\nhello from the image\n0\nno-usr\nw\n', r.stderr);
  });
});
