// Bad input gets a clear error and the engine keeps serving.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Sandbox, NotFoundError, InvalidError } from '@asb/sdk';
import { startTestEngine, raw, type TestEngine } from './harness.ts';

describe('bad input', () => {
  let t: TestEngine;
  let sb: Sandbox;
  before(async () => {
    process.env.ASB_MAX_UPLOAD_BYTES = String(1024 * 1024);
    t = await startTestEngine();
    sb = await Sandbox.create({ ...t.conn });
  });
  after(async () => {
    delete process.env.ASB_MAX_UPLOAD_BYTES;
    await t?.stop();
  });

  it('refuses path traversal in every file route with 400', async () => {
    for (const path of [
      '/download/..%2F..%2Fetc%2Fpasswd',
      '/list/..%2F..',
      '/exists/%2Fetc%2Fshadow',
      '/v1/files/..%2Fx',
      '/v1/stat/..%2F..%2Froot',
    ]) {
      const r = await raw(t, path, { sandbox: sb.id });
      assert.equal(r.status, 400, `${path}: ${r.text}`);
      assert.match(r.text, /outside/i);
    }
    await assert.rejects(sb.files.read('../../etc/passwd'), InvalidError);
  });

  it('answers 404 for an unknown sandbox, with the name in the message', async () => {
    const r = await raw(t, '/execute', {
      method: 'POST',
      sandbox: 'no-such-sandbox',
      body: '{"command":"true"}',
      headers: { 'content-type': 'application/json' },
    });
    assert.equal(r.status, 404);
    assert.match(r.text, /no-such-sandbox/);
    await assert.rejects(Sandbox.connect('no-such-sandbox', t.conn), NotFoundError);
  });

  it('refuses an oversized upload with 413', async () => {
    const r = await raw(t, '/v1/files/big.bin', { method: 'PUT', sandbox: sb.id, body: Buffer.alloc(2 * 1024 * 1024) });
    assert.equal(r.status, 413);
    assert.equal(await sb.files.exists('big.bin'), false);
  });

  it('refuses malformed JSON with 400, both at the engine and at the agent', async () => {
    const a = await raw(t, '/v1/sandboxes', {
      method: 'POST',
      body: '{"template":',
      headers: { 'content-type': 'application/json' },
    });
    assert.equal(a.status, 400);
    const b = await raw(t, '/execute', {
      method: 'POST',
      sandbox: sb.id,
      body: '{"command":',
      headers: { 'content-type': 'application/json' },
    });
    assert.equal(b.status, 400);
  });

  it('names the field of an invalid request', async () => {
    const r = await raw(t, '/v1/sandboxes', {
      method: 'POST',
      body: JSON.stringify({ template: 'python-runtime-template', name: 'Bad_Name' }),
      headers: { 'content-type': 'application/json' },
    });
    assert.equal(r.status, 422);
    assert.match(r.body.message, /metadata\.name/);
    const unknown = await raw(t, '/v1/sandboxes', {
      method: 'POST',
      body: JSON.stringify({ template: 'nope' }),
      headers: { 'content-type': 'application/json' },
    });
    assert.equal(unknown.status, 404);
    assert.match(unknown.body.message, /template "nope" not found/);
  });

  it('requires the bearer token', async () => {
    const res = await fetch(`${t.engine.url}/v1/sandboxes`);
    assert.equal(res.status, 401);
    const health = await fetch(`${t.engine.url}/healthz`);
    assert.equal(health.status, 200);
  });

  it('answers 403 when the sandbox user may not write a file, and the agent survives it', async () => {
    await sb.run('mkdir -p locked && chmod 555 locked');
    await assert.rejects(
      sb.files.write('locked/x.txt', 'nope'),
      (err: unknown) => err instanceof InvalidError && err.status === 403,
    );
    const r = await raw(t, '/v1/files/locked%2Fy.txt', { method: 'PUT', sandbox: sb.id, body: 'x' });
    assert.equal(r.status, 403);
    assert.equal(r.body.reason, 'PermissionDenied');
  });

  it('refuses broken URL encoding and hostile sandbox ids without a crash', async () => {
    const broken = await raw(t, '/download/%E0%A4%A', { sandbox: sb.id });
    assert.equal(broken.status, 422);
    for (const id of ['../etc', 'a'.repeat(300), '%00']) {
      const r = await raw(t, '/execute', {
        method: 'POST',
        sandbox: id,
        body: '{"command":"true"}',
        headers: { 'content-type': 'application/json' },
      });
      assert.equal(r.status, 404, `${id}: ${r.text}`);
    }
  });

  it('ends the commands in flight when their sandbox is deleted, instead of leaving them waiting', async () => {
    // The command's own deadline is far: ending before it means the deletion ended the call.
    const deadlineMs = 120_000;
    const victim = await Sandbox.create({ ...t.conn });
    let started!: () => void;
    const running = new Promise<void>((r) => (started = r));
    const t0 = Date.now();
    // Streamed (the SDK's /v1/exec: its answer has begun) and buffered (upstream's /execute: no
    // answer until the command ends).
    const streamed = victim.run('echo started; sleep 600', {
      timeoutMs: deadlineMs,
      onStdout: (text) => text.includes('started') && started(),
    });
    const buffered = raw(t, '/execute', {
      method: 'POST',
      sandbox: victim.id,
      body: JSON.stringify({ command: 'sleep 600', timeoutMs: deadlineMs }),
      headers: { 'content-type': 'application/json' },
    }).then(
      (r) => r,
      (err: Error) => err,
    );
    await running;
    // Watched before the deletion: the stream may end before kill() has its answer.
    const streamedEnds = assert.rejects(streamed, (err: Error) => {
      assert.doesNotMatch(err.message, /timed out after/);
      return true;
    });
    await victim.kill();
    await streamedEnds;
    const answer = await Promise.race([
      buffered,
      new Promise<'still waiting'>((r) => setTimeout(() => r('still waiting'), deadlineMs).unref()),
    ]);
    assert.notEqual(answer, 'still waiting', 'the buffered call was left waiting after the deletion');
    // Cut (a fetch error) or answered with an error status: either way, not left open.
    if (typeof answer === 'object' && !(answer instanceof Error))
      assert.ok(answer.status >= 500, `${answer.status} ${answer.text}`);
    assert.ok(Date.now() - t0 < deadlineMs, 'ended by the deletion, not by the deadline');
  });

  it('still serves after all of that', async () => {
    assert.equal((await sb.run('echo fine')).stdout, 'fine\n');
  });
});
