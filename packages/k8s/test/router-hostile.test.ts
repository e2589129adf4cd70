// Hostile clients against the sandbox router: the router as its own process (from source, as
// dist/router.mjs runs it), in front of a real runtime agent on loopback (ROUTER_BACKEND, as the
// router-mode tests run it without a cluster). Oversized bodies stream through to the agent,
// which refuses them, without the router's memory growing; refusals read nothing more;
// oversized headers are 431, slow headers and bodies are closed within their bound; fuzzed
// routing headers get upstream's codes and messages and never a 5xx. ASB_FUZZ_RUNS sets the
// number of fuzzed requests (default 300).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import fc from 'fast-check';
import { configFromEnv, createAgent, requestHandler, serveHttp1 } from '@asb/runtime';
import {
  answers,
  connected,
  endlessHeaders,
  oversizedBody,
  oversizedHeader,
  rssBytes,
  stalledBody,
  tricklingBody,
  MiB,
} from '../../http-guard/test/support/clients.ts';

const MAX_CONNECTIONS = 40;

const TOKEN = 'hostile-router-token';
const BOUND_S = 2;
const FUZZ_RUNS = Number(process.env.ASB_FUZZ_RUNS ?? 300);
const MAIN = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '../src/router/main.ts');

/** Upstream's rules for the routing headers (reference section 3), written apart from router.ts. */
function upstreamRefusal(sent: Record<string, string>): string | undefined {
  // HTTP trims the whitespace around a header's value (RFC 9110 5.5).
  const h = Object.fromEntries(Object.entries(sent).map(([k, v]) => [k, v.trim()])) as Record<string, string>;
  const id = h['x-sandbox-id'];
  if (!id) return 'X-Sandbox-ID header is required.';
  if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(id)) return 'Invalid sandbox ID format.';
  // v1.0.1: the namespace is a DNS label too; an empty header is the default, as an absent one.
  if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(h['x-sandbox-namespace'] || 'default'))
    return 'Invalid namespace format.';
  const port = h['x-sandbox-port'] || '8888';
  if (!/^\d+$/.test(port) || Number(port) < 1 || Number(port) > 65535) return 'Invalid port format.';
  const t = h['x-sandbox-timeout'];
  if (t !== undefined && !(Number(t) > 0 && Number.isFinite(Number(t)))) return 'Invalid timeout format.';
  const ip = h['x-sandbox-pod-ip'];
  if (ip && !(net.isIPv4(ip) && /^(10|192\.168)\./.test(ip))) return 'Invalid target IP address.';
  return undefined;
}

const SAFE_COMMANDS = ['true', 'echo fuzz', ['echo', 'fuzz']];

/** A request the way a careless or hostile client makes one; commands stay harmless (the agent
 *  here runs on the host, not in a sandbox). */
