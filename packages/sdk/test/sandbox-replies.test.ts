// The SDK reads the sandbox's replies (through the engine or the router) with the runtime's
// schemas: a malformed one is a clear SandboxError, never a value of the wrong shape. A real HTTP
// server on a real socket plays an engine whose sandbox answers badly.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Commands } from '../src/commands.ts';
import { Files } from '../src/files.ts';
import { SandboxError } from '../src/errors.ts';
import type { ResolvedConnection } from '../src/connection.ts';

describe('replies of the sandbox', () => {
  let server: Server;
  let conn: ResolvedConnection;
  const target = { id: 'sb', namespace: 'default' };
  const routes: Record<string, { type: string; body: string }> = {
    'POST /v1/exec': {
      type: 'application/x-ndjson',
      body: '{"type":"stdout","data":"hi\\n"}\n{"type":"exit","exitCode":"zero"}\n',
    },
    'GET /list/bad': { type: 'application/json', body: '[{"name":"a.txt","size":"big","type":"file","mod_time":1}]' },
    'GET /list/ok': {
      type: 'application/json',
      body: '[{"name":"a.txt","size":3,"type":"file","mod_time":1,"extra":true}]',
    },
    'GET /v1/processes': { type: 'application/json', body: '{"items":[]}' },
    'GET /exists/x': { type: 'application/json', body: '{"path":"x","exists":"yes"}' },
  };

  before(async () => {
    server = createServer((req, res) => {
      req.resume();
      const r = routes[`${req.method} ${decodeURIComponent(req.url ?? '')}`];
      if (!r) {
        res.writeHead(404, { 'content-type': 'application/json' }).end('{"reason":"NotFound","message":"no"}');
        return;
      }
      res.writeHead(200, { 'content-type': r.type }).end(r.body);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    conn = {
      url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      token: 't',
      namespace: 'default',
      requestTimeoutMs: 5000,
    };
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  it('an exec stream with a malformed event', async () => {
    await assert.rejects(new Commands(conn, target).run('echo hi'), (err: Error) => {
      assert.ok(err instanceof SandboxError);
      assert.match(err.message, /run "echo hi" in sandbox sb: the sandbox sent a malformed output event \(exitCode: /);
      return true;
    });
  });

  it('a file list, a process list and an exists answer of the wrong shape', async () => {
    const files = new Files(conn, target);
    await assert.rejects(files.list('bad'), /list bad: the sandbox sent a malformed reply \(0\.size: /);
    await assert.rejects(files.exists('x'), /check x: the sandbox sent a malformed reply \(exists: /);
    await assert.rejects(
      new Commands(conn, target).list(),
      /list processes: the sandbox sent a malformed reply \(\(reply\): /,
    );
  });

  it('a well-formed reply passes, extra fields and all', async () => {
    assert.deepEqual(await new Files(conn, target).list('ok'), [
      { name: 'a.txt', size: 3, type: 'file', mod_time: 1, extra: true },
    ]);
  });
});
