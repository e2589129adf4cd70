// Hostile clients against a real engine (its own process, real gVisor): bodies far over the cap,
// with Content-Length and chunked, on every kind of route; unauthenticated uploads; a header block
// over the limit; slowloris; bodies that stop arriving; and every route of the API fuzzed from its
// schemas. The engine answers each with a 4xx that says what was wrong, never a 5xx, keeps serving
// everyone else, and its memory stays bounded. Slow-client bounds are set low (2 s) so that the
// suite is quick; ASB_FUZZ_RUNS sets the number of fuzzed requests (default 300).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import fc from 'fast-check';
import { Sandbox } from '@asb/sdk';
import { startEngineProcess, type EngineProcess } from './harness.ts';
import { requestArbitrary, type FuzzRequest } from './support/engine-requests.ts';
import {
  answers,
  connected,
  endlessHeaders,
  oversizedBody,
  oversizedHeader,
  partialBody,
  rssBytes,
  stalledBody,
  tricklingBody,
  MiB,
} from '../../packages/http-guard/test/support/clients.ts';

const BOUND_MS = 2_000;
const FUZZ_RUNS = Number(process.env.ASB_FUZZ_RUNS ?? 300);

/** One request over node's http client (keep-alive), as the fuzzer makes it; a watch is cut short. */
/** Node's client sends a DELETE's body unframed (no Content-Length, not chunked): the server then
 *  reads it as the next request. The fuzzer's requests are well framed. */
const framing = (body: string | undefined) =>
  body === undefined ? {} : { 'content-length': String(Buffer.byteLength(body)) };

