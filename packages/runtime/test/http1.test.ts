// The agent as Kubernetes runs it: HTTP/1.1 on a TCP port (here loopback), the bundle from
// dist/, upstream's runtime API shapes as the upstream Python client sends them.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';

const bundle = new URL('../../../dist/agent.cjs', import.meta.url).pathname;

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

describe('the agent over HTTP/1.1 (Kubernetes mode)', () => {
  let agent: ChildProcess;
  let base: string;
  const dir = mkdtempSync(join(tmpdir(), 'asb-agent-'));

  before(async () => {
    assert.ok(existsSync(bundle), 'run npm run build first');
    const port = await freePort();
    agent = spawn(process.execPath, [bundle, '--listen', `127.0.0.1:${port}`], {
      env: { PATH: process.env.PATH, SANDBOX_BASE_DIR: dir, ASB_MAX_UPLOAD_BYTES: '1048576' },
      stdio: 'ignore',
    });
    base = `http://127.0.0.1:${port}`;
    for (let i = 0; i < 100; i++) {
      try {
        if ((await fetch(`${base}/`)).ok) return;
      } catch {
        /* not yet */
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error('agent did not start');
  });
  after(() => {
    agent?.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers the readiness probe on /', async () => {
    assert.deepEqual(await (await fetch(`${base}/`)).json(), { status: 'ok', message: 'Sandbox Runtime is active.' });
  });

  it("uploads multipart files as upstream's client does, and downloads them byte for byte", async () => {
    const data = new Uint8Array(Array.from({ length: 70_000 }, (_, i) => (i * 31) % 256));
    const form = new FormData();
    form.append('file', new Blob([data]), 'sub/data.bin');
    const up = await fetch(`${base}/upload`, { method: 'POST', body: form });
    assert.equal(up.status, 200);
    assert.deepEqual(await up.json(), { message: "File 'sub/data.bin' uploaded successfully." });
    assert.deepEqual(new Uint8Array(readFileSync(join(dir, 'sub/data.bin'))), data);
    const down = await fetch(`${base}/download/${encodeURIComponent('sub/data.bin')}`);
    assert.equal(down.headers.get('content-type'), 'application/octet-stream');
    assert.deepEqual(new Uint8Array(await down.arrayBuffer()), data);
  });

  it("lists and checks paths with upstream's shapes", async () => {
    const list = (await (await fetch(`${base}/list/sub`)).json()) as Array<Record<string, unknown>>;
    assert.equal(list.length, 1);
    assert.deepEqual(Object.keys(list[0]!).sort(), ['mod_time', 'name', 'size', 'type']);
    assert.equal(list[0]!.type, 'file');
    assert.deepEqual(await (await fetch(`${base}/exists/sub%2Fdata.bin`)).json(), {
      path: 'sub/data.bin',
      exists: true,
    });
    assert.equal((await fetch(`${base}/list/nope`)).status, 404);
  });

  it('executes commands and reports exit codes', async () => {
    const r = await fetch(`${base}/execute`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ command: 'echo hi; echo err >&2; exit 5' }),
    });
    assert.deepEqual(await r.json(), { stdout: 'hi\n', stderr: 'err\n', exit_code: 5 });
  });

  it('refuses what it must', async () => {
    const form = new FormData();
    form.append('file', new Blob([new Uint8Array(2 * 1024 * 1024)]), 'big.bin');
    assert.equal((await fetch(`${base}/upload`, { method: 'POST', body: form })).status, 413);
    const escape = new FormData();
    escape.append('file', new Blob(['x']), '../escape.txt');
    const r = await fetch(`${base}/upload`, { method: 'POST', body: escape });
    assert.equal(r.status, 400);
    assert.equal(existsSync(join(dir, '../escape.txt')), false);
    assert.equal(
      (
        await fetch(`${base}/execute`, {
          method: 'POST',
          body: '{"command": 5}',
          headers: { 'content-type': 'application/json' },
        })
      ).status,
      422,
    );
    assert.equal((await fetch(`${base}/v1/processes/nope`)).status, 404);
  });
});
