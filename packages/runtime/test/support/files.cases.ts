// Behaviour of the file routes, run against every way the agent is served (suite.ts).
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { execFileSync, spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  realpathSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import type { FileEntry, FileStat } from '../../src/replies.ts';
import { drain, json, readAll, TEST_LIMITS, type TestAgent } from './harness.ts';

const MAX_UPLOAD = Number(TEST_LIMITS.ASB_MAX_UPLOAD_BYTES);

/** A multipart body as a browser or upstream's Python client sends it. */
async function multipart(name: string, data: Uint8Array): Promise<{ body: Buffer; headers: Record<string, string> }> {
  const form = new FormData();
  form.append('file', new Blob([data]), name);
  const r = new Response(form);
  return { body: Buffer.from(await r.arrayBuffer()), headers: { 'content-type': r.headers.get('content-type')! } };
}

/** `total` bytes in chunks, with no length announced (chunked in HTTP/1.1, plain DATA in HTTP/2). */
async function* chunks(total: number, size = 64 * 1024): AsyncGenerator<Uint8Array> {
  for (let sent = 0; sent < total; sent += size) yield randomBytes(Math.min(size, total - sent));
}

export function fileCases(agent: () => TestAgent): void {
  it('round-trips a random MiB byte for byte through PUT and GET', async () => {
    const a = agent();
    const data = randomBytes(1024 * 1024);
    const put = await a.send('PUT', '/v1/files/bin%2Frandom.bin', { body: data });
    assert.equal(put.status, 201);
    assert.deepEqual(await json(put), { path: join(realpathSync(a.baseDir), 'bin/random.bin'), size: data.length });
    const got = await a.send('GET', '/v1/files/bin/random.bin');
    assert.equal(got.status, 200);
    assert.equal(got.headers['content-type'], 'application/octet-stream');
    assert.ok(data.equals(await readAll(got.body)));
    assert.deepEqual(readdirSync(join(a.baseDir, 'bin')), ['random.bin'], 'no temporary file is left behind');
  });

  it('sends exactly the bytes its content-length announced while the file keeps growing', async (t) => {
    const a = agent();
    const file = join(a.baseDir, 'growing.log');
    writeFileSync(file, Buffer.alloc(4 * 1024 * 1024));
    // A writer that appends all along, as a build log or a download in progress does.
    const writer = spawn('sh', ['-c', 'while :; do head -c 65536 /dev/zero; done >> growing.log'], {
      cwd: a.baseDir,
      stdio: 'ignore',
    });
    t.after(() => {
      writer.kill('SIGKILL');
    });
    for (const path of ['/v1/files/growing.log', '/download/growing.log', '/v1/files/growing.log']) {
      const res = await a.send('GET', path);
      assert.equal(res.status, 200);
      const announced = Number(res.headers['content-length']);
      assert.ok(announced >= 4 * 1024 * 1024, `content-length ${announced}`);
      const body = await readAll(res.body); // rejects on a stream reset or a cut connection
      assert.equal(body.length, announced, `${path}: the body has the length its header announced`);
    }
  });

  it('fails a download whose file shrinks under it, instead of ending it short as if whole', async () => {
    const a = agent();
    const file = join(a.baseDir, 'shrinking.bin');
    writeFileSync(file, Buffer.alloc(64 * 1024 * 1024));
    const res = await a.send('GET', '/v1/files/shrinking.bin');
    assert.equal(res.headers['content-length'], String(64 * 1024 * 1024));
    let received = 0;
    await assert.rejects(
      (async () => {
        for await (const chunk of res.body) {
          if (received === 0) truncateSync(file, 0); // the agent has read ahead a few MiB at most
          received += (chunk as Buffer).length;
        }
      })(),
    );
    assert.ok(received < 64 * 1024 * 1024, `received ${received}`);
    assert.equal(await drain(await a.send('GET', '/')), 200, 'the agent keeps serving');
  });

  it('answers 404 for a FIFO without blocking on it', async () => {
    const a = agent();
    execFileSync('mkfifo', [join(a.baseDir, 'pipe')]);
    const res = await a.send('GET', '/v1/files/pipe');
    assert.equal(res.status, 404);
    assert.equal((await json(res)).reason, 'NotFound');
  });

  it("round-trips a random MiB through upstream's multipart upload and download", async () => {
    const a = agent();
    const data = randomBytes(1024 * 1024);
    const up = await a.send('POST', '/upload', await multipart('up/data.bin', data));
    assert.equal(up.status, 200);
    assert.deepEqual(await json(up), { message: "File 'up/data.bin' uploaded successfully." });
    const down = await a.send('GET', '/download/up%2Fdata.bin');
    assert.equal(down.headers['content-type'], 'application/octet-stream');
    assert.ok(data.equals(await readAll(down.body)));
  });

  it('lists, checks, stats, makes and removes paths', async () => {
    const a = agent();
    assert.equal(await drain(await a.send('POST', '/v1/mkdir/tree%2Fa%2Fb')), 201);
    writeFileSync(join(a.baseDir, 'tree/f.txt'), 'four');
    assert.equal(
      await drain(await a.send('POST', '/v1/mkdir/tree%2Fa')),
      201,
      'mkdir of a directory that exists is fine (-p)',
    );
    // Over a file: 409 naming the path, not a 500.
    const overFile = await a.send('POST', '/v1/mkdir/tree%2Ff.txt');
    assert.equal(overFile.status, 409);
    assert.match(
      (await json<{ detail: string }>(overFile)).detail,
      /"tree\/f.txt" \(or a parent of it\) exists and is not a directory/,
    );
    const list = await json<FileEntry[]>(await a.send('GET', '/list/tree'));
    assert.deepEqual(
      list.map(({ name, size, type }) => ({ name, size: type === 'file' ? size : 0, type })),
      [
        { name: 'a', size: 0, type: 'directory' },
        { name: 'f.txt', size: 4, type: 'file' },
      ],
    );
    assert.equal(typeof list[1]!.mod_time, 'number');
    assert.deepEqual(await json(await a.send('GET', '/exists/tree%2Ff.txt')), { path: 'tree/f.txt', exists: true });
    assert.deepEqual(await json(await a.send('GET', '/exists/tree%2Fnope')), { path: 'tree/nope', exists: false });
    const st = await json<FileStat>(await a.send('GET', '/v1/stat/tree/f.txt'));
    assert.deepEqual([st.name, st.type, st.size], ['f.txt', 'file', 4]);
    assert.equal((await json<FileStat>(await a.send('GET', '/v1/stat/tree/a/b'))).type, 'directory');

    const nonEmpty = await a.send('DELETE', '/v1/files/tree');
    assert.equal(nonEmpty.status, 409);
    assert.equal((await json(nonEmpty)).reason, 'Conflict');
    assert.equal(await drain(await a.send('DELETE', '/v1/files/tree/f.txt')), 204);
    assert.equal(existsSync(join(a.baseDir, 'tree/f.txt')), false);
    assert.equal(await drain(await a.send('DELETE', '/v1/files/tree?recursive=1')), 204);
    assert.equal(existsSync(join(a.baseDir, 'tree')), false);
  });

  it('answers 404 NotFound for missing files and directories', async () => {
    const a = agent();
    for (const path of [
      '/v1/files/missing.txt',
      '/download/missing.txt',
      '/list/missing-dir',
      '/v1/stat/missing.txt',
    ]) {
      const res = await a.send('GET', path);
      assert.equal(res.status, 404, path);
      assert.equal((await json(res)).reason, 'NotFound', path);
    }
    assert.equal(await drain(await a.send('DELETE', '/v1/files/missing.txt')), 404);
  });

  it('refuses every path that leaves the base directory with 400 PathOutsideSandbox', async () => {
    const a = agent();
    const outside = join(dirname(a.baseDir), `outside-${randomBytes(4).toString('hex')}`);
    mkdirSync(join(a.baseDir, 'links'), { recursive: true });
    symlinkSync('/etc', join(a.baseDir, 'links/etc'));
    symlinkSync('/etc/passwd', join(a.baseDir, 'links/passwd'));
    symlinkSync(outside, join(a.baseDir, 'links/dangling')); // leads out, to nothing yet
    const attempts: Array<[string, string]> = [
      ['GET', '/v1/files/..%2F..%2F..%2Fetc%2Fpasswd'],
      ['GET', '/v1/files/../../../etc/passwd'],
      ['GET', '/download/../../etc/passwd'],
      ['GET', '/v1/files/%2e%2e/%2e%2e/%2e%2e/etc/passwd'],
      ['GET', '/v1/files/%2E%2E%2f%2E%2E%2f%2E%2E%2fetc%2fpasswd'],
      ['GET', '/v1/files/%2Fetc%2Fpasswd'],
      ['GET', '/download//etc/passwd'],
      ['GET', '/v1/files/links/etc/passwd'],
      ['GET', '/v1/files/links/passwd'],
      ['GET', '/list/links%2Fetc'],
      ['GET', '/exists/..%2F'],
      ['GET', '/v1/stat/links/passwd'],
      ['GET', '/v1/files/ok%00.txt'],
      ['PUT', '/v1/files/links/dangling'],
      ['PUT', '/v1/files/links/dangling/new.txt'],
      ['POST', '/v1/mkdir/links/dangling/sub'],
      ['DELETE', '/v1/files/links/etc/hostname'],
    ];
    for (const [method, path] of attempts) {
      const res = await a.send(method, path, method === 'PUT' ? { body: 'x' } : {});
      const body = await json(res);
      assert.deepEqual(
        [res.status, body.reason],
        [400, 'PathOutsideSandbox'],
        `${method} ${path}: ${JSON.stringify(body)}`,
      );
      assert.match(body.detail, /outside the sandbox/);
    }
    const escape = await a.send('POST', '/upload', await multipart('../escape.txt', Buffer.from('x')));
    assert.equal(escape.status, 400);
    assert.equal((await json(escape)).reason, 'PathOutsideSandbox');
    assert.equal(existsSync(join(dirname(a.baseDir), 'escape.txt')), false);
    assert.equal(existsSync(outside), false, 'nothing was written through the dangling link');
    const cwd = await a.send('POST', '/execute', { body: JSON.stringify({ command: 'pwd', cwd: '/etc' }) });
    assert.deepEqual([cwd.status, (await json(cwd)).reason], [400, 'PathOutsideSandbox']);
  });

  it('resolves .. that stays inside the base directory', async () => {
    const a = agent();
    writeFileSync(join(a.baseDir, 'inside.txt'), 'in');
    mkdirSync(join(a.baseDir, 'd'), { recursive: true });
    assert.equal((await readAll((await a.send('GET', '/v1/files/d/../inside.txt')).body)).toString(), 'in');
    assert.equal(
      (
        await readAll(
          (await a.send('GET', `/v1/files/${encodeURIComponent(join(realpathSync(a.baseDir), 'inside.txt'))}`)).body,
        )
      ).toString(),
      'in',
    );
  });

  it('refuses uploads over the limit with 413 and leaves nothing behind', async () => {
    const a = agent();
    const announced = await a.send('PUT', '/v1/files/big-announced.bin', { body: randomBytes(MAX_UPLOAD + 1) });
    assert.equal(announced.status, 413);
    assert.equal((await json(announced)).reason, 'PayloadTooLarge');
    const streamed = await a.send('PUT', '/v1/files/big%2Fstreamed.bin', { body: chunks(MAX_UPLOAD + 256 * 1024) });
    assert.equal(streamed.status, 413);
    assert.equal((await json(streamed)).reason, 'PayloadTooLarge');
    assert.deepEqual(readdirSync(join(a.baseDir, 'big')), [], 'neither the file nor its temporary part remains');
    assert.equal(existsSync(join(a.baseDir, 'big-announced.bin')), false);
    const form = await a.send('POST', '/upload', await multipart('big-form.bin', randomBytes(MAX_UPLOAD + 100 * 1024)));
    assert.equal(form.status, 413);
    assert.equal(existsSync(join(a.baseDir, 'big-form.bin')), false);
    const exact = await a.send('PUT', '/v1/files/exact.bin', { body: chunks(MAX_UPLOAD) });
    assert.equal(exact.status, 201, 'exactly the limit is allowed');
    assert.equal(readFileSync(join(a.baseDir, 'exact.bin')).length, MAX_UPLOAD);
  });
}