const requestArb = fc
  .record({
    method: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH'),
    path: fc.oneof(
      fc.constantFrom(
        '/',
        '/execute',
        '/upload',
        '/download/x.txt',
        '/list/.',
        '/exists/x',
        '/v1/exec',
        '/v1/processes',
        '/v1/files/f.txt',
        '/v1/stat/.',
        '/v1/mkdir/d',
        '/v1/processes/nope/output',
      ),
      fc.string({ maxLength: 30 }).map((s) => `/${encodeURIComponent(s)}`),
      fc.constantFrom(
        '/download/%2e%2e%2fetc%2fpasswd',
        '/list/%zz',
        '/v1/files/' + 'a'.repeat(5000),
        '/?' + 'q'.repeat(3000),
      ),
    ),
    headers: fc.record(
      {
        'x-sandbox-id': fc.oneof(
          fc.constantFrom('sb-1', 'a', 'my-sandbox', 'x'.repeat(63)),
          fc.constantFrom('', 'Bad_ID', '-a', 'a-', 'x'.repeat(64), '..', 'a.b'),
          fc.stringMatching(/^[ -~]{0,20}$/),
        ),
        'x-sandbox-namespace': fc.oneof(
          fc.constantFrom('default', 'team-1', 'A-b'),
          fc.constantFrom('bad_ns', 'a/b', 'ns.1', ' '),
          fc.stringMatching(/^[ -~]{1,20}$/),
        ),
        'x-sandbox-port': fc.oneof(
          fc.constantFrom('8888', '1', '65535'),
          fc.constantFrom('0', '65536', '-1', '80a', '1e3', '99999999999'),
          fc.stringMatching(/^[ -~]{1,8}$/),
        ),
        'x-sandbox-timeout': fc.oneof(
          fc.constantFrom('1', '0.5', '10', '1e-300'),
          fc.constantFrom('0', '-1', 'abc', 'NaN', 'Infinity', '1e999'),
          fc.stringMatching(/^[ -~]{1,8}$/),
        ),
        'x-sandbox-pod-ip': fc.oneof(
          fc.constantFrom('10.0.0.9', '192.168.1.2'),
          fc.constantFrom('127.0.0.1', '169.254.169.254', '8.8.8.8', '::1', 'not-an-ip', '10.0.0.256'),
        ),
        'content-type': fc.constantFrom(
          'application/json',
          'multipart/form-data; boundary=x',
          'text/plain',
          'application/octet-stream',
        ),
      },
      { requiredKeys: [] },
    ),
    body: fc.oneof(
      fc
        .record(
          { command: fc.constantFrom(...SAFE_COMMANDS), timeout: fc.oneof(fc.integer(), fc.string()) },
          { requiredKeys: [] },
        )
        .map((b) => JSON.stringify(b)),
      fc.jsonValue({ maxDepth: 2 }).map((v) => JSON.stringify(v)),
      fc.string({ maxLength: 300 }),
      fc.constantFrom(
        '',
        '{"command":',
        '--x\r\nContent-Disposition: form-data; name="file"; filename="../../x"\r\n\r\nabc\r\n--x--\r\n',
      ),
    ),
  })
  .map((r) => {
    // A command from junk is replaced by a harmless one.
    try {
      const parsed = JSON.parse(r.body) as unknown;
      if (
        parsed &&
        typeof parsed === 'object' &&
        'command' in parsed &&
        !SAFE_COMMANDS.some((c) => JSON.stringify(c) === JSON.stringify(parsed.command))
      ) {
        r.body = JSON.stringify({ ...parsed, command: 'true' });
      }
    } catch {
      /* not JSON: the agent refuses it */
    }
    return r;
  });

/** Node's client sends a DELETE's body unframed (no Content-Length, not chunked): the server then
 *  reads it as the next request. The fuzzer's requests are well framed. */
const framing = (body: string | undefined) =>
  body === undefined ? {} : { 'content-length': String(Buffer.byteLength(body)) };

