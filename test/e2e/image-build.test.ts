// `asb image build` as a user runs it: a Dockerfile on a base image from a registry on loopback,
// RUN steps under gVisor, COPY from the build context; then a sandbox of the image it built.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { ImageStore, RegistryClient } from '@asb/oci';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pushImage, startRegistry, type TestRegistry } from '../../packages/oci/test/support/registry.ts';
import { busybox } from '../support/images.ts';
import { startEngineProcess, type EngineProcess } from './harness.ts';

describe('asb image build', () => {
  let reg: TestRegistry;
  let engine: EngineProcess;
  const ctx = mkdtempSync(join(tmpdir(), 'asb-build-ctx-'));
  before(async () => {
    reg = await startRegistry();
    await pushImage(reg, 'asb-test/busybox', '1', [busybox({ Env: ['PATH=/bin'], WorkingDir: '/srv/app' })]);
    engine = await startEngineProcess();
    writeFileSync(join(ctx, 'hello.txt'), 'copied from the context\n');
    mkdirSync(join(ctx, 'dir'));
    writeFileSync(join(ctx, 'dir', 'data.txt'), 'a directory copied\n');
  });
  after(async () => {
    await engine?.stop();
    await reg?.stop();
    rmSync(ctx, { recursive: true, force: true });
  });

  it('builds FROM, ENV, WORKDIR, COPY, RUN (as root and as USER), CMD into an image a sandbox runs', () => {
    writeFileSync(
      join(ctx, 'Dockerfile'),
      `# a comment
FROM ${reg.host}/asb-test/busybox:1
ENV GREETING=built \\
    OTHER="two words"
WORKDIR /opt/app
COPY hello.txt ./
COPY dir /opt/data/
RUN echo "made by RUN as $(id -u) with $GREETING" > made.txt \\
 && rm /etc/os-release && mkdir -m 1777 /out \\
 && rm -r /srv/app && mkdir /srv/app && echo fresh > /srv/app/new.txt
USER app
RUN ["sh", "-c", "id -u > /out/as-user"]
CMD ["cat", "/opt/app/made.txt"]
`,
    );
    const built = engine.asb('image', 'build', '-t', 'localhost/asb-test/built:1', ctx);
    assert.equal(built.status, 0, built.stderr);
    assert.match(built.stdout.trim(), /^localhost\/asb-test\/built:1@sha256:[a-f0-9]{64}$/);
    assert.match(built.stderr, /STEP 1\/9: FROM /);
    assert.match(built.stderr, /STEP 9\/9: CMD \["cat","\/opt\/app\/made.txt"\]/);
    const check = [
      'cat made.txt hello.txt /opt/data/data.txt /out/as-user',
      'echo "$OTHER"',
      'id -u',
      'ls /srv/app',
      'test -e /etc/os-release && echo os-release-here || echo os-release-removed',
    ].join('; ');
    const ran = engine.asb('run', '--image', 'localhost/asb-test/built:1', '--', 'sh', '-c', check);
    assert.equal(ran.status, 0, ran.stderr);
    assert.equal(
      ran.stdout,
      [
        'made by RUN as 0 with built',
        'copied from the context',
        'a directory copied',
        '1001',
        'two words',
        '1001',
        'new.txt', // the directory removed and made again hides the base's files (opaque)
        'os-release-removed', // a file removed is whited out
        '',
      ].join('\n'),
    );
  });

  it('--push sends the image it built to the registry its tag names, where a pull finds it whole', async () => {
    writeFileSync(join(ctx, 'Dockerfile.push'), `FROM ${reg.host}/asb-test/busybox:1\nRUN echo pushed > /pushed.txt\n`);
    const ref = `${reg.host}/asb-test/pushed:1`;
    const built = engine.asb('image', 'build', '--push', '-t', ref, '-f', join(ctx, 'Dockerfile.push'), ctx);
    assert.equal(built.status, 0, built.stderr);
    const digest = built.stdout.trim().split('@')[1];
    const fresh = mkdtempSync(join(tmpdir(), 'asb-pulled-'));
    try {
      const store = new ImageStore(fresh, new RegistryClient());
      const pulled = await store.pull(ref);
      assert.equal(pulled.digest, digest, 'the registry serves the manifest that was built');
      assert.equal(readFileSync(join(await store.rootfs(pulled), 'pushed.txt'), 'utf8'), 'pushed\n');
      // Pushed again: the blobs are there already, only the manifest is sent.
      assert.equal(engine.asb('image', 'push', ref).status, 0);
    } finally {
      rmSync(fresh, { recursive: true, force: true });
    }
  });

  it('a RUN that fails, a COPY from outside the context and an unsupported instruction are errors that say where', () => {
    const build = (dockerfile: string) => {
      writeFileSync(join(ctx, 'Dockerfile.bad'), `FROM ${reg.host}/asb-test/busybox:1\n${dockerfile}\n`);
      return engine.asb('image', 'build', '-t', 'localhost/asb-test/bad:1', '-f', join(ctx, 'Dockerfile.bad'), ctx);
    };
    const failed = build('RUN echo trying && exit 3');
    assert.notEqual(failed.status, 0);
    assert.match(failed.stderr, /trying/);
    assert.match(failed.stderr, /line 2: RUN .*exit 3.*exited with code 3/);
    const outside = build('COPY ../../etc/passwd /x');
    assert.notEqual(outside.status, 0);
    assert.match(outside.stderr, /COPY \.\.\/\.\.\/etc\/passwd: outside the build context/);
    const unknown = build('HEALTHCHECK CMD true');
    assert.notEqual(unknown.status, 0);
    assert.match(unknown.stderr, /line 2: HEALTHCHECK is not supported/);
    assert.equal(engine.asb('image', 'ls', '-o', 'name').stdout.includes('bad'), false, 'nothing was stored');
    // No network in a RUN step: not even the host's loopback.
    const offline = build(`RUN wget -q -T 2 http://${reg.host}/v2/ && echo reached || echo no-network`);
    assert.equal(offline.status, 0, offline.stderr);
    assert.match(offline.stderr, /no-network/);
  });
});