function send(
  agent: http.Agent,
  url: string,
  token: string,
  r: FuzzRequest,
): Promise<{ status: number; text: string; contentType: string }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        agent,
        host: hostname,
        port,
        method: r.method,
        path: r.path,
        headers: { authorization: `Bearer ${token}`, ...r.headers, ...framing(r.body) },
        timeout: 60_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        const contentType = String(res.headers['content-type'] ?? '');
        if (contentType.includes('stream=watch')) {
          res.destroy();
          resolve({ status: res.statusCode!, text: '', contentType });
          return;
        }
        res.on('data', (d) => chunks.push(d));
        res.on('end', () =>
          resolve({ status: res.statusCode!, text: Buffer.concat(chunks).toString('utf8'), contentType }),
        );
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within 60 s to ${r.method} ${r.path}`)));
    req.on('error', reject);
    req.end(r.body);
  });
}

describe('hostile clients against the engine', () => {
  let e: EngineProcess;
  let sb: Sandbox;
  const auth = () => ({ authorization: `Bearer ${e.conn.token}` });
  const healthy = async () =>
    (await fetch(`${e.conn.url}/healthz`)).status === 200 &&
    (await fetch(`${e.conn.url}/v1/info`, { headers: auth() })).status === 200;

  before(async () => {
    e = await startEngineProcess({
      ASB_HEADERS_TIMEOUT_MS: String(BOUND_MS),
      ASB_BODY_IDLE_TIMEOUT_MS: String(BOUND_MS),
      ASB_MAX_UPLOAD_BYTES: String(8 * MiB),
    });
    sb = await Sandbox.create({ ...e.conn, name: 'fuzz-sb' });
  });
  after(async () => {
    await e?.stop();
  });

  it('refuses 400 MB bodies to /v1/sandboxes, the objects API and /v1/apply with 413 as they are read, and its memory does not grow', async (t) => {
    const before = rssBytes(e.pid);
    for (const [path, chunked] of [
      ['/v1/sandboxes', false],
      ['/v1/sandboxes', true],
      ['/apis/extensions.agents.x-k8s.io/v1beta1/namespaces/default/sandboxtemplates', false],
      ['/apis/agents.x-k8s.io/v1alpha1/namespaces/default/sandboxes', true],
      ['/v1/apply', false],
      ['/v1/apply', true],
    ] as const) {
      const r = await oversizedBody(e.conn.url, { path, headers: auth(), totalBytes: 400 * MiB, chunked });
      assert.equal(r.status, 413, `${path} (${chunked ? 'chunked' : 'content-length'}): ${r.body}`);
      const status = JSON.parse(r.body);
      assert.equal(status.kind, 'Status');
      assert.equal(status.reason, 'PayloadTooLarge');
      assert.match(status.message, /limit of 4194304 bytes \(ASB_MAX_API_BODY_BYTES\)/);
      assert.ok(r.bodyBytesSent < 64 * MiB, `the engine stopped reading: the client sent ${r.bodyBytesSent} bytes`);
    }
    const grown = rssBytes(e.pid) - before;
    t.diagnostic(
      `six 400 MB bodies: engine RSS ${Math.round(before / MiB)} MiB before, ${Math.round((before + grown) / MiB)} MiB after`,
    );
    assert.ok(grown < 64 * MiB, `RSS grew by ${Math.round(grown / MiB)} MiB`);
    assert.ok(await healthy());
  });

  it('answers an unauthenticated upload 401 without reading its body, and closes the connection', async () => {
    for (const chunked of [false, true]) {
      const r = await oversizedBody(e.conn.url, { path: '/v1/sandboxes', totalBytes: 400 * MiB, chunked });
      assert.equal(r.status, 401, r.body);
      assert.match(JSON.parse(r.body).message, /bearer token/);
      assert.equal(r.headers.connection, 'close');
      assert.ok(r.bodyBytesSent < 32 * MiB, `the client sent ${r.bodyBytesSent} bytes before the close`);
    }
  });

  it('refuses a header block over the limit with 431 naming it, and keeps serving', async () => {
    const r = await oversizedHeader(e.conn.url, { path: '/v1/info', bytes: 64 * 1024, headers: auth() });
    assert.equal(r.status, 431);
    assert.match(
      JSON.parse(r.body).message,
      /request headers exceed the limit of 16384 bytes \(ASB_MAX_HEADER_BYTES\)/,
    );
    assert.ok(await healthy());
  });

  it('closes a connection whose headers never end (slowloris) within its bound, serving others meanwhile', async () => {
    const slow = Promise.all([1, 2, 3].map(() => endlessHeaders(e.conn.url, { everyMs: 200, giveUpMs: 30_000 })));
    assert.ok(await healthy(), 'others are served while the slow clients hang on');
    for (const r of await slow) {
      assert.equal(r.status, 408, `answered ${r.status} after ${r.closedAfterMs} ms`);
      assert.match(JSON.parse(r.body).message, /ASB_HEADERS_TIMEOUT_MS/);
      assert.ok(r.closedAfterMs < BOUND_MS + 10_000, `closed after ${r.closedAfterMs} ms`);
    }
  });

  it('closes a request whose body stops arriving, to the API and to a sandbox, within its bound', async () => {
    const stalled = await Promise.all([
      stalledBody(e.conn.url, { path: '/v1/sandboxes', headers: auth(), sendBytes: 100, giveUpMs: 30_000 }),
      stalledBody(e.conn.url, { path: '/v1/apply', headers: auth(), sendBytes: 10, chunked: true, giveUpMs: 30_000 }),
      stalledBody(e.conn.url, {
        method: 'PUT',
        path: '/v1/files/stalled.bin',
        headers: { ...auth(), 'x-sandbox-id': sb.id, 'content-type': 'application/octet-stream' },
        sendBytes: 64 * 1024,
        giveUpMs: 30_000,
      }),
    ]);
    for (const r of stalled) {
      assert.equal(r.status, 408, `answered ${r.status} after ${r.closedAfterMs} ms: ${r.body}`);
      assert.equal(JSON.parse(r.body).reason, 'RequestTimeout');
      assert.ok(r.closedAfterMs < BOUND_MS + 10_000, `closed after ${r.closedAfterMs} ms`);
    }
    assert.ok(await healthy());
  });

  it('keeps a body that flows slowly but steadily, and a response that is silent for longer than the bound', async () => {
    // Each chunk comes within the bound, the whole body takes 2.5 times as long.
    const slowJson = await tricklingBody(e.conn.url, {
      path: '/v1/sandboxes',
      headers: auth(),
      chunkBytes: 100,
      everyMs: BOUND_MS / 2,
      chunks: 5,
    });
    assert.equal(slowJson.status, 422, `the body was read to its end and judged: ${slowJson.body}`);
    const slowUpload = await tricklingBody(e.conn.url, {
      method: 'PUT',
      path: '/v1/files/trickled.txt',
      headers: { ...auth(), 'x-sandbox-id': sb.id, 'content-type': 'application/octet-stream' },
      chunkBytes: 1000,
      everyMs: BOUND_MS / 2,
      chunks: 5,
    });
    assert.equal(slowUpload.status, 201, slowUpload.body);
    assert.equal((await sb.files.read('trickled.txt')).length, 5000);
    const quiet = await sb.run(`sleep ${(2 * BOUND_MS) / 1000}; echo still-here`, { timeoutMs: 60_000 });
    assert.equal(quiet.stdout, 'still-here\n');
  });

  it('gives a clear 4xx for malformed JSON, wrong types, unknown fields, deep nesting, bad queries and bad paths', async () => {
    const cases: Array<[string, string, string | undefined, number, RegExp]> = [
      ['POST', '/v1/sandboxes', '{"template":', 400, /not valid JSON/],
      ['POST', '/v1/sandboxes', '', 400, /empty/],
      ['POST', '/v1/sandboxes', '{"template":5}', 422, /template/],
      ['POST', '/v1/sandboxes', '{"bogus":1}', 422, /bogus/],
      ['POST', '/v1/sandboxes', '[]', 422, /object/],
      ['POST', '/v1/sandboxes', `${'['.repeat(100_000)}${']'.repeat(100_000)}`, 400, /deeper than 64/],
      ['POST', '/v1/sandboxes/default/fuzz-sb/suspend', '{"snapshot":"yes"}', 422, /snapshot/],
      ['POST', '/apis/agents.x-k8s.io/v1alpha1/namespaces/default/sandboxes', '{"kind":"Sandbox"}', 422, /apiVersion/],
      [
        'PATCH',
        '/apis/extensions.agents.x-k8s.io/v1beta1/namespaces/default/sandboxtemplates/python-runtime-template',
        '"x"',
        400,
        /merge patch is a JSON object/,
      ],
      // Merge patch recursed into this until the stack ran out: a 500 before the depth bound.
      [
        'PATCH',
        '/apis/extensions.agents.x-k8s.io/v1beta1/namespaces/default/sandboxtemplates/python-runtime-template',
        `${'{"spec":'.repeat(30_000)}{}${'}'.repeat(30_000)}`,
        400,
        /deeper than 64/,
      ],
      ['POST', '/v1/apply', 'a: [', 422, /YAML/],
      ['POST', '/v1/apply', `{"managedFields":${'['.repeat(200)}${']'.repeat(200)}}`, 400, /deeper than 64/],
      ['GET', '/v1/sandboxes/default/fuzz-sb?waitReadyMs=soon', undefined, 400, /waitReadyMs/],
      ['GET', '/v1/sandboxes?namespace=Not_A_Namespace', undefined, 400, /namespace/],
      ['GET', '/apis/agents.x-k8s.io/v1alpha1/sandboxes?watch=maybe', undefined, 400, /watch/],
      ['GET', '/apis/agents.x-k8s.io/v1alpha1/sandboxes?labelSelector=a!=b', undefined, 400, /labelSelector/],
      [
        'DELETE',
        '/apis/agents.x-k8s.io/v1alpha1/namespaces/default/sandboxes/x?propagationPolicy=Nope',
        undefined,
        400,
        /propagationPolicy/,
      ],
      ['GET', '/v1/events/default/Pod/x', undefined, 400, /kind "Pod"/],
      ['GET', '/apis/apps/v1/deployments', undefined, 404, /could not find the requested resource/],
      ['GET', '/v1/sandboxes/%zz/x', undefined, 404, /not found/],
      ['GET', '/v1/no/such/route', undefined, 404, /no route/],
    ];
    const agent = new http.Agent({ keepAlive: true });
    for (const [method, path, body, status, message] of cases) {
      const contentType = path === '/v1/apply' && !body?.startsWith('{') ? 'application/yaml' : 'application/json';
      const r = await send(agent, e.conn.url, e.conn.token, {
        route: 'info',
        method,
        path,
        headers: { 'content-type': contentType },
        body,
      });
      assert.equal(r.status, status, `${method} ${path}: ${r.text}`);
      assert.match(JSON.parse(r.text).message, message, `${method} ${path}`);
    }
    agent.destroy();
  });

  it(
    `answers ${FUZZ_RUNS} requests fuzzed from every route's schemas with no 5xx, stays up, and its memory stays bounded`,
    { timeout: 15 * 60_000 },
    async (t) => {
      const before = rssBytes(e.pid);
      const agent = new http.Agent({ keepAlive: true });
      const seen = new Map<string, number>();
      const statuses = new Map<number, number>();
      await fc.assert(
        fc.asyncProperty(requestArbitrary(sb.id), async (r) => {
          const res = await send(agent, e.conn.url, e.conn.token, r);
          seen.set(r.route, (seen.get(r.route) ?? 0) + 1);
          statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
          // A client that sets its own deadline (timeoutMs, waitReadyMs) gets a 504 Timeout when it
          // passes, as Kubernetes answers a request whose ?timeout passed.
          const ownDeadline =
            /timeoutMs|waitReadyMs/.test(`${r.path} ${r.body ?? ''}`) &&
            res.status === 504 &&
            JSON.parse(res.text).reason === 'Timeout';
          assert.ok(
            res.status < 500 || ownDeadline,
            `${r.method} ${r.path} ${r.body?.slice(0, 200) ?? ''} → ${res.status} ${res.text.slice(0, 500)}`,
          );
          if (res.status >= 400 && r.method !== 'HEAD') {
            const status = JSON.parse(res.text) as { kind: string; message: string };
            assert.equal(status.kind, 'Status', res.text);
            assert.ok(status.message.length > 10, `a message that says what is wrong: ${res.text}`);
          }
        }),
        { numRuns: FUZZ_RUNS, endOnFailure: true, includeErrorInReport: true },
      );
      agent.destroy();
      t.diagnostic(`statuses: ${JSON.stringify(Object.fromEntries([...statuses].sort()))}`);
      assert.ok(await healthy());
      const grown = rssBytes(e.pid) - before;
      assert.ok(grown < 128 * MiB, `RSS grew by ${Math.round(grown / MiB)} MiB over ${FUZZ_RUNS} requests`);
      assert.ok(seen.size >= Math.min(20, FUZZ_RUNS / 10), `routes reached: ${[...seen.keys()].join(', ')}`);
    },
  );
});

