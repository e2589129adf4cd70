// The container images: no registry can be reached here, so the Dockerfiles are linted and the
// artefacts they package (dist/ bundles, `npm run build`) are run directly, as the images would.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { processServiceDefinition } from '../../runtime/src/sandboxd/proto.ts';
import net from 'node:net';

const root = new URL('../../../', import.meta.url).pathname;
const images = readdirSync(`${root}images`);

/** Problems in one Dockerfile, as a linter (hadolint's main rules) would report them. */
export function lintDockerfile(text: string): string[] {
  const problems: string[] = [];
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const froms = lines.filter((l) => /^FROM\s/i.test(l));
  if (!froms.length) problems.push('no FROM');
  // A base named by a global ARG is checked by its default (what a plain build uses); one named by
  // an earlier stage is that stage's.
  const firstFrom = lines.findIndex((l) => /^FROM\s/i.test(l));
  const args = new Map(
    lines
      .slice(0, Math.max(firstFrom, 0))
      .map((l) => /^ARG\s+(\w+)=(\S+)$/i.exec(l))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => [m[1]!, m[2]!]),
  );
  const stages = new Set<string>();
  for (const f of froms) {
    const [, named, , stage] = f.split(/\s+/);
    const image = named!.replace(/\$\{(\w+)\}|\$(\w+)/g, (all, a?: string, b?: string) => args.get(a ?? b!) ?? all);
    if (stage) stages.add(stage.toLowerCase());
    if (stages.has(image.toLowerCase()) && image.toLowerCase() !== stage?.toLowerCase()) continue;
    if (image.includes('$')) problems.push(`${named}: an ARG with no default`);
    else if (!/:[\w.-]+$|@sha256:/.test(image)) problems.push(`${image}: pin a tag`);
    if (/:latest$/.test(image)) problems.push(`${image}: not :latest`);
  }
  const lastFrom =
    lines
      .map((l, i) => (/^FROM\s/i.test(l) ? i : -1))
      .filter((i) => i >= 0)
      .at(-1) ?? 0;
  const finalStage = lines.slice(lastFrom);
  const user = finalStage.filter((l) => /^USER\s/i.test(l)).at(-1);
  if (!user) problems.push('the final stage sets no USER (it would run as root)');
  else if (/^USER\s+(root|0)(:|$)/i.test(user)) problems.push('USER is root');
  for (const l of lines) {
    if (/^ADD\s+https?:/i.test(l)) problems.push('ADD of a URL: use COPY of a checked file');
    if (/^(CMD|ENTRYPOINT)\s+[^[]/i.test(l))
      problems.push(`${l.split(/\s/)[0]} in shell form: use the exec form (signals reach the process)`);
    if (/\bsudo\b/.test(l)) problems.push('sudo');
    if (/apt-get install/.test(l) && !/--no-install-recommends/.test(l))
      problems.push('apt-get install without --no-install-recommends');
  }
  if (!lines.some((l) => /^EXPOSE\s/i.test(l))) problems.push('no EXPOSE');
  return problems;
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

async function waitHttp(url: string, init?: RequestInit): Promise<Response> {
  for (let i = 0; i < 100; i++) {
    try {
      return await fetch(url, init);
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(`${url} never answered`);
}

describe('container images', () => {
  it('has the five images: runtime-python, runtime-go, sandboxd, controller, router', () => {
    assert.deepEqual(images.sort(), ['controller', 'router', 'runtime-go', 'runtime-python', 'sandboxd']);
  });

  for (const name of images) {
    it(`lints images/${name}/Dockerfile, and what it copies exists after the build`, () => {
      const text = readFileSync(`${root}images/${name}/Dockerfile`, 'utf8');
      assert.deepEqual(lintDockerfile(text), []);
      for (const m of text.matchAll(/^COPY\s+(?!--from)(\S+)/gm))
        assert.ok(existsSync(`${root}${m[1]}`), `${m[1]} (run npm run build)`);
    });
  }

  it('the linter finds what it should', () => {
    assert.deepEqual(lintDockerfile('FROM node\nCMD node x.js\n'), [
      'node: pin a tag',
      'the final stage sets no USER (it would run as root)',
      'CMD in shell form: use the exec form (signals reach the process)',
      'no EXPOSE',
    ]);
    // Bases named by ARGs are checked by their defaults; an earlier stage needs no tag.
    const staged = 'ARG BASE=node:latest\nARG CC\nFROM ${BASE} AS b\nFROM $CC AS c\nFROM b\nUSER 1\nEXPOSE 1\n';
    assert.deepEqual(lintDockerfile(staged), ['node:latest: not :latest', '$CC: an ARG with no default']);
  });

  it("the agent's bundle (the images' --legacy-listen) serves upstream's runtime API, ready on GET /", async () => {
    const port = await freePort();
    const agent = spawn(process.execPath, [`${root}dist/agent.cjs`, '--listen', `127.0.0.1:${port}`], {
      env: { PATH: process.env.PATH!, SANDBOX_BASE_DIR: '/tmp' },
      stdio: 'ignore',
    });
    try {
      const ready = await waitHttp(`http://127.0.0.1:${port}/`);
      assert.deepEqual(await ready.json(), { status: 'ok', message: 'Sandbox Runtime is active.' });
      const exec = await fetch(`http://127.0.0.1:${port}/execute`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{"command":"echo from-the-image"}',
      });
      assert.equal(((await exec.json()) as { stdout: string }).stdout, 'from-the-image\n');
    } finally {
      agent.kill();
    }
  });

  it("the runtime images' command also serves upstream's sandboxd: gRPC and REST over the same files", async () => {
    // The images' CMD, with its ports and root moved where a test may listen and write.
    const cmd = JSON.parse(
      /^CMD\s+(\[.*\])$/m.exec(readFileSync(`${root}images/runtime-python/Dockerfile`, 'utf8'))![1]!,
    );
    assert.deepEqual(cmd, ['node', '/opt/asb/sandboxd.cjs', '--root-dir', '/app', '--legacy-listen', '0.0.0.0:8888']);
    assert.equal(
      readFileSync(`${root}images/runtime-go/Dockerfile`, 'utf8').match(/^CMD .*$/m)![0],
      `CMD ${JSON.stringify(cmd).replace(/,/g, ', ')}`,
    );
    const [legacy, rest, grpcPort] = [await freePort(), await freePort(), await freePort()];
    const dir = mkdtempSync(join(tmpdir(), 'asb-image-sandboxd-'));
    const daemon = spawn(
      process.execPath,
      [
        `${root}dist/sandboxd.cjs`,
        '--root-dir',
        dir,
        '--legacy-listen',
        `127.0.0.1:${legacy}`,
        '--listen-host',
        '127.0.0.1',
        '--rest-port',
        String(rest),
        '--grpc-port',
        String(grpcPort),
      ],
      { env: { PATH: process.env.PATH!, SANDBOX_BASE_DIR: dir }, stdio: 'ignore' },
    );
    const exited = new Promise((r) => daemon.once('exit', (code) => r(code)));
    try {
      assert.equal(((await (await waitHttp(`http://127.0.0.1:${rest}/v1/health`)).json()) as any).status, 'ok');
      assert.equal((await waitHttp(`http://127.0.0.1:${legacy}/`)).status, 200);
      const put = await fetch(`http://127.0.0.1:${rest}/v1/files/from-rest.txt`, {
        method: 'PUT',
        body: 'via sandboxd',
      });
      assert.equal(put.status, 204);
      // The same file through the older API, and through the gRPC ProcessService.
      assert.equal(await (await fetch(`http://127.0.0.1:${legacy}/download/from-rest.txt`)).text(), 'via sandboxd');
      const Client = grpc.makeGenericClientConstructor(processServiceDefinition(), 'ProcessService');
      const client = new Client(`127.0.0.1:${grpcPort}`, grpc.credentials.createInsecure()) as any;
      try {
        const res: any = await new Promise((resolve, reject) =>
          client.Execute({ config: { command: ['cat', 'from-rest.txt'] } }, (err: Error | null, r: unknown) =>
            err ? reject(err) : resolve(r),
          ),
        );
        assert.equal(res.stdout.toString(), 'via sandboxd');
      } finally {
        client.close();
      }
      daemon.kill('SIGTERM');
      assert.equal(await exited, 0);
    } finally {
      daemon.kill();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("the router image's bundle serves /healthz and wants its token", async () => {
    const port = await freePort();
    const router = spawn(process.execPath, [`${root}dist/router.mjs`], {
      env: { PATH: process.env.PATH!, PORT: String(port), HOST: '127.0.0.1', ROUTER_AUTH_TOKEN: 't0ken' },
      stdio: 'ignore',
    });
    try {
      assert.deepEqual(await (await waitHttp(`http://127.0.0.1:${port}/healthz`)).json(), { status: 'ok' });
      assert.equal((await fetch(`http://127.0.0.1:${port}/execute`, { headers: { 'x-sandbox-id': 'a' } })).status, 401);
    } finally {
      router.kill();
    }
    // Without a token (and without opting out) it refuses to start.
    const bare = spawnSync(process.execPath, [`${root}dist/router.mjs`], {
      env: { PATH: process.env.PATH!, PORT: '0' },
      encoding: 'utf8',
      timeout: 10_000,
    });
    assert.notEqual(bare.status, 0);
    assert.match(bare.stderr, /ROUTER_AUTH_TOKEN/);
  });

  it("the controller image's bundle takes upstream's flags", () => {
    const help = spawnSync(process.execPath, [`${root}dist/controller.mjs`, '--help'], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    assert.equal(help.status, 0, help.stderr);
    for (const flag of [
      '--leader-elect',
      '--leader-election-namespace',
      '--metrics-bind-address',
      '--health-probe-bind-address',
      '--extensions',
      '--sandbox-concurrent-workers',
    ])
      assert.match(help.stdout, new RegExp(flag));
  });
});
