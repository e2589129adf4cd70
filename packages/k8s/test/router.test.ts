// The sandbox router over real sockets: in front of our runtime agent (HTTP/1.1 on loopback, as
// in a Kubernetes pod), of a header-echoing backend, and of a WebSocket server.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, WebSocket } from 'ws';
import { configFromEnv, createAgent, requestHandler, serveHttp1 } from '@asb/runtime';
import { createRouter, isPrivatePodIp, parseBackend, targetOf } from '../src/router/router.ts';

const TOKEN = 'router-test-token';
const listen = (s: http.Server) =>
  new Promise<number>((r) => s.listen(0, '127.0.0.1', () => r((s.address() as AddressInfo).port)));

describe('sandbox router', () => {
  let routerPort: number;
  let agentPort: number;
  let echoPort: number;
  let wsPort: number;
  let deadPort: number;
  const closers: Array<() => void> = [];
  const baseDir = mkdtempSync(join(tmpdir(), 'asb-router-'));
  let seenHeaders: http.IncomingHttpHeaders = {};

  before(async () => {
    const env = { PATH: process.env.PATH, SANDBOX_BASE_DIR: baseDir };
    const agent = createAgent(configFromEnv(env), undefined, env);
    const a = await serveHttp1(await requestHandler(agent.app), '127.0.0.1', 0);
    agentPort = a.port;
    closers.push(() => {
      a.server.closeAllConnections();
      a.server.close();
    });
    const echo = http.createServer((req, res) => {
      seenHeaders = req.headers;
      if (req.url === '/slow') {
        setTimeout(() => res.end('late'), 3000);
        return;
      }
      req.pipe(res);
    });
    echoPort = await listen(echo);
    closers.push(() => {
      echo.closeAllConnections();
      echo.close();
    });
    const wsHttp = http.createServer();
    const wss = new WebSocketServer({ server: wsHttp });
    wss.on('connection', (ws, req) => {
      ws.send(`hello ${req.url}`);
      ws.on('message', (m: Buffer) => ws.send(`echo ${m.toString()}`));
    });
    wsPort = await listen(wsHttp);
    closers.push(() => {
      wss.close();
      wsHttp.close();
    });
    const dead = http.createServer();
    deadPort = await listen(dead);
    await new Promise((r) => dead.close(r)); // a port nothing listens on
    const router = createRouter({ token: TOKEN, resolve: () => '127.0.0.1', proxyTimeoutS: 10 });
    routerPort = await listen(router);
    closers.push(() => {
      router.closeAllConnections();
      router.close();
    });
  });
  after(() => {
    for (const c of closers) c();
    rmSync(baseDir, { recursive: true, force: true });
  });

  const call = async (
    path: string,
    init: { method?: string; headers?: Record<string, string>; body?: RequestInit['body'] } = {},
  ) => {
    const res = await fetch(`http://127.0.0.1:${routerPort}${path}`, {
      method: init.method ?? 'GET',
      headers: init.headers,
      body: init.body,
      duplex: 'half',
    });
    return { status: res.status, text: await res.text(), headers: res.headers };
  };
  const to = (port: number, extra: Record<string, string> = {}) => ({
    authorization: `Bearer ${TOKEN}`,
    'x-sandbox-id': 'my-sandbox',
    'x-sandbox-port': String(port),
    ...extra,
  });

  it('answers /healthz without a token, and nothing else without one', async () => {
    assert.deepEqual(JSON.parse((await call('/healthz')).text), { status: 'ok' });
    assert.equal((await call('/', { headers: { 'x-sandbox-id': 'a' } })).status, 401);
    assert.equal((await call('/', { headers: { authorization: 'Bearer wrong', 'x-sandbox-id': 'a' } })).status, 401);
    assert.throws(() => createRouter({}), /ROUTER_AUTH_TOKEN/);
  });

  it("refuses bad routing headers with upstream's messages", async () => {
    const auth = { authorization: `Bearer ${TOKEN}` };
    assert.deepEqual(await call('/', { headers: auth }).then((r) => [r.status, JSON.parse(r.text)]), [
      400,
      { detail: 'X-Sandbox-ID header is required.' },
    ]);
    assert.deepEqual(
      await call('/', { headers: { ...auth, 'x-sandbox-id': 'a', 'x-sandbox-namespace': 'bad_ns!' } }).then((r) => [
        r.status,
        JSON.parse(r.text),
      ]),
      [400, { detail: 'Invalid namespace format.' }],
    );
    assert.deepEqual(
      await call('/', { headers: { ...auth, 'x-sandbox-id': 'a', 'x-sandbox-port': '99999' } }).then((r) => [
        r.status,
        JSON.parse(r.text),
      ]),
      [400, { detail: 'Invalid port format.' }],
    );
    assert.equal((await call('/', { headers: { ...auth, 'x-sandbox-id': 'Not_A_Label' } })).status, 400);
    // X-Sandbox-Pod-IP cannot aim the router at loopback or the cloud metadata address.
    for (const ip of ['127.0.0.1', '169.254.169.254', '8.8.8.8', 'not-an-ip']) {
      assert.equal(
        (await call('/', { headers: { ...auth, 'x-sandbox-id': 'a', 'x-sandbox-pod-ip': ip } })).status,
        400,
        ip,
      );
    }
    assert.ok(isPrivatePodIp('10.244.1.7') && isPrivatePodIp('fd00::1') && !isPrivatePodIp('::1'));
  });

  it('ROUTER_BACKEND sends every sandbox to one address, whatever DNS and the pod IP say', async () => {
    assert.deepEqual(parseBackend('127.0.0.1:9000'), { host: '127.0.0.1', port: 9000 });
    assert.deepEqual(parseBackend('[::1]:8888'), { host: '::1', port: 8888 });
    assert.deepEqual(parseBackend('agent.local'), { host: 'agent.local', port: undefined });
    assert.throws(() => parseBackend('host:99999'), /host\[:port\]/);
    const o = { token: TOKEN, backend: { host: '127.0.0.1', port: agentPort } };
    assert.deepEqual(targetOf({ 'x-sandbox-id': 'sb-1', 'x-sandbox-pod-ip': '10.0.0.9' }, o), {
      host: '127.0.0.1',
      port: agentPort,
      id: 'sb-1',
      namespace: 'default',
      timeoutMs: 180_000,
    });
    // The headers are still checked as upstream checks them.
    assert.equal(
      (targetOf({ 'x-sandbox-id': 'sb-1', 'x-sandbox-pod-ip': '169.254.169.254' }, o) as { status: number }).status,
      400,
    );
    const router = createRouter(o);
    const port = await listen(router);
    try {
      const res = await fetch(`http://127.0.0.1:${port}/execute`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${TOKEN}`,
          'x-sandbox-id': 'any-sandbox',
          'x-sandbox-pod-ip': '10.1.2.3',
          'content-type': 'application/json',
        },
        body: JSON.stringify({ command: 'echo via-backend' }),
      });
      assert.deepEqual(await res.json(), { stdout: 'via-backend\n', stderr: '', exit_code: 0 });
    } finally {
      router.closeAllConnections();
      router.close();
    }
  });

  it('routes upstream runtime calls to the agent: /execute, upload, download', async () => {
    const exec = await call('/execute', {
      method: 'POST',
      headers: { ...to(agentPort), 'content-type': 'application/json' },
      body: JSON.stringify({ command: 'echo routed' }),
    });
    assert.equal(exec.status, 200, exec.text);
    assert.deepEqual(JSON.parse(exec.text), { stdout: 'routed\n', stderr: '', exit_code: 0 });
    const form = new FormData();
    form.append('file', new Blob([new Uint8Array([0, 1, 2, 250])]), 'bin.dat');
    assert.equal((await call('/upload', { method: 'POST', headers: to(agentPort), body: form })).status, 200);
    const res = await fetch(`http://127.0.0.1:${routerPort}/download/bin.dat`, { headers: to(agentPort) });
    assert.deepEqual([...new Uint8Array(await res.arrayBuffer())], [0, 1, 2, 250]);
  });

  it('streams responses as they come, not when they end', async () => {
    const t0 = Date.now();
    const res = await fetch(`http://127.0.0.1:${routerPort}/v1/exec`, {
      method: 'POST',
      headers: { ...to(agentPort), 'content-type': 'application/json' },
      body: JSON.stringify({ command: 'echo first; sleep 2; echo second' }),
    });
    const reader = res.body!.getReader();
    let text = '';
    while (!text.includes('first')) text += new TextDecoder().decode((await reader.read()).value);
    assert.ok(Date.now() - t0 < 1500, `the first line arrived after ${Date.now() - t0} ms`);
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    assert.match(text, /second/);
  });

  it('streams request bodies through and drops the router token and routing headers', async () => {
    const big = new Uint8Array(8 * 1024 * 1024).fill(7);
    const res = await call('/echo', { method: 'POST', headers: { ...to(echoPort), 'x-custom': 'kept' }, body: big });
    assert.equal(res.status, 200);
    assert.equal(res.text.length, big.length);
    assert.equal(seenHeaders.authorization, undefined);
    assert.equal(seenHeaders['x-sandbox-id'], undefined);
    assert.equal(seenHeaders['x-custom'], 'kept');
  });

  it('says 502 when the sandbox cannot be reached and 504 when it is too slow', async () => {
    const dead = await call('/', { headers: to(deadPort) });
    assert.deepEqual(
      [dead.status, JSON.parse(dead.text)],
      [502, { detail: 'Could not connect to the backend sandbox: my-sandbox' }],
    );
    const slow = await call('/slow', { headers: to(echoPort, { 'x-sandbox-timeout': '1' }) });
    assert.equal(slow.status, 504);
  });

  it('carries WebSockets through', async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${routerPort}/stream?x=1`, { headers: to(wsPort) });
    const messages: string[] = [];
    await new Promise<void>((resolve, reject) => {
      ws.on('message', (m) => {
        messages.push((m as Buffer).toString());
        if (messages.length === 1) ws.send('ping');
        if (messages.length === 2) resolve();
      });
      ws.on('error', reject);
    });
    ws.close();
    assert.deepEqual(messages, ['hello /stream?x=1', 'echo ping']);
    const refused = new WebSocket(`ws://127.0.0.1:${routerPort}/stream`, { headers: { 'x-sandbox-id': 'a' } });
    const status = await new Promise<number>((resolve) =>
      refused.on('unexpected-response', (_req, res) => resolve(res.statusCode!)),
    );
    assert.equal(status, 401);
  });
});
