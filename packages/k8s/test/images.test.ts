// The container images: no registry can be reached here, so the Dockerfiles are linted and the
// artefacts they package (dist/ bundles, `npm run build`) are run directly, as the images would.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
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
  for (const f of froms) {
    const image = f.split(/\s+/)[1]!;
    if (!/:[\w.-]+$|@sha256:/.test(image)) problems.push(`${image}: pin a tag`);
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
  it('has the four images: runtime-python, runtime-go, controller, router', () => {
    assert.deepEqual(images.sort(), ['controller', 'router', 'runtime-go', 'runtime-python']);
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
  });

  it("the runtime images' command serves upstream's runtime API, ready on GET /", async () => {
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
