// Exposed ports: a server listening inside a sandbox, on a port its template declares, is reached
// from the host through the engine with upstream's router headers (X-Sandbox-ID, X-Sandbox-Port),
// HTTP and WebSockets, though the sandbox has no network (the agent's tunnel to its loopback).
// And for a browser, a preview URL (http://<port>-<sandbox>.<namespace>.localhost:<engine port>/)
// with a token for that port of that sandbox only. What must hold: the request and its body arrive
// as sent, without the engine's token or the preview's; a port neither declared nor asked for is
// not reached, whatever listens there; nothing listening is a clear 502; without a token, or with
// another port's, nothing passes; the runtime API has no preview.
import { spawn } from 'node:child_process';
import http from 'node:http';
import { join } from 'node:path';
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
        self.send_header('x-seen-cookie', self.headers.get('cookie', ''))
        self.send_header('content-length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
ThreadingHTTPServer(('127.0.0.1', int(sys.argv[1])), H).serve_forever()
`;

const ASB = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '../../bin/asb');

/** A request to the engine as a browser sends it to a preview URL: the engine's address, the
 *  preview host's name (*.localhost resolves to the loopback in browsers and curl). */
function browse(
  url: string,
  opts: { method?: string; cookie?: string; body?: string; headers?: Record<string, string> } = {},
): Promise<{ status: number; headers: http.IncomingHttpHeaders; text: string }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port: u.port,
        method: opts.method ?? 'GET',
        path: u.pathname + u.search,
        headers: { host: u.host, ...(opts.cookie ? { cookie: opts.cookie } : {}), ...opts.headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString() }),
        );
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

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

  it('gives a preview URL for a port asked for, whose token opens that port of that sandbox only', async () => {
    // 9090 was reached by nothing above; getUrl exposes it.
    const url = await sb.getUrl(9090);
    const u = new URL(url);
    assert.equal(u.hostname, `9090-${sb.id}.default.localhost`);
    const token = u.searchParams.get('asb_preview')!;
    assert.ok(token.length >= 32, url);
    // The token in the URL once: it becomes a cookie of that host, and the browser is sent on without it.
    const first = await browse(`${u.origin}/hello?asb_preview=${token}`);
    assert.equal(first.status, 303);
    assert.equal(first.headers.location, '/hello');
    const cookie = String(first.headers['set-cookie']).split(';')[0]!;
    assert.equal(cookie, `asb_preview=${token}`);
    const page = await browse(`${u.origin}/hello`, { cookie });
    assert.equal(page.status, 200);
    assert.equal(page.text, 'hello from port 9090');
    // The sandbox's server sees its own cookies, never the preview's; the app's own Authorization
    // passes (the engine's never does: the first test).
    const echo = await browse(`${u.origin}/echo`, {
      method: 'POST',
      cookie: `theme=dark; ${cookie}`,
      body: 'x',
      headers: { authorization: 'Basic YXBwOnNlY3JldA==' },
    });
    assert.equal(echo.status, 201, echo.text);
    assert.equal(echo.headers['x-seen-cookie'], 'theme=dark');
    assert.ok((JSON.parse(String(echo.headers['x-seen'])) as string[]).includes('authorization'));
    // Now exposed for the header protocol too.
    assert.equal((await raw(t, '/hello', { headers: to(9090) })).text, 'hello from port 9090');
    // A WebSocket through the preview host, with the cookie.
    const ws = new WebSocket(`ws://127.0.0.1:${u.port}/ws`, { headers: { host: u.host, cookie } });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    ws.send('preview');
    assert.equal(
      await new Promise<string>((resolve) => ws.once('message', (d: Buffer) => resolve(d.toString()))),
      'PREVIEW',
    );
    ws.close();

    // Refused: no token, a wrong one, this token for another port or another sandbox, the runtime API.
    assert.equal((await browse(`${u.origin}/hello`)).status, 401);
    assert.equal((await browse(`${u.origin}/hello`, { cookie: 'asb_preview=wrong' })).status, 401);
    const port8080 = u.origin.replace('9090-', '8080-');
    assert.equal((await browse(`${port8080}/hello`, { cookie })).status, 401);
    assert.equal((await browse(`${port8080}/hello?asb_preview=${token}`)).status, 401);
    const other = await Sandbox.create({ ...t.conn, template: 'web' });
    assert.equal((await browse(`${u.origin.replace(sb.id, other.id)}/hello`, { cookie })).status, 401);
    // From another sandbox, neither this one's server nor the engine (and its preview hosts) is reachable.
    for (const port of [8080, Number(u.port)]) {
      const dial = await other.run(`python3 -c "import socket; socket.create_connection(('127.0.0.1', ${port}), 2)"`);
      assert.notEqual(dial.exitCode, 0, `another sandbox reached 127.0.0.1:${port}`);
    }
    await other.kill();
    const runtimeApi = u.origin.replace('9090-', '8888-');
    assert.equal((await browse(`${runtimeApi}/`, { cookie })).status, 401);
    const wsRefused = new WebSocket(`ws://127.0.0.1:${u.port}/ws`, { headers: { host: port8080.slice(7), cookie } });
    assert.equal(
      await new Promise<number>((resolve) => {
        wsRefused.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
        wsRefused.once('open', () => resolve(101));
      }),
      401,
    );

    // Listed, then taken back: neither way reaches it any more; a declared port stays.
    assert.deepEqual(
      (await sb.ports()).map((p) => p.port),
      [8888, 8080, 8081, 9090],
    );
    await sb.unexposePort(9090);
    assert.equal((await raw(t, '/hello', { headers: to(9090) })).status, 502);
    assert.equal((await browse(`${u.origin}/hello`, { cookie })).status, 502);
    await assert.rejects(sb.unexposePort(8080), /declared by its template/);
  });

  it('asb exec -d starts a server, asb url prints its preview URL, asb port lists and closes ports', async () => {
    const env = { ...process.env, ASB_ENGINE_URL: t.engine.url, ASB_TOKEN: t.engine.bearerToken };
    // Not spawnSync: the engine answering the CLI runs in this process.
    const asb = (...args: string[]) =>
      new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
        const child = spawn(process.execPath, [ASB, ...args], { env });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
        child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        child.on('close', (status) => resolve({ status, stdout, stderr }));
      });
    const started = await asb('exec', '-d', sb.id, '--', 'python3', '-m', 'http.server', '--bind', '127.0.0.1', '7070');
    assert.equal(started.status, 0, started.stderr);
    assert.match(started.stdout.trim(), /^\S+$/, 'asb exec -d prints the process id');
    const url = await asb('url', sb.id, '7070');
    assert.equal(url.status, 0, url.stderr);
    const printed = url.stdout.trim();
    assert.match(printed, new RegExp(`^http://7070-${sb.id}\\.default\\.localhost:\\d+/\\?asb_preview=`));
    const cookie = String((await browse(printed)).headers['set-cookie']).split(';')[0]!;
    let page = await browse(new URL(printed).origin + '/', { cookie });
    for (let i = 0; i < 50 && page.status === 502; i++) {
      await new Promise((r) => setTimeout(r, 100)); // the server still starting
      page = await browse(new URL(printed).origin + '/', { cookie });
    }
    assert.equal(page.status, 200, page.text);
    assert.match(page.text, /Directory listing/);
    const list = await asb('port', sb.id, '-o', 'json');
    assert.equal(list.status, 0, list.stderr);
    assert.deepEqual(
      (JSON.parse(list.stdout) as { items: Array<{ port: number }> }).items.map((p) => p.port),
      [8888, 8080, 8081, 7070],
    );
    assert.equal((await asb('port', sb.id, '7070', '--close')).status, 0);
    assert.equal((await raw(t, '/', { headers: to(7070) })).status, 502);
    const bad = await asb('url', sb.id, '70000');
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /not a TCP port/);
  });
});