describe('many clients at once against the engine', () => {
  let e: EngineProcess;
  before(async () => {
    e = await startEngineProcess({
      ASB_MAX_CONNECTIONS: '20',
      ASB_MAX_API_BODIES_BYTES: String(6 * MiB),
      ASB_BODY_IDLE_TIMEOUT_MS: '10000',
    });
  });
  after(async () => {
    await e?.stop();
  });
  const auth = () => ({ authorization: `Bearer ${e.conn.token}` });

  it('holds at most ASB_MAX_API_BODIES_BYTES of bodies being read: the request over it gets 503 with Retry-After, then the budget comes back', async () => {
    const url = new URL('/v1/apply', e.conn.url).href;
    const first = partialBody(url, 4 * MiB, 3 * MiB, { ...auth(), 'content-type': 'application/yaml' });
    await first.sent;
    const second = partialBody(url, 4 * MiB, 3.5 * MiB, { ...auth(), 'content-type': 'application/yaml' });
    const refused = await second.answer;
    assert.equal(refused.status, 503, refused.body);
    assert.equal(refused.headers['retry-after'], '1');
    assert.equal(refused.headers.connection, 'close');
    const status = JSON.parse(refused.body);
    assert.equal(status.reason, 'Unavailable');
    assert.match(status.message, /ASB_MAX_API_BODIES_BYTES/);
    first.finish();
    assert.equal(
      (await first.answer).status,
      422,
      'the first body was read to its end and judged (zeros are no manifest)',
    );
    const later = await fetch(`${e.conn.url}/v1/sandboxes`, {
      method: 'POST',
      headers: { ...auth(), 'content-type': 'application/json' },
      body: JSON.stringify({ template: 'x', pad: 'a'.repeat(3 * MiB) }),
    });
    assert.equal(later.status, 422, 'a body as large is read again once the others are done');
  });

  it('closes connections past ASB_MAX_CONNECTIONS as they come, counts them, and serves again once others close', async () => {
    const port = Number(new URL(e.conn.url).port);
    const held = await Promise.all(Array.from({ length: 20 }, () => connected(port)));
    const over = await connected(port);
    assert.equal(
      await answers(over, `GET /v1/info HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${e.conn.token}\r\n\r\n`),
      false,
      'the 21st connection was closed unanswered',
    );
    held.forEach((c) => c.destroy());
    await new Promise((r) => setTimeout(r, 200));
    const metrics = await (await fetch(`${e.conn.url}/metrics`, { headers: auth() })).text();
    assert.match(metrics, /^asb_http_connections_dropped_total [1-9]/m);
    assert.equal((await fetch(`${e.conn.url}/v1/info`, { headers: auth() })).status, 200);
  });
});
