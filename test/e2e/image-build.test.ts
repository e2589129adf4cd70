// `asb image build` as a user runs it: a Dockerfile on a base image from a registry on loopback,
// RUN steps under gVisor, COPY from the build context, from an earlier stage and from an image,
// ARGs from --build-arg; then a sandbox of the image it built.
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
    // Files only, no shell: an image COPY --from reads, never runs.
    await pushImage(reg, 'asb-test/files', '1', [
      { layers: [{ files: { 'share/tool.txt': 'from the files image\n' } }] },
    ]);
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

  it('builds several stages: FROM ${ARG} from --build-arg, COPY --from a stage and an image, ARGs in RUN only', () => {
    writeFileSync(
      join(ctx, 'Dockerfile.stages'),
      `ARG BASE=asb-test/never-pulled:0
ARG GLOBAL=global-default
FROM \${BASE} AS builder
ARG FROM_CLI=from-default
RUN mkdir /out && echo "built with $FROM_CLI" > /out/made.txt
FROM builder AS unused
RUN echo this stage is skipped && exit 1
FROM $BASE
ARG FROM_CLI
ARG GLOBAL
ARG SHADOWED=from-arg
ENV SHADOWED=from-env
RUN echo "RUN sees $FROM_CLI, $GLOBAL, $SHADOWED" > /run-saw.txt && busybox chown 1001:1001 /run-saw.txt
COPY --from=builder /out/made.txt \${DEST:-/opt}/
COPY --from=${reg.host}/asb-test/files:1 /share/tool.txt /opt/tool.txt
CMD ["cat", "/run-saw.txt"]
`,
    );
    const built = engine.asb(
      'image',
      'build',
      '-t',
      'localhost/asb-test/stages:1',
      '-f',
      join(ctx, 'Dockerfile.stages'),
      '--build-arg',
      `BASE=${reg.host}/asb-test/busybox:1`,
      '--build-arg',
      'FROM_CLI=from-cli',
      '--build-arg',
      'NOBODY_DECLARES=x',
      ctx,
    );
    assert.equal(built.status, 0, built.stderr);
    assert.match(built.stderr, /warning: build-arg\(s\) NOBODY_DECLARES not used/);
    assert.match(built.stderr, new RegExp(`STEP 3/16: FROM ${reg.host}/asb-test/busybox:1 AS builder`));
    assert.match(built.stderr, /skipping stage 1 \(unused\), line 6: the last stage does not use it/);
    assert.doesNotMatch(built.stderr, /this stage is skipped/);
    const buildDir = join(engine.home, 'build');
    const leftover = readFileSync('/proc/self/mounts', 'utf8')
      .split('\n')
      .filter((l) => l.split(' ')[1]?.startsWith(`${buildDir}/`));
    assert.deepEqual(leftover, [], "a build unmounts what it mounted (stages' roots, runsc's pinned netns)");
    const check =
      'cat /run-saw.txt /opt/made.txt /opt/tool.txt; echo "[$FROM_CLI$GLOBAL] $SHADOWED"; ls -ln /run-saw.txt';
    const ran = engine.asb('run', '--image', 'localhost/asb-test/stages:1', '--', 'sh', '-c', check);
    assert.equal(ran.status, 0, ran.stderr);
    const lines = ran.stdout.split('\n');
    assert.deepEqual(lines.slice(0, 4), [
      'RUN sees from-cli, global-default, from-env', // a stage's ARG NAME alone takes the global's value
      'built with from-cli',
      'from the files image',
      '[] from-env', // ARGs are not in the image's environment; ENV is
    ]);
    // A RUN as root has Docker's capabilities (in gVisor): it may chown, as Dockerfiles do.
    assert.match(lines[4]!, /^-\S+\s+\d+\s+1001\s+1001\s.*\/run-saw.txt$/);
  });

  it("COPY --from follows a stage's symlinks inside the stage's root, never to the host's files", () => {
    const build = (copies: string) => {
      writeFileSync(
        join(ctx, 'Dockerfile.links'),
        `FROM ${reg.host}/asb-test/busybox:1 AS links
RUN echo "the stage's hostname" > /etc/hostname \\
 && ln -s /etc /x && ln -s ../../../../../.. /srv/up && ln -s /etc/hostname /link
FROM ${reg.host}/asb-test/busybox:1
${copies}
`,
      );
      const file = join(ctx, 'Dockerfile.links');
      return engine.asb('image', 'build', '-t', 'localhost/asb-test/links:1', '-f', file, ctx);
    };
    const built = build(
      ['/x/hostname /from-x', '/srv/up/etc/hostname /from-up', '/link /from-link', '/x /etc-of-stage']
        .map((c) => `COPY --from=links ${c}`)
        .join('\n'),
    );
    assert.equal(built.status, 0, built.stderr);
    assert.notEqual(readFileSync('/etc/hostname', 'utf8'), "the stage's hostname\n");
    const ran = engine.asb(
      'run',
      '--image',
      'localhost/asb-test/links:1',
      '--',
      'sh',
      '-c',
      'cat /from-x /from-up /from-link; ls /etc-of-stage',
    );
    assert.equal(ran.status, 0, ran.stderr);
    assert.equal(
      ran.stdout,
      [
        "the stage's hostname",
        "the stage's hostname",
        "the stage's hostname",
        'group',
        'hostname',
        'os-release',
        'passwd',
        '',
      ].join('\n'),
    );
    // The host has an /etc/shadow; the stage has none, and a link to /etc does not reach the host's.
    const escape = build('COPY --from=links /x/shadow /shadow');
    assert.notEqual(escape.status, 0);
    assert.match(escape.stderr, /line 5: COPY \/x\/shadow: no such file in stage 0 \(links\)/);
  });

  it('FROM scratch: a static binary copied from a stage (a link to it as the file), --chown, run in a sandbox', () => {
    writeFileSync(
      join(ctx, 'Dockerfile.scratch'),
      `FROM ${reg.host}/asb-test/busybox:1 AS tools
FROM scratch
COPY --from=tools /bin/busybox /bin/sh /bin/
COPY --chown=1000:1001 hello.txt /data/
COPY --from=tools /etc/passwd /etc/group /etc/
`,
    );
    const file = join(ctx, 'Dockerfile.scratch');
    const built = engine.asb('image', 'build', '-t', 'localhost/asb-test/scratch:1', '-f', file, ctx);
    assert.equal(built.status, 0, built.stderr);
    const check = '/bin/busybox ls -ln /bin /data; /bin/busybox cat /data/hello.txt';
    const ran = engine.asb('run', '--image', 'localhost/asb-test/scratch:1', '--', 'sh', '-c', check);
    assert.equal(ran.status, 0, ran.stderr);
    // `ls -ln`: type and mode, links, uid, gid, size, date, name.
    const owners = Object.fromEntries(
      [...ran.stdout.matchAll(/^(.)\S+\s+\d+\s+(\d+)\s+(\d+)\s+\d+\s.*\s(\S+)$/gm)].map((m) => [
        m[4],
        `${m[1]} ${m[2]}:${m[3]}`,
      ]),
    );
    // /bin/sh, a link to busybox in the stage, is copied as the file it names (Docker follows a source's last link).
    assert.deepEqual(owners, { busybox: '- 0:0', sh: '- 0:0', 'hello.txt': '- 1000:1001' });
    assert.equal(ran.stdout.trim().split('\n').at(-1), 'copied from the context');
  });
});
