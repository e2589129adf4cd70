// A call's timeout and the caller's signal bound all of it, the answer's body included, and let
// go of it once it is over. A real HTTP server on a real socket plays an engine that stalls.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Commands } from '../src/commands.ts';
import { callJson, send, type ResolvedConnection } from '../src/connection.ts';
import { ndjsonEvents } from '../src/output.ts';
import { NotFoundError, TimeoutError } from '../src/errors.ts';

describe('bounds of a call', () => {
  let server: Server;
  let conn: ResolvedConnection;
  const target = { id: 'sb', namespace: 'default' };
  const held: ServerResponse[] = [];

  before(async () => {
    server = createServer((req, res) => {
      req.resume();
      if (req.url === '/silent') {
        held.push(res); // never answers
        return;
      }
      if (req.url === '/v1/exec') {
        // Headers and a first event, then nothing: a command whose stream stalls.
        res.writeHead(200, { 'content-type': 'application/x-ndjson' });
        res.write('{"type":"stdout","data":"started\\n"}\n');
        held.push(res);
        return;
      }
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"reason":"NotFound","message":"no such thing"}');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    conn = {
      url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      token: 't',
      namespace: 'default',
      requestTimeoutMs: 5000,
    };
  });
  after(() => {
    for (const res of held) res.destroy();
    server.closeAllConnections();
    return new Promise<void>((r) => server.close(() => r()));
  });

  it('a server that never answers: TimeoutError after timeoutMs', async () => {
    const t0 = Date.now();
    await assert.rejects(callJson({ ...conn, requestTimeoutMs: 300 }, '/silent', 'ask'), (err: Error) => {
      assert.ok(err instanceof TimeoutError, String(err));
      assert.match(err.message, /^ask: no answer within 300 ms/);
      return true;
    });
    assert.ok(Date.now() - t0 < 4000, 'bounded by its own timeout, not the connection default');
  });

  it('a stream that stalls after its headers: TimeoutError, the bound covering the body', async () => {
    const fast = { ...conn, requestTimeoutMs: 300 };
    const res = await send(fast, '/v1/exec', 'run', { method: 'POST' });
    const seen: string[] = [];
    await assert.rejects(
      (async () => {
        for await (const ev of ndjsonEvents(res, 'run')) if (ev.type === 'stdout') seen.push(ev.data);
      })(),
      (err: Error) => err instanceof TimeoutError && /^run: no answer within 300 ms/.test(err.message),
    );
    assert.deepEqual(seen, ['started\n'], 'what came before the stall was delivered');
    // Read as a Response (callJson), the same.
    await assert.rejects(callJson(fast, '/v1/exec', 'run', { method: 'POST' }), (err: Error) => {
      assert.ok(err instanceof TimeoutError, String(err));
      return true;
    });
  });

  it("the caller's signal ends the call, before or after the headers", async () => {
    const ac = new AbortController();
    const before = callJson(conn, '/silent', 'ask', { signal: ac.signal });
    const during = new Commands(conn, target).run('sleep 9', { signal: ac.signal });
    setTimeout(() => ac.abort(), 200);
    await Promise.all([
      assert.rejects(before, (err: Error) => err.name === 'AbortError'),
      assert.rejects(during, (err: Error) => err.name === 'AbortError'),
    ]);
    await assert.rejects(
      callJson(conn, '/silent', 'ask', { signal: ac.signal }),
      (err: Error) => err.name === 'AbortError',
    );
  });

  it('a refusal is a typed error with the server’s message', async () => {
    await assert.rejects(callJson(conn, '/nothing', 'get nothing'), (err: Error) => {
      assert.ok(err instanceof NotFoundError, String(err));
      assert.match(err.message, /no such thing/);
      return true;
    });
  });
});
