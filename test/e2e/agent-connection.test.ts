// The engine–agent connection (HTTP/2 over the socketpair) under what a long agent session does to
// it: thousands of quick requests, requests given up half way, and an agent that dies. A sandbox
// whose agent lives must keep serving; one whose agent died must say so, and be deletable.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { Sandbox } from '@asb/sdk';
import { startTestEngine, raw, type TestEngine } from './harness.ts';

/** One keep-alive connection, one request at a time, as a client in a loop. */
function client(t: TestEngine, sandbox: string) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const url = new URL(t.engine.url);
  const headers = { authorization: `Bearer ${t.engine.bearerToken}`, 'x-sandbox-id': sandbox };
  return {
    get: (path: string) =>
      new Promise<number>((resolve, reject) => {
        http
          .get({ host: url.hostname, port: url.port, path, agent, headers }, (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode!));
          })
          .on('error', reject);
      }),
    /** Opens a response that would stream for ever, and goes away once its headers are in. */
    abandon: (path: string) =>
      new Promise<number>((resolve, reject) => {
        const req = http.get({ host: url.hostname, port: url.port, path, agent: false, headers }, (res) => {
          resolve(res.statusCode!);
          req.destroy();
        });
        req.on('error', reject);
      }),
    close: () => agent.destroy(),
  };
}

describe('the engine–agent connection', () => {
  let t: TestEngine;
  before(async () => {
    t = await startTestEngine();
  });
  after(async () => {
    await t?.stop();
  });

  it('carries thousands of requests one after another (each sandbox died after ~1,100)', async () => {
    await using sb = await Sandbox.create({ ...t.conn, template: 'python-runtime-template' });
    await sb.files.write('x', 'x');
    const c = client(t, sb.id);
    const codes = new Map<number, number>();
    for (let i = 0; i < 3000; i++) {
      const code = await c.get(i % 2 ? '/exists/x' : '/download/x');
      codes.set(code, (codes.get(code) ?? 0) + 1);
    }
    c.close();
    assert.deepEqual([...codes], [[200, 3000]]);
    assert.equal((await sb.refresh()).phase, 'Running');
  });

  it('reconnects when the agent drops the connection, and the sandbox keeps its processes', async () => {
    await using sb = await Sandbox.create({ ...t.conn, template: 'python-runtime-template' });
    const bg = await sb.commands.start('sleep 600');
    // Streams given up half way are reset; the agent's HTTP/2 stack ends the whole connection
    // (GOAWAY) past 1,000 resets at more than 33 a second. It does not end the sandbox.
    const c = client(t, sb.id);
    let answered = 0;
    for (let i = 0; i < 1500; i++) {
      const code = await c.abandon(`/v1/processes/${bg.id}/output?follow=1`).catch(() => 0);
      if (code === 200) answered++;
    }
    c.close();
    assert.ok(answered >= 1490, `${answered} of 1,500 follows answered`);
    assert.equal((await sb.run('echo still here')).stdout, 'still here\n');
    const procs = await sb.commands.list();
    assert.ok(
      procs.some((p) => p.id === bg.id && p.running),
      'the background process lived through it',
    );
    assert.equal((await sb.refresh()).phase, 'Running');
  });

  it("answers a port other than the runtime API's as upstream's router does", async () => {
    await using sb = await Sandbox.create({ ...t.conn, template: 'python-runtime-template' });
    assert.equal((await raw(t, '/', { sandbox: sb.id, headers: { 'x-sandbox-port': '8888' } })).status, 200);
    const other = await raw(t, '/', { sandbox: sb.id, headers: { 'x-sandbox-port': '9000' } });
    assert.equal(other.status, 502);
    assert.match(other.body.detail, /^Could not connect to the backend sandbox: sandbox-\w+ \(port 9000/);
    for (const bad of ['0', '70000', 'http', '-1']) {
      const r = await raw(t, '/', { sandbox: sb.id, headers: { 'x-sandbox-port': bad } });
      assert.equal(r.status, 400, bad);
      assert.equal(r.body.detail, 'Invalid port format.');
    }
  });

  it('says an agent killed from inside was killed, not that memory ran out, and deletes the sandbox', async () => {
    const sb = await Sandbox.create({ ...t.conn, template: 'python-runtime-template' });
    // The agent: PID 1 itself (Go), or node under asb-spawn (pid 2).
    await sb.run("pkill -9 -f '^(/.asb/asb-agent|/usr/bin/node) '").catch(() => undefined);
    let info = await sb.refresh();
    for (let i = 0; i < 100 && !(info.phase === 'Failed' && /agent was killed/.test(info.message ?? '')); i++) {
      await new Promise((r) => setTimeout(r, 100));
      info = await sb.refresh();
    }
    assert.equal(info.phase, 'Failed');
    assert.match(info.message ?? '', /the sandbox agent was killed \(killed by signal 9\)/);
    assert.doesNotMatch(info.message ?? '', /memory/);
    // A Failed sandbox is deleted as it is (asb rm connected and waited for it to be ready).
    await (await Sandbox.connect(sb.id, { ...t.conn, waitReadyMs: 0 })).kill();
    assert.equal((await raw(t, `/v1/sandboxes/default/${sb.id}`)).status, 404);
  });
});
