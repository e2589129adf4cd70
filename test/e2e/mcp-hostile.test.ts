// Hostile clients against `asb mcp --http` (its own process, a real engine under gVisor behind
// it): a flood of initialize calls with no follow-up, idle sessions, oversized and unauthenticated
// bodies, oversized headers, slowloris and stalled bodies, and fuzzed JSON-RPC. Sessions are
// capped and end when unused or idle (their sandbox deleted, their id then 404), memory stays
// bounded, nothing is a 5xx. Bounds are set low (3 s sessions, 2 s slow clients) to keep it quick;
// ASB_FUZZ_RUNS sets the fuzzed messages (default 150).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import fc from 'fast-check';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { Sandbox } from '@asb/sdk';
import { startEngineProcess, type EngineProcess } from './harness.ts';
import {
  answers,
  connected,
  endlessHeaders,
  oversizedBody,
  oversizedHeader,
  partialBody,
  rssBytes,
  stalledBody,
  MiB,
} from '../../packages/http-guard/test/support/clients.ts';
import { arbitraryOfJsonSchema } from '../../packages/http-guard/test/support/schema-arbitrary.ts';

const ASB = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '../../bin/asb');
const SESSION_S = 3;
const BOUND_MS = 2_000;
const MAX_SESSIONS = 100;
const FUZZ_RUNS = Number(process.env.ASB_FUZZ_RUNS ?? 150) / 2;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface McpProcess {
  url: string;
  pid: number;
  child: ChildProcess;
}

const INITIALIZE = JSON.stringify({
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'flood', version: '1' } },
});

