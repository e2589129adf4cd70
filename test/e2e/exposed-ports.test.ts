// Exposed ports: a server listening inside a sandbox, on a port its template declares, is reached
// from the host through the engine with upstream's router headers (X-Sandbox-ID, X-Sandbox-Port),
// HTTP and WebSockets, though the sandbox has no network (the agent's tunnel to its loopback).
// What must hold: the request and its body arrive as sent, without the engine's token; a port
// not declared is not reached, whatever listens there; nothing listening is a clear 502; the
// engine's token is still required.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import { Sandbox, apply } from '@asb/sdk';
import { startTestEngine, raw, type TestEngine } from './harness.ts';

// A server for the sandbox: GET /hello, POST /echo (the body back, and which headers it saw), and a
// WebSocket that echoes each text message upper-cased. Python's standard library only.
const SERVER = String.raw`
import base64, hashlib, json, struct, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_GET(self):
        if self.headers.get('upgrade', '').lower() == 'websocket':
            key = self.headers['sec-websocket-key']
            accept = base64.b64encode(hashlib.sha1((key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').encode()).digest()).decode()
            self.send_response(101)
            self.send_header('Upgrade', 'websocket')
            self.send_header('Connection', 'Upgrade')
            self.send_header('Sec-WebSocket-Accept', accept)
            self.end_headers()
            self.wfile.flush()
            while True:
                h = self.rfile.read(2)
                if len(h) < 2: return
                op, n = h[0] & 15, h[1] & 127
                if n == 126: n = struct.unpack('>H', self.rfile.read(2))[0]
                elif n == 127: n = struct.unpack('>Q', self.rfile.read(8))[0]
                mask = self.rfile.read(4)
                data = bytes(b ^ mask[i % 4] for i, b in enumerate(self.rfile.read(n)))
                if op == 8: return
                out = data.decode().upper().encode()
                self.wfile.write(bytes([0x81, len(out)]) + out if len(out) < 126 else bytes([0x81, 126]) + struct.pack('>H', len(out)) + out)
                self.wfile.flush()
        body = b'hello from port ' + str(self.server.server_port).encode()
        self.send_response(200)
        self.send_header('content-length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_POST(self):
        body = self.rfile.read(int(self.headers['content-length']))
        self.send_response(201)
        self.send_header('x-seen', json.dumps(sorted(k.lower() for k in self.headers.keys())))
        self.send_header('content-length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
ThreadingHTTPServer(('127.0.0.1', int(sys.argv[1])), H).serve_forever()
`;

describe('exposed ports', () => {
  let t: TestEngine;
  let sb: Sandbox;
  const to = (port: number, extra: Record<string, string> = {}) => ({
    'x-sandbox-id': sb.id,
    'x-sandbox-port': String(port),
    ...extra,
  });
  before(async () => {
    t = await startTestEngine();
    await apply(
      `apiVersion: extensions.agents.x-k8s.io/v1alpha1
kind: SandboxTemplate
metadata: { name: web }
spec:
  podTemplate:
    spec:
      containers:
      - name: main
        image: registry.k8s.io/agent-sandbox/python-runtime-sandbox:v0.1.0
        ports: [{ containerPort: 8888 }, { containerPort: 8080 }, { containerPort: 8081 }]
`,
      t.conn,
    );
    sb = await Sandbox.create({ ...t.conn, template: 'web' });
    await sb.files.write('server.py', SERVER);
    for (const port of [8080, 9090]) await sb.commands.start(`python3 server.py ${port}`);
    // Listening once a connection from inside the sandbox is answered.
    const up = await sb.run(
      'for i in $(seq 100); do python3 -c "import socket; [socket.create_connection((\'127.0.0.1\', p)) for p in (8080, 9090)]" 2>/dev/null && exit 0; sleep 0.1; done; exit 1',
    );
    assert.equal(up.exitCode, 0, 'the servers in the sandbox did not start listening');
  });
  after(async () => {
    await t?.stop();
  });

  it('reaches a declared port over HTTP, the body whole, without the engine token or the routing headers', async () => {
    const hello = await raw(t, '/hello', { headers: to(8080) });
    assert.equal(hello.status, 200);
    assert.equal(hello.text, 'hello from port 8080');
    const payload = randomBytes(1024 * 1024).toString('base64');
    const res = await fetch(`${t.engine.url}/echo`, {
      method: 'POST',
      body: payload,
      headers: { authorization: `Bearer ${t.engine.bearerToken}`, ...to(8080), 'x-custom': 'kept' },
    });
    assert.equal(res.status, 201);
    assert.equal(await res.text(), payload);
    const seen = JSON.parse(res.headers.get('x-seen')!) as string[];
    assert.ok(seen.includes('x-custom'), `the server saw ${seen.join(', ')}`);
    assert.ok(!seen.includes('authorization'), 'the engine token reached the sandbox');
    assert.ok(!seen.some((h) => h.startsWith('x-sandbox-')), `routing headers reached the sandbox: ${seen.join(', ')}`);
  });

  it('carries a WebSocket to a declared port', async () => {
    const ws = new WebSocket(t.engine.url.replace(/^http/, 'ws') + '/ws', {
      headers: { authorization: `Bearer ${t.engine.bearerToken}`, ...to(8080) },
    });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    const answers: string[] = [];
    for (const m of ['ping', 'x'.repeat(1000)]) {
      ws.send(m);
      answers.push(await new Promise<string>((resolve) => ws.once('message', (d: Buffer) => resolve(d.toString()))));
    }
    assert.deepEqual(answers, ['PING', 'X'.repeat(1000)]);
    ws.close();
  });

  it('does not reach a port the sandbox does not declare, though a server listens there', async () => {
    const res = await raw(t, '/hello', { headers: to(9090) });
    assert.equal(res.status, 502);
    assert.match(res.body.message, /port 9090 is not exposed/);
    const ws = new WebSocket(t.engine.url.replace(/^http/, 'ws') + '/ws', {
      headers: { authorization: `Bearer ${t.engine.bearerToken}`, ...to(9090) },
    });
    const status = await new Promise<number>((resolve) => {
      ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.once('open', () => resolve(101));
    });
    assert.equal(status, 502);
  });

  it('answers a declared port where nothing listens with 502, and wants the engine token', async () => {
    const nothing = await raw(t, '/hello', { headers: to(8081) });
    assert.equal(nothing.status, 502);
    assert.match(nothing.body.message, /nothing listens on port 8081/);
    const anonymous = await fetch(`${t.engine.url}/hello`, { headers: to(8080) });
    assert.equal(anonymous.status, 401);
    const ws = new WebSocket(t.engine.url.replace(/^http/, 'ws') + '/ws', { headers: to(8080) });
    const status = await new Promise<number>((resolve) => {
      ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.once('open', () => resolve(101));
    });
    assert.equal(status, 401);
    // The runtime API is untouched.
    assert.equal((await sb.run('echo ok')).stdout, 'ok\n');
  });
});