function send(
  agent: http.Agent,
  port: number,
  r: { method: string; path: string; headers: Record<string, string>; body: string },
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        agent,
        host: '127.0.0.1',
        port,
        method: r.method,
        path: r.path,
        headers: {
          authorization: `Bearer ${TOKEN}`,
          ...r.headers,
          ...framing(r.method === 'GET' ? undefined : r.body),
        },
        timeout: 30_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (d) => chunks.push(d));
        res.on('end', () => resolve({ status: res.statusCode!, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within 30 s to ${r.method} ${r.path}`)));
    req.on('error', reject);
    req.end(r.method === 'GET' ? undefined : r.body);
  });
}

describe('hostile clients against the sandbox router', () => {
  const baseDir = mkdtempSync(join(tmpdir(), 'asb-router-hostile-'));
  let agentServer: { close(): void };
  let router: ChildProcess;
  let url: string;
  let port: number;
  const healthy = async () =>
    (await fetch(`${url}/healthz`)).status === 200 &&
    (await fetch(`${url}/`, { headers: { authorization: `Bearer ${TOKEN}`, 'x-sandbox-id': 'sb-1' } })).status === 200;

  before(async () => {
    const env = {
      PATH: process.env.PATH,
      SANDBOX_BASE_DIR: baseDir,
      HOME: baseDir,
      ASB_MAX_UPLOAD_BYTES: String(8 * MiB),
    };
    const agent = await serveHttp1(
      await requestHandler(createAgent(configFromEnv(env), undefined, env).app),
      '127.0.0.1',
      0,
    );
    agentServer = {
      close: () => {
        agent.server.closeAllConnections();
        agent.server.close();
      },
    };
    router = spawn(process.execPath, ['--import', 'tsx', MAIN], {
      env: {
        ...process.env,
        PORT: '0',
        HOST: '127.0.0.1',
        ROUTER_AUTH_TOKEN: TOKEN,
        ROUTER_BACKEND: `127.0.0.1:${agent.port}`,
        ROUTER_HEADERS_TIMEOUT_SECONDS: String(BOUND_S),
        ROUTER_BODY_IDLE_TIMEOUT_SECONDS: String(BOUND_S),
        ROUTER_MAX_CONNECTIONS: String(MAX_CONNECTIONS),
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const lines = createInterface({ input: router.stderr! });
    port = await new Promise<number>((resolve, reject) => {
      lines.on('line', (line) => {
        const m = /listening on :(\d+)/.exec(line);
        if (m) resolve(Number(m[1]));
      });
      router.once('exit', (code) => reject(new Error(`the router exited with ${code}`)));
    });
    url = `http://127.0.0.1:${port}`;
  });
  after(async () => {
    if (router && router.exitCode === null) {
      router.kill('SIGTERM');
      await new Promise((r) => router.once('exit', r));
    }
    agentServer?.close();
    rmSync(baseDir, { recursive: true, force: true });
  });

  it("streams 400 MB bodies to the sandbox, which refuses them, without the router's memory growing", async () => {
    const before = rssBytes(router.pid!);
    for (const chunked of [false, true]) {
      const r = await oversizedBody(url, {
        method: 'PUT',
        path: '/v1/files/big.bin',
        headers: {
          authorization: `Bearer ${TOKEN}`,
          'x-sandbox-id': 'sb-1',
          'content-type': 'application/octet-stream',
        },
        totalBytes: 400 * MiB,
        chunked,
      });
      assert.equal(r.status, 413, r.body);
      assert.match(r.body, /exceeds the limit of 8388608 bytes/);
      assert.ok(r.bodyBytesSent < 128 * MiB, `the client sent ${Math.round(r.bodyBytesSent / MiB)} MiB`);
    }
    const grown = rssBytes(router.pid!) - before;
    assert.ok(grown < 64 * MiB, `RSS grew by ${Math.round(grown / MiB)} MiB`);
    assert.ok(await healthy());
  });

  it('answers an unauthenticated upload 401 without reading its body', async () => {
    for (const chunked of [false, true]) {
      const r = await oversizedBody(url, {
        path: '/upload',
        headers: { 'x-sandbox-id': 'sb-1' },
        totalBytes: 400 * MiB,
        chunked,
      });
      assert.deepEqual(
        [r.status, JSON.parse(r.body)],
        [401, { detail: 'Unauthorized: send Authorization: Bearer <router token>.' }],
      );
      assert.equal(r.headers.connection, 'close');
      assert.ok(r.bodyBytesSent < 32 * MiB, `the client sent ${Math.round(r.bodyBytesSent / MiB)} MiB`);
    }
  });

  it('refuses a header block over 16 KiB with 431, and keeps serving', async () => {
    const r = await oversizedHeader(url, {
      path: '/',
      bytes: 64 * 1024,
      headers: { authorization: `Bearer ${TOKEN}`, 'x-sandbox-id': 'sb-1' },
    });
    assert.equal(r.status, 431);
    assert.deepEqual(JSON.parse(r.body), {
      detail: 'Request headers exceed the limit of 16384 bytes (ROUTER_MAX_HEADER_BYTES).',
    });
    assert.ok(await healthy());
  });

  it('closes slow headers and a body that stops arriving within the bound, serving others meanwhile', async () => {
    const slow = Promise.all([
      endlessHeaders(url, { everyMs: 200, giveUpMs: 30_000 }),
      stalledBody(url, {
        method: 'PUT',
        path: '/v1/files/stalled.bin',
        headers: { authorization: `Bearer ${TOKEN}`, 'x-sandbox-id': 'sb-1' },
        sendBytes: 1000,
        giveUpMs: 30_000,
      }),
      stalledBody(url, {
        path: '/execute',
        headers: { authorization: `Bearer ${TOKEN}`, 'x-sandbox-id': 'sb-1' },
        sendBytes: 5,
        chunked: true,
        giveUpMs: 30_000,
      }),
    ]);
    assert.ok(await healthy(), 'others are served meanwhile');
    const [headers, body, chunked] = await slow;
    assert.equal(headers.status, 408);
    assert.match(JSON.parse(headers.body).detail, /ROUTER_HEADERS_TIMEOUT_SECONDS/);
    for (const r of [body, chunked]) {
      assert.equal(r.status, 408, r.body);
      assert.deepEqual(JSON.parse(r.body), { detail: `The request body stopped arriving: nothing for ${BOUND_S} s.` });
    }
    for (const r of [headers, body, chunked])
      assert.ok(r.closedAfterMs < BOUND_S * 1000 + 10_000, `closed after ${r.closedAfterMs} ms`);
  });

  it(`closes connections past ROUTER_MAX_CONNECTIONS (${MAX_CONNECTIONS}) unanswered, and serves again once they close`, async () => {
    const sockets = await Promise.all(Array.from({ length: MAX_CONNECTIONS + 10 }, () => connected(port)));
    const answered = await Promise.all(sockets.map((socket) => answers(socket)));
    const served = answered.filter(Boolean).length;
    assert.ok(
      served <= MAX_CONNECTIONS && served >= MAX_CONNECTIONS - 5,
      `${served} of ${sockets.length} connections answered`,
    );
    sockets.forEach((c) => c.destroy());
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(
      (await fetch(`${url}/`, { headers: { 'x-sandbox-id': 'sb-1' } })).status,
      401,
      'a request is answered again (401: it has no token)',
    );
  });

  it('lets a body that flows slowly but steadily through', async () => {
    const r = await tricklingBody(url, {
      method: 'PUT',
      path: '/v1/files/trickled.txt',
      headers: { authorization: `Bearer ${TOKEN}`, 'x-sandbox-id': 'sb-1', 'content-type': 'application/octet-stream' },
      chunkBytes: 100,
      everyMs: (BOUND_S * 1000) / 2,
      chunks: 5,
    });
    assert.equal(r.status, 201, r.body);
  });

  it(
    `answers ${FUZZ_RUNS} fuzzed requests with upstream's codes for bad routing headers and never a 5xx`,
    { timeout: 10 * 60_000 },
    async () => {
      const before = rssBytes(router.pid!);
      const agent = new http.Agent({ keepAlive: true });
      const refusals = new Set([
        'X-Sandbox-ID header is required.',
        'Invalid sandbox ID format.',
        'Invalid namespace format.',
        'Invalid port format.',
        'Invalid timeout format.',
        'Invalid target IP address.',
      ]);
      await fc.assert(
        fc.asyncProperty(requestArb, async (r) => {
          const res = await send(agent, port, r);
          const what = `${r.method} ${r.path.slice(0, 100)} ${JSON.stringify(r.headers)} → ${res.status} ${res.text.slice(0, 300)}`;
          // A client that asks for less than a few seconds (X-Sandbox-Timeout) may get what it asked for.
          const hurried = Number(r.headers['x-sandbox-timeout']) < 5;
          assert.ok(res.status < 500 || (res.status === 504 && hurried), what);
          const expected = upstreamRefusal(r.headers);
          let detail: string | undefined;
          try {
            detail = (JSON.parse(res.text) as { detail?: string }).detail;
          } catch {
            /* the agent's answer */
          }
          if (expected) assert.deepEqual([res.status, detail], [400, expected], what);
          else assert.ok(!(res.status === 400 && detail && refusals.has(detail)), `routed, not refused: ${what}`);
        }),
        { numRuns: FUZZ_RUNS, endOnFailure: true, includeErrorInReport: true },
      );
      agent.destroy();
      assert.ok(await healthy());
      const grown = rssBytes(router.pid!) - before;
      assert.ok(grown < 64 * MiB, `RSS grew by ${Math.round(grown / MiB)} MiB over ${FUZZ_RUNS} requests`);
    },
  );
});
