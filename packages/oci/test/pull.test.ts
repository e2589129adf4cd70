// Pulls from real registries on loopback (Debian's docker-registry), images pushed with skopeo.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { spawn } from 'node:child_process';
import {
  BlobStore,
  ImageStore,
  RegistryClient,
  RegistryError,
  parseReference,
  pullImage,
  type PullProgress,
  type RegistryClientOptions,
} from '../src/index.ts';
import { pushImage, startRegistry, type TestRegistry } from './support/registry.ts';

const base = {
  layers: [{ files: { 'etc/os-release': 'ID=test\n', 'bin/hello': 'hello\n', 'tmp/gone': 'x' } }],
  config: { Env: ['PATH=/bin', 'GREETING=hi'], Cmd: ['/bin/hello'], WorkingDir: '/work', User: '1000' },
};
const withWhiteout = {
  layers: [...base.layers, { files: { 'tmp/.wh.gone': '', 'etc/motd': 'welcome\n' } }],
};

describe('pulling images from a registry', () => {
  let open: TestRegistry;
  let locked: TestRegistry;
  let tokened: TestRegistry;
  const dirs: string[] = [];
  const newStore = () => {
    const d = mkdtempSync(join(tmpdir(), 'asb-blobs-'));
    dirs.push(d);
    return new BlobStore(d);
  };
  const pull = (ref: string, clientOpts: RegistryClientOptions = {}, store = newStore()) =>
    pullImage(parseReference(ref), new RegistryClient(clientOpts), store);
  const rejectsWith = async (p: Promise<unknown>, code: string, text: RegExp) => {
    const err = await p.then(
      () => assert.fail('expected a failure'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof RegistryError, `a RegistryError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    assert.match(err.message, text);
  };

  before(async () => {
    [open, locked, tokened] = await Promise.all([
      startRegistry(),
      startRegistry({ auth: 'htpasswd', tls: true }),
      startRegistry({ auth: 'token' }),
    ]);
    await pushImage(open, 'team/app', 'v1', [base]);
    await pushImage(open, 'team/layered', 'v1', [withWhiteout]);
    await pushImage(open, 'team/multi', 'v1', [
      { ...base, architecture: 'arm64', config: { ...base.config, Env: ['ARCH=arm64'] } },
      { ...base, architecture: 'amd64', config: { ...base.config, Env: ['ARCH=amd64'] } },
    ]);
    await pushImage(open, 'team/zstd', 'v1', [{ layers: [{ files: { 'bin/z': 'zstd!\n' }, compression: 'zstd' }] }]);
    await pushImage(locked, 'private/app', 'v1', [base]);
    await pushImage(tokened, 'public/app', 'v1', [base]);
    await pushImage(tokened, 'private/app', 'v1', [withWhiteout]);
  });
  after(async () => {
    await Promise.all([open?.stop(), locked?.stop(), tokened?.stop()]);
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('pulls by tag: the config as pushed, every blob stored under its digest', async () => {
    const store = newStore();
    const img = await pull(`${open.host}/team/app:v1`, {}, store);
    assert.equal(img.reference, `${open.host}/team/app:v1`);
    assert.deepEqual(img.config.config?.Env, ['PATH=/bin', 'GREETING=hi']);
    assert.deepEqual(img.config.config?.Cmd, ['/bin/hello']);
    assert.equal(img.config.config?.User, '1000');
    for (const d of [img.digest, img.manifest.config.digest, ...img.manifest.layers.map((l) => l.digest)]) {
      assert.ok(store.has(d), `${d} stored`);
    }
  });

  it('pulls by digest the same image, and a digest the repository lacks is not found', async () => {
    const byTag = await pull(`${open.host}/team/app:v1`);
    const byDigest = await pull(`${open.host}/team/app@${byTag.digest}`);
    assert.equal(byDigest.digest, byTag.digest);
    await rejectsWith(pull(`${open.host}/team/app@sha256:${'0'.repeat(64)}`), 'NotFound', /manifest unknown|not found/);
  });

  it('resolves a multi-platform index to linux/amd64, or the platform asked for, or says what it has', async () => {
    const amd = await pull(`${open.host}/team/multi:v1`);
    assert.deepEqual(amd.config.config?.Env, ['ARCH=amd64']);
    assert.equal(amd.config.architecture, 'amd64');
    const arm = await pull(`${open.host}/team/multi:v1`, { platform: { os: 'linux', architecture: 'arm64' } });
    assert.deepEqual(arm.config.config?.Env, ['ARCH=arm64']);
    assert.notEqual(arm.digest, amd.digest);
    await rejectsWith(
      pull(`${open.host}/team/multi:v1`, { platform: { os: 'linux', architecture: 's390x' } }),
      'Unsupported',
      /no image for linux\/s390x \(the index has: linux\/arm64, linux\/amd64\)/,
    );
  });

  it('pulls zstd and multi-layer images', async () => {
    const z = await pull(`${open.host}/team/zstd:v1`);
    assert.equal(z.manifest.layers[0]!.mediaType, 'application/vnd.oci.image.layer.v1.tar+zstd');
    const layered = await pull(`${open.host}/team/layered:v1`);
    assert.equal(layered.manifest.layers.length, 2);
  });

  it("an unknown tag or repository is NotFound, in the registry's words", async () => {
    await rejectsWith(
      pull(`${open.host}/team/app:nope`),
      'NotFound',
      /team\/app:nope: manifest nope not found \(manifest unknown/,
    );
    await rejectsWith(pull(`${open.host}/team/absent:v1`), 'NotFound', /not found/);
  });

  it('a registry over TLS behind htpasswd: its certificate verified, then no credentials, wrong ones, the right ones', async () => {
    const ref = `${locked.host}/private/app:v1`;
    const ca = () => locked.ca;
    // Loopback, yet HTTPS: spoken to over TLS, and a certificate nobody vouches for is refused.
    await rejectsWith(pull(ref), 'Unreachable', /self[- ]signed certificate/);
    await rejectsWith(pull(ref, { ca }), 'Unauthorized', /unauthorized.*no credentials for this registry/);
    await rejectsWith(
      pull(ref, { ca, credentials: () => ({ username: 'alice', password: 'wrong' }) }),
      'Unauthorized',
      /the credentials were refused/,
    );
    const img = await pull(ref, { ca, credentials: (r) => (r === locked.host ? locked.credentials : undefined) });
    assert.deepEqual(img.config.config?.Cmd, ['/bin/hello']);
  });

  it("token auth: an anonymous token for what is public, the user's for the rest, one token per scope", async () => {
    const asked = tokened.tokenRequests!.length; // the pushes asked for theirs
    const requests = () => tokened.tokenRequests!.slice(asked);
    const anonymous = new RegistryClient();
    const pub = await pullImage(parseReference(`${tokened.host}/public/app:v1`), anonymous, newStore());
    assert.deepEqual(pub.config.config?.Cmd, ['/bin/hello']);
    assert.deepEqual(requests(), ['anonymous repository:public/app:pull'], 'one token for the manifest and every blob');
    await rejectsWith(
      pullImage(parseReference(`${tokened.host}/private/app:v1`), anonymous, newStore()),
      'Unauthorized',
      /no credentials for this registry/,
    );
    const wrong = new RegistryClient({ credentials: () => ({ username: 'alice', password: 'nope' }) });
    await rejectsWith(
      pullImage(parseReference(`${tokened.host}/private/app:v1`), wrong, newStore()),
      'Unauthorized',
      /the token service answered 401; unauthorized: invalid username or password/,
    );
    const alice = new RegistryClient({ credentials: () => tokened.credentials });
    const priv = await pullImage(parseReference(`${tokened.host}/private/app:v1`), alice, newStore());
    assert.equal(priv.manifest.layers.length, 2);
    assert.equal(requests().at(-1), 'alice repository:private/app:pull');
  });

  it('pushes where credentials are asked for (htpasswd over TLS, a token service): refused without, whole with', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'asb-push-'));
    dirs.push(dir);
    // An image here, under names of the two locked registries (as `asb image build -t` leaves one).
    const here = await new ImageStore(dir, new RegistryClient()).pull(`${open.host}/team/layered:v1`);
    const anonymous = new ImageStore(dir, new RegistryClient({ ca: () => locked.ca }));
    for (const reg of [locked, tokened]) {
      const ref = `${reg.host}/pushed/app:v1`;
      await anonymous.add(ref, here.config, here.manifest.layers);
      await rejectsWith(anonymous.push(ref), 'Unauthorized', /no credentials for this registry/);
      const wrong = new RegistryClient({
        ca: () => locked.ca,
        credentials: () => ({ username: 'alice', password: 'x' }),
      });
      await rejectsWith(new ImageStore(dir, wrong).push(ref), 'Unauthorized', /refused|invalid username or password/);
      const alice = new RegistryClient({
        ca: () => locked.ca,
        credentials: (r) => (r === reg.host ? reg.credentials : undefined),
      });
      const pushed = await new ImageStore(dir, alice).push(ref);
      const fresh = mkdtempSync(join(tmpdir(), 'asb-pushed-'));
      dirs.push(fresh);
      const back = await new ImageStore(fresh, alice).pull(ref);
      assert.equal(back.digest, pushed.digest, `${ref}: the registry serves the manifest pushed`);
      assert.equal(
        readFileSync(join(await new ImageStore(fresh, alice).rootfs(back), 'etc', 'motd'), 'utf8'),
        'welcome\n',
      );
    }
    assert.ok(
      tokened.tokenRequests!.some((r) => /^alice repository:pushed\/app:(pull,push|push,pull)$/.test(r)),
      `a token to push, for alice: ${tokened.tokenRequests!.join('; ')}`,
    );
  });

  it('an unreachable registry says so', async () => {
    const srv = await startRegistry();
    const host = srv.host;
    await srv.stop();
    await rejectsWith(pull(`${host}/team/app:v1`, { timeoutMs: 2000 }), 'Unreachable', /cannot reach/);
  });

  it('a tampered blob is refused and nothing of it is kept', async () => {
    const reg = await startRegistry();
    try {
      await pushImage(reg, 'team/app', 'v1', [base]);
      const store = newStore();
      const client = new RegistryClient();
      const resolved = await client.resolve(parseReference(`${reg.host}/team/app:v1`));
      const layer = resolved.manifest.layers[0]!.digest.slice(7);
      // The registry's own copy changed behind its back (a broken disk, a hostile mirror).
      const data = join(reg.dataDir, 'docker/registry/v2/blobs/sha256', layer.slice(0, 2), layer, 'data');
      assert.ok(existsSync(data), data);
      writeFileSync(data, Buffer.alloc(resolved.manifest.layers[0]!.size, 7));
      await rejectsWith(pullImage(parseReference(`${reg.host}/team/app:v1`), client, store), 'BadDigest', /refused/);
      assert.equal(store.has(`sha256:${layer}`), false);
      assert.equal(store.has(resolved.digest), false, 'no manifest of an image whose blobs are not all there');
      assert.deepEqual(readdirSync(store.tmp), [], 'no partial download left');
    } finally {
      await reg.stop();
    }
  });

  it('a manifest that does not match its digest is refused, by tag and by digest', async () => {
    const reg = await startRegistry();
    try {
      await pushImage(reg, 'team/app', 'v1', [base]);
      const client = new RegistryClient();
      const ref = parseReference(`${reg.host}/team/app:v1`);
      const { digest, bytes } = await client.resolve(ref);
      const hex = digest.slice(7);
      const data = join(reg.dataDir, 'docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex, 'data');
      // Same length, still JSON, one layer's size changed: what a hostile mirror would serve.
      const forged = bytes.toString('utf8').replace(/"size":(\d)/, (_m, d: string) => `"size":${(Number(d) + 1) % 10}`);
      assert.notEqual(forged, bytes.toString('utf8'));
      writeFileSync(data, forged);
      await rejectsWith(client.resolve(ref), 'BadDigest', /has digest sha256:[a-f0-9]{64}: refused/);
      await rejectsWith(client.resolve(parseReference(`${reg.host}/team/app@${digest}`)), 'BadDigest', /refused/);
    } finally {
      await reg.stop();
    }
  });

  it('twenty pulls of one image at once download each blob once', async () => {
    const store = newStore();
    const client = new RegistryClient();
    let fetched = 0;
    const blob = client.blob.bind(client);
    client.blob = async (ref, digest) => {
      fetched++;
      return blob(ref, digest);
    };
    const progress: PullProgress[] = [];
    const imgs = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        pullImage(parseReference(`${open.host}/team/layered:v1`), client, store, {
          onProgress: i === 0 ? (p) => progress.push(p) : undefined,
        }),
      ),
    );
    assert.equal(new Set(imgs.map((i) => i.digest)).size, 1);
    assert.equal(fetched, 1 + imgs[0]!.manifest.layers.length, 'the config and each layer, once');
    assert.equal(progress.filter((p) => p.type === 'layer-done').length, 2, 'each layer reported done');
    // Pulled again: nothing is downloaded.
    await pullImage(parseReference(`${open.host}/team/layered:v1`), client, store);
    assert.equal(fetched, 1 + imgs[0]!.manifest.layers.length);
  });

  it('a download cut midway publishes nothing, and the next one completes it', async () => {
    const store = newStore();
    const bytes = Buffer.from('the whole blob, all of it');
    const digest = `sha256:${(await import('node:crypto')).createHash('sha256').update(bytes).digest('hex')}`;
    const cut = async () =>
      Readable.from(
        (async function* () {
          yield bytes.subarray(0, 8);
          throw new Error('connection reset');
        })(),
      );
    await assert.rejects(store.ensure(digest, bytes.length, cut), /connection reset/);
    assert.equal(store.has(digest), false);
    assert.deepEqual(readdirSync(store.tmp), []);
    await store.ensure(digest, bytes.length, async () => Readable.from([bytes]));
    assert.deepEqual(await store.read(digest), bytes);
    // What a killed process left is gone when a store opens the directory again; what a live
    // one is writing (an engine and `asb image pull` share the store) is not touched.
    const other = spawn('sleep', ['60'], { stdio: 'ignore' });
    const theirs = join(store.root, 'tmp', `${other.pid}-live`);
    mkdirSync(theirs);
    writeFileSync(join(theirs, 'downloading'), 'partial');
    writeFileSync(join(store.root, 'tmp', 'left-by-a-kill'), 'partial');
    const reopened = new BlobStore(store.root);
    assert.deepEqual(
      readdirSync(join(store.root, 'tmp')).sort(),
      [`${other.pid}-live`, ...[store.tmp, reopened.tmp].map((d) => d.split('/').pop()!)].sort(),
    );
    assert.ok(reopened.has(digest));
    other.kill('SIGKILL');
    await new Promise((r) => other.once('exit', r));
    new BlobStore(store.root);
    assert.equal(existsSync(theirs), false, 'gone with its process');
  });
});