describe('hostile clients against asb mcp --http', () => {
  let e: EngineProcess;
  const servers: ChildProcess[] = [];
  const headers = (extra: Record<string, string> = {}) => ({
    authorization: `Bearer ${e.conn.token}`,
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
    ...extra,
  });

  /** `asb mcp --http 0 ARGS` as its own process, on the test's engine. */
  const mcpServer = (...args: string[]) => mcpServerWith({}, ...args);
  async function mcpServerWith(env: Record<string, string>, ...args: string[]): Promise<McpProcess> {
    const child = spawn(process.execPath, [ASB, 'mcp', '--http', '0', ...args], {
      env: {
        ...process.env,
        ASB_HOME: e.home,
        ASB_LOG_LEVEL: 'warn',
        ASB_MCP_MAX_SESSIONS: String(MAX_SESSIONS),
        ASB_MCP_UNUSED_SESSION_TIMEOUT_MS: String(SESSION_S * 1000),
        ASB_HEADERS_TIMEOUT_MS: String(BOUND_MS),
        ASB_BODY_IDLE_TIMEOUT_MS: String(BOUND_MS),
        ...env,
      },
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    servers.push(child);
    const url = await new Promise<string>((resolve, reject) => {
      createInterface({ input: child.stdout }).once('line', (l) => resolve(l.trim()));
      child.once('exit', (code) => reject(new Error(`asb mcp --http exited with ${code}`)));
    });
    return { url, pid: child.pid!, child };
  }

  const initialize = async (url: string) => {
    const res = await fetch(url, { method: 'POST', headers: headers(), body: INITIALIZE });
    return { status: res.status, id: res.headers.get('mcp-session-id') ?? undefined, text: await res.text() };
  };
  const healthy = async (url: string) => (await initialize(url)).status === 200;

  before(async () => {
    e = await startEngineProcess();
  });
  after(async () => {
    for (const s of servers)
      if (s.exitCode === null) {
        s.kill('SIGTERM');
        await new Promise((r) => s.once('exit', r));
      }
    await e?.stop();
  });

  it(`holds at most ${MAX_SESSIONS} sessions under 2,000 initialize calls with no follow-up, refuses the rest clearly, and ends the unused ones`, async (t) => {
    const m = await mcpServer();
    const rssBefore = rssBytes(m.pid);
    const statuses = new Map<number, number>();
    let refusal = '';
    let firstId: string | undefined;
    let next = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < 2000) {
          next++;
          const r = await initialize(m.url);
          statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
          if (r.status === 503) refusal = r.text;
          firstId ??= r.id;
        }
      }),
    );
    const rssAfter = rssBytes(m.pid);
    t.diagnostic(
      `2,000 initialize calls: ${JSON.stringify(Object.fromEntries(statuses))}; RSS ${Math.round(rssBefore / MiB)} MiB before, ${Math.round(rssAfter / MiB)} MiB after`,
    );
    assert.ok((statuses.get(503) ?? 0) > 0, 'the cap was reached');
    assert.match(JSON.parse(refusal).error.message, /too many MCP sessions open \(100, ASB_MCP_MAX_SESSIONS\)/);
    assert.ok(rssAfter - rssBefore < 128 * MiB, `RSS grew by ${Math.round((rssAfter - rssBefore) / MiB)} MiB`);
    // The unused sessions end: the first one's id is forgotten, and there is room again.
    await sleep(SESSION_S * 1000 * 1.5);
    const old = await fetch(m.url, {
      method: 'POST',
      headers: headers({ 'mcp-session-id': firstId!, 'mcp-protocol-version': '2025-06-18' }),
      body: '{"jsonrpc":"2.0","id":2,"method":"tools/list"}',
    });
    assert.equal(old.status, 404);
    assert.match(((await old.json()) as { error: { message: string } }).error.message, /initialize a new one/);
    assert.ok(await healthy(m.url));
  });

  it('ends a session idle for --idle-timeout with its sandbox, and its id then gets 404; a long call is not idleness', async () => {
    const m = await mcpServer('--idle-timeout', String(SESSION_S));
    const client = new Client({ name: 'idle', version: '1' });
    const transport = new StreamableHTTPClientTransport(new URL(m.url), {
      requestInit: { headers: { authorization: `Bearer ${e.conn.token}` } },
    });
    await client.connect(transport);
    const call = async (command: string) =>
      (
        (await client.callTool({ name: 'run_command', arguments: { command } })) as {
          structuredContent?: { stdout?: string };
        }
      ).structuredContent?.stdout ?? '';
    const name = (await call('hostname')).trim();
    assert.ok(
      (await Sandbox.list(e.conn)).some((s) => s.name === name),
      'the session has its sandbox',
    );
    assert.equal(
      await call(`sleep ${SESSION_S + 2}; echo done`),
      'done\n',
      'a call longer than the idle timeout completes',
    );
    const sessionId = transport.sessionId!;
    for (let i = 0; i < 150 && (await Sandbox.list(e.conn)).some((s) => s.name === name); i++) await sleep(100);
    assert.ok(!(await Sandbox.list(e.conn)).some((s) => s.name === name), "the idle session's sandbox was deleted");
    const res = await fetch(m.url, {
      method: 'POST',
      headers: headers({ 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-06-18' }),
      body: '{"jsonrpc":"2.0","id":9,"method":"tools/list"}',
    });
    assert.equal(res.status, 404);
    assert.match(
      ((await res.json()) as { error: { message: string } }).error.message,
      /unknown or ended session .*: initialize a new one/,
    );
    await client.close().catch(() => undefined);
  });

  it('refuses 400 MB bodies with 413 and unauthenticated ones with 401, reading neither, and its memory does not grow', async () => {
    const m = await mcpServer();
    const rssBefore = rssBytes(m.pid);
    for (const chunked of [false, true]) {
      const big = await oversizedBody(m.url, { path: '/mcp', headers: headers(), totalBytes: 400 * MiB, chunked });
      assert.equal(big.status, 413, big.body);
      assert.match(
        JSON.parse(big.body).error.message,
        /exceeds the limit of 20971520 bytes \(ASB_MCP_MAX_BODY_BYTES\)/,
      );
      const anonymous = await oversizedBody(m.url, { path: '/mcp', totalBytes: 400 * MiB, chunked });
      assert.equal(anonymous.status, 401);
      assert.ok(anonymous.bodyBytesSent < 32 * MiB, `the client sent ${Math.round(anonymous.bodyBytesSent / MiB)} MiB`);
    }
    assert.ok(
      rssBytes(m.pid) - rssBefore < 64 * MiB,
      `RSS grew by ${Math.round((rssBytes(m.pid) - rssBefore) / MiB)} MiB`,
    );
    assert.ok(await healthy(m.url));
  });

  it('holds at most ASB_MCP_MAX_BODIES_BYTES of bodies being read (503 past it) and closes connections past ASB_MCP_MAX_CONNECTIONS', async () => {
    const m = await mcpServerWith({ ASB_MCP_MAX_BODIES_BYTES: String(6 * MiB), ASB_MCP_MAX_CONNECTIONS: '10' });
    const first = partialBody(m.url, 4 * MiB, 3 * MiB, headers());
    await first.sent;
    const refused = await partialBody(m.url, 4 * MiB, 3.5 * MiB, headers()).answer;
    assert.equal(refused.status, 503, refused.body);
    assert.equal(refused.headers['retry-after'], '1');
    assert.match(JSON.parse(refused.body).error.message, /ASB_MCP_MAX_BODIES_BYTES/);
    first.finish();
    assert.equal((await first.answer).status, 400, 'the first body was read whole (and is no JSON)');

    const port = Number(new URL(m.url).port);
    const held = await Promise.all(Array.from({ length: 10 }, () => connected(port)));
    assert.equal(await answers(await connected(port)), false, 'the 11th connection was closed unanswered');
    held.forEach((c) => c.destroy());
    await sleep(200);
    assert.ok(await healthy(m.url), 'served again once the others closed');
  });

  it('answers an oversized header 431, and closes slowloris and stalled bodies within the bound', async () => {
    const m = await mcpServer();
    const big = await oversizedHeader(m.url, {
      path: '/mcp',
      bytes: 64 * 1024,
      headers: { authorization: `Bearer ${e.conn.token}` },
    });
    assert.equal(big.status, 431);
    assert.match(JSON.parse(big.body).error.message, /ASB_MAX_HEADER_BYTES/);
    const slow = Promise.all([
      endlessHeaders(m.url, { everyMs: 200, giveUpMs: 30_000 }),
      stalledBody(m.url, { path: '/mcp', headers: headers(), sendBytes: 20, giveUpMs: 30_000 }),
    ]);
    assert.ok(await healthy(m.url), 'others are served meanwhile');
    for (const r of await slow) {
      assert.equal(r.status, 408, r.body);
      assert.ok(r.closedAfterMs < BOUND_MS + 10_000, `closed after ${r.closedAfterMs} ms`);
    }
  });

  it(
    `answers ${FUZZ_RUNS * 2} fuzzed JSON-RPC requests, in a session and out of one, with no 5xx`,
    { timeout: 10 * 60_000 },
    async () => {
      const m = await mcpServer();
      const rssBefore = rssBytes(m.pid);
      const client = new Client({ name: 'fuzz', version: '1' });
      const transport = new StreamableHTTPClientTransport(new URL(m.url), {
        requestInit: { headers: { authorization: `Bearer ${e.conn.token}` } },
      });
      await client.connect(transport);
      const { tools } = await client.listTools();
      // Tools that do not run code, with arguments from their own input schemas; code only as `true`.
      const harmlessTools = tools.filter((tool) => ['read_file', 'list_directory', 'write_file'].includes(tool.name));
      const toolCall = fc.oneof(
        ...harmlessTools.map((tool) =>
          arbitraryOfJsonSchema(tool.inputSchema as Record<string, unknown>).map((args) => ({
            name: tool.name,
            arguments: args,
          })),
        ),
        fc.constant({ name: 'run_command', arguments: { command: 'true', timeout_seconds: 1 } }),
        fc.record({ name: fc.string({ maxLength: 12 }), arguments: fc.jsonValue({ maxDepth: 2 }) }),
      );
      const message = fc.oneof(
        fc.record({
          jsonrpc: fc.constant('2.0'),
          id: fc.oneof(fc.integer(), fc.string()),
          method: fc.constant('tools/call'),
          params: toolCall,
        }),
        fc.record(
          {
            jsonrpc: fc.constantFrom('2.0', '1.0'),
            id: fc.oneof(fc.integer(), fc.string(), fc.constant(null)),
            method: fc.constantFrom(
              'ping',
              'tools/list',
              'resources/list',
              'resources/read',
              'prompts/list',
              'initialize',
              'notifications/initialized',
              'nope',
            ),
            params: fc.jsonValue({ maxDepth: 2 }),
          },
          { requiredKeys: ['jsonrpc', 'method'] },
        ),
        fc.jsonValue({ maxDepth: 3 }),
      );
      const body = fc.oneof(
        { weight: 4, arbitrary: message.map((x) => JSON.stringify(x)) },
        { weight: 1, arbitrary: fc.array(message, { maxLength: 3 }).map((x) => JSON.stringify(x)) },
        { weight: 1, arbitrary: fc.constantFrom('', '{', 'null', '[]', '['.repeat(10_000)) },
      );
      const sessionHeader = fc.constantFrom<Record<string, string>>(
        { 'mcp-session-id': transport.sessionId!, 'mcp-protocol-version': '2025-06-18' },
        {},
        { 'mcp-session-id': 'not-a-session' },
        { 'mcp-session-id': transport.sessionId!, 'mcp-protocol-version': '1999-01-01' },
      );
      const statuses = new Map<number, number>();
      await fc.assert(
        fc.asyncProperty(
          body,
          sessionHeader,
          fc.constantFrom('POST', 'POST', 'POST', 'GET', 'DELETE'),
          async (b, sh, method) => {
            // DELETE would end the fuzzer's own session: only for made-up ones.
            if (method === 'DELETE' && sh['mcp-session-id'] === transport.sessionId) return;
            const ac = new AbortController();
            const res = await fetch(m.url, {
              method,
              headers: headers(sh),
              body: method === 'POST' ? b : undefined,
              signal: ac.signal,
            });
            statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
            // A GET in a session is the server's event stream: it stays open.
            if (res.headers.get('content-type')?.includes('text/event-stream') && method === 'GET') ac.abort();
            else await res.text();
            assert.ok(res.status < 500, `${method} ${JSON.stringify(sh)} ${b.slice(0, 300)} → ${res.status}`);
          },
        ),
        { numRuns: FUZZ_RUNS, endOnFailure: true, includeErrorInReport: true },
      );
      assert.ok(await healthy(m.url));
      assert.equal((await client.listTools()).tools.length, tools.length, "the fuzzer's own session still works");
      await client.close();
      assert.ok(rssBytes(m.pid) - rssBefore < 128 * MiB);
      assert.ok(statuses.size > 2, JSON.stringify(Object.fromEntries(statuses)));
    },
  );
});
