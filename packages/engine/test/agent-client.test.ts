// The engine's client of the in-sandbox agent reads the sandbox's replies with the runtime's
// schemas: a reply that is not what the agent's API says (a compromised or foreign agent) is an
// error that says so. A real HTTP/2 server over a real Unix socket plays the agent.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HealthResponse, ProcessList } from '@asb/runtime/replies';
import { AgentClient, AgentReplyError, AgentUnavailableError } from '../src/agent-client.ts';

describe('AgentClient.json', () => {
  const dir = mkdtempSync(join(tmpdir(), 'asb-agent-client-'));
  const path = join(dir, 'agent.sock');
  const replies: Record<string, [number, string]> = {
    '/': [200, '{"status":"ok","message":"Sandbox Runtime is active."}'],
    '/bad-health': [200, '{"status":"fine"}'],
    '/not-json': [200, 'hello from a shell'],
    '/v1/processes': [
      200,
      '[{"id":"p1","pid":"one","command":"sleep 1","running":true,"exitCode":null,"signal":null,"startedAt":"x"}]',
    ],
    '/missing': [404, '{"detail":"no route","reason":"NotFound","message":"no route"}'],
  };
  let server: Server;
  const sockets: Socket[] = [];
  let agent: AgentClient;

  before(async () => {
    const h2 = http2.createServer((req, res) => {
      if (req.url === '/silent') return; // never answers: no headers, no body
      if (req.url === '/stalls') return void res.writeHead(200).write('{"status":'); // headers, then nothing
      const [status, body] = replies[req.url] ?? [500, ''];
      res.writeHead(status, { 'content-type': 'application/json' }).end(body);
    });
    server = createServer((s) => {
      sockets.push(s);
      h2.emit('connection', s);
    });
    await new Promise<void>((r) => server.listen(path, r));
    const socket = connect(path);
    await new Promise<void>((r) => socket.once('connect', r));
    agent = new AgentClient(socket);
  });

  after(async () => {
    agent.close();
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('parses a reply that matches the schema', async () => {
    const res = await agent.json('GET', '/', HealthResponse);
    assert.ok(res.ok);
    assert.equal(res.body.message, 'Sandbox Runtime is active.');
  });

  it('refuses a reply of the wrong shape, naming the field', async () => {
    await assert.rejects(agent.json('GET', '/bad-health', HealthResponse), (err: Error) => {
      assert.ok(err instanceof AgentReplyError);
      assert.match(err.message, /^GET \/bad-health: the sandbox sent a malformed reply \(status: .*message: /);
      return true;
    });
    await assert.rejects(agent.json('GET', '/v1/processes', ProcessList), /malformed reply \(0\.pid: /);
  });

  it('refuses a reply that is not JSON', async () => {
    await assert.rejects(
      agent.json('GET', '/not-json', HealthResponse),
      /answered something that is not JSON: hello from a shell/,
    );
  });

  it('hands back an error reply for its status, unparsed', async () => {
    const res = await agent.json('GET', '/missing', HealthResponse);
    assert.equal(res.ok, false);
    assert.equal(res.status, 404);
  });

  it(
    'gives up on an agent that does not answer within the timeout, before or after its headers',
    { timeout: 10_000 },
    async () => {
      for (const path of ['/silent', '/stalls']) {
        await assert.rejects(agent.json('GET', path, HealthResponse, undefined, 200), (err: Error) => {
          assert.ok(err instanceof AgentUnavailableError, err.message);
          assert.match(err.message, new RegExp(`^GET ${path}: no answer from the sandbox agent within 200 ms`));
          return true;
        });
      }
      // The session is still good for the next call.
      assert.ok((await agent.json('GET', '/', HealthResponse)).ok);
    },
  );
});
