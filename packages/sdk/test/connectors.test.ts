// A connector plugs into Sandbox by the connection's kind: Sandbox.create/connect/list go to it,
// the runtime calls go to the connection it hands over (a real HTTP server here), the lifecycle
// calls to its control.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Sandbox, registerConnector, InvalidError, type SandboxControl, type SandboxInfo } from '../src/index.ts';

describe('connectors', () => {
  let server: Server;
  const seen: string[] = [];
  let url = '';

  before(async () => {
    server = createServer((req, res) => {
      seen.push(`${req.method} ${req.url} ${req.headers['x-sandbox-id']}`);
      req.resume();
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end('[{"name":"f","size":1,"type":"file","mod_time":0}]');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  it("routes create, connect and lifecycle calls to the connector of the connection's kind", async () => {
    const calls: string[] = [];
    const info = (name: string): SandboxInfo => ({
      id: name,
      name,
      namespace: 'ns',
      uid: 'u',
      phase: 'Running',
      ready: true,
      message: '',
      image: 'i',
      createdAt: '',
    });
    const control = (name: string): SandboxControl => ({
      refresh: async () => info(name),
      suspend: async () => ({ suspended: true }),
      resume: async () => ({ resumed: true, restoredFromSnapshot: false }),
      reset: async () => info(name),
      kill: async () => {
        calls.push(`kill ${name}`);
      },
      close: async () => {
        calls.push(`close ${name}`);
      },
    });
    registerConnector('test', (config) => ({
      async create(opts) {
        calls.push(`create ${opts.template} ${(config as { kind: string; region?: string }).region}`);
        return {
          info: info('made'),
          conn: { url, token: 't', namespace: 'ns', requestTimeoutMs: 5000 },
          control: control('made'),
        };
      },
      async connect(id) {
        calls.push(`connect ${id}`);
        return {
          info: info(id),
          conn: { url, token: 't', namespace: 'ns', requestTimeoutMs: 5000 },
          control: control(id),
        };
      },
    }));
    const connection = { kind: 'test', region: 'r1' };
    const sb = await Sandbox.create({ connection, template: 'tpl' });
    assert.equal(sb.id, 'made');
    assert.deepEqual(await sb.files.list('.'), [{ name: 'f', size: 1, type: 'file', mod_time: 0 }]);
    assert.deepEqual(seen, ['GET /list/ made'], 'through the connection it handed over, for its sandbox');
    await sb.kill();
    const again = await Sandbox.connect('other', { connection });
    await again.close();
    assert.deepEqual(calls, ['create tpl r1', 'kill made', 'connect other', 'close other']);
    await assert.rejects(Sandbox.list({ connection }), InvalidError);
  });

  it('refuses a kind nobody registered, naming the known ones', async () => {
    await assert.rejects(
      Sandbox.create({ connection: { kind: 'nowhere' } }),
      /no connector for connection kind "nowhere" \(known: local, kubernetes/,
    );
  });
});
