// `asb mcp` driven by the official MCP client (@modelcontextprotocol/sdk) over stdio and over
// streamable HTTP, against a real local engine under gVisor.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { Sandbox } from '@asb/sdk';

const ASB = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '../../bin/asb');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type ToolResult = {
  content: Array<{ type: string; text?: string; resource?: { blob?: string; text?: string } }>;
  structuredContent?: Record<string, unknown>;
  isError?: boolean;
};
const textOf = (r: ToolResult) =>
  r.content
    .filter((c) => c.type === 'text')
    .map((c) => c.text)
    .join('\n');

describe('asb mcp', () => {
  const home = mkdtempSync(join(tmpdir(), 'asb-mcp-'));
  const env = { ...process.env, ASB_HOME: home, ASB_ENGINE_PORT: '0', ASB_LOG_LEVEL: 'warn' } as Record<string, string>;
  const asb = (...args: string[]) =>
    spawnSync(process.execPath, [ASB, ...args], { env, encoding: 'utf8', timeout: 120_000 });
  const conn = () => ({
    url: JSON.parse(readFileSync(join(home, 'engine.json'), 'utf8')).url as string,
    token: readFileSync(join(home, 'token'), 'utf8').trim(),
  });
  const servers: ChildProcess[] = [];

  /** `asb mcp ARGS` over stdio, connected with the official client. */
  async function stdioClient(...args: string[]): Promise<Client> {
    const client = new Client({ name: 'e2e', version: '1.0.0' });
    await client.connect(
      new StdioClientTransport({ command: process.execPath, args: [ASB, 'mcp', ...args], env, stderr: 'ignore' }),
    );
    return client;
  }

  /** `asb mcp --http 0 ARGS` as its own process; resolves with its URL. */
  async function httpServer(...args: string[]): Promise<string> {
    const child = spawn(process.execPath, [ASB, 'mcp', '--http', '0', ...args], {
      env,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    servers.push(child);
    const line = await new Promise<string>((resolve, reject) => {
      createInterface({ input: child.stdout }).once('line', resolve);
      child.once('exit', (code) => reject(new Error(`asb mcp --http exited with ${code}`)));
    });
    return line.trim();
  }

  async function httpClient(url: string, token = conn().token): Promise<Client> {
    const client = new Client({ name: 'e2e-http', version: '1.0.0' });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(url), {
        requestInit: { headers: { authorization: `Bearer ${token}` } },
      }),
    );
    return client;
  }

  const call = async (client: Client, name: string, args: Record<string, unknown> = {}) =>
    (await client.callTool({ name, arguments: args })) as ToolResult;

  before(() => {
    const r = asb('engine', 'start');
    assert.equal(r.status, 0, r.stderr);
  });
  after(async () => {
    for (const s of servers) {
      s.kill('SIGTERM');
      await new Promise((r) => (s.exitCode !== null ? r(null) : s.once('exit', r)));
    }
    asb('engine', 'stop');
    rmSync(home, { recursive: true, force: true });
  });

  it('holds a multi-step conversation over stdio: a Go module written, built, tested and read back in one sandbox', async () => {
    const before = (await Sandbox.list(conn())).length;
    const client = await stdioClient('--template', 'go-runtime-template');
    const { tools } = await client.listTools();
    assert.deepEqual(tools.map((t) => t.name).sort(), [
      'list_directory',
      'read_file',
      'reset_sandbox',
      'resume_sandbox',
      'run_code',
      'run_command',
      'suspend_sandbox',
      'write_file',
    ]);
    const runCommand = tools.find((t) => t.name === 'run_command')!;
    assert.deepEqual(runCommand.inputSchema.required, ['command']);
    assert.ok(runCommand.description!.length > 80, 'tools explain themselves');

    await call(client, 'write_file', { path: 'hello/go.mod', content: 'module example.com/hello\n\ngo 1.21\n' });
    await call(client, 'write_file', {
      path: 'hello/greet/greet.go',
      content: 'package greet\n\nfunc Hello(n string) string { return "Hello, " + n + "!" }\n',
    });
    await call(client, 'write_file', {
      path: 'hello/greet/greet_test.go',
      content:
        'package greet\n\nimport "testing"\n\nfunc TestHello(t *testing.T) { if Hello("Bob") != "Hello, Bob!" { t.Fatal(Hello("Bob")) } }\n',
    });
    await call(client, 'write_file', {
      path: 'hello/main.go',
      content:
        'package main\n\nimport (\n\t"fmt"\n\t"example.com/hello/greet"\n)\n\nfunc main() { for _, n := range []string{"Alice", "Bob", "Carol"} { fmt.Println(greet.Hello(n)) } }\n',
    });
    const build = await call(client, 'run_command', {
      command: 'go build -o app . && ./app > out.txt',
      cwd: 'hello',
      timeout_seconds: 600,
    });
    assert.equal(build.structuredContent?.exit_code, 0, textOf(build));
    const test = await call(client, 'run_command', { command: 'go test ./...', cwd: 'hello', timeout_seconds: 600 });
    assert.match(textOf(test), /ok\s+example\.com\/hello\/greet/);
    const out = await call(client, 'read_file', { path: 'hello/out.txt' });
    assert.equal(textOf(out), 'Hello, Alice!\nHello, Bob!\nHello, Carol!\n');
    const listing = await call(client, 'list_directory', { path: 'hello' });
    assert.match(textOf(listing), /greet\//);
    // The files are resources too.
    const { resources } = await client.listResources();
    const outRes = resources.find((r) => r.name === 'hello/out.txt');
    assert.ok(outRes, JSON.stringify(resources.map((r) => r.name)));
    const read = await client.readResource({ uri: outRes.uri });
    assert.equal((read.contents[0] as { text: string }).text, 'Hello, Alice!\nHello, Bob!\nHello, Carol!\n');
    assert.equal((await Sandbox.list(conn())).length, before + 1, 'one sandbox for the conversation');
    await client.close();
    // The session ended: its sandbox is deleted.
    for (let i = 0; i < 100 && (await Sandbox.list(conn())).length !== before; i++) await sleep(100);
    assert.equal((await Sandbox.list(conn())).length, before);
  });

  it('returns failures of the code as results: exit codes, timeouts, capped output, code in four languages, binary files', async (t) => {
    const client = await stdioClient();
    t.after(() => client.close());
    const fail = await call(client, 'run_command', { command: 'echo to-stderr >&2; exit 3' });
    assert.notEqual(fail.isError, true);
    assert.equal(fail.structuredContent?.exit_code, 3);
    assert.equal(fail.structuredContent?.stderr, 'to-stderr\n');
    const t0 = Date.now();
    const slow = await call(client, 'run_command', { command: 'echo started; sleep 60', timeout_seconds: 1 });
    assert.ok(Date.now() - t0 < 15_000, 'the runaway command was stopped by its timeout');
    assert.equal(slow.structuredContent?.timed_out, true);
    assert.equal(slow.structuredContent?.exit_code, 124);
    assert.match(textOf(slow), /killed after 1 s/);
    assert.match(textOf(slow), /started/);
    const big = await call(client, 'run_command', {
      command: 'head -c 300000 /dev/zero | tr "\\0" a; echo; echo THE-END',
    });
    assert.equal(big.structuredContent?.truncated, true);
    assert.ok((big.structuredContent?.stdout as string).length < 70_000);
    assert.match(big.structuredContent?.stdout as string, /truncated: \d+ characters omitted/);
    assert.match(big.structuredContent?.stdout as string, /THE-END\n$/, 'the tail, where errors are, is kept');
    for (const [language, code, expected] of [
      ['python', 'import sys\nprint("py", sys.version_info.major)', 'py 3'],
      ['node', 'console.log("node", typeof process.version)', 'node string'],
      ['bash', 'echo "bash $((6*7))"', 'bash 42'],
      ['go', 'package main\nimport "fmt"\nfunc main() { fmt.Println("go", 6*7) }', 'go 42'],
    ] as const) {
      const r = await call(client, 'run_code', { language, code, timeout_seconds: 600 });
      assert.equal((r.structuredContent?.stdout as string).trim(), expected, `${language}: ${textOf(r)}`);
    }
    const bytes = Buffer.from([0, 1, 2, 255, 254, 0, 10]);
    await call(client, 'write_file', { path: 'bin.dat', content: bytes.toString('base64'), encoding: 'base64' });
    const back = await call(client, 'read_file', { path: 'bin.dat' });
    const blob = back.content.find((c) => c.type === 'resource')?.resource?.blob;
    assert.equal(blob, bytes.toString('base64'));
  });

  it('rejects bad arguments with clear messages', async (t) => {
    const client = await stdioClient();
    t.after(() => client.close());
    const outcomes: string[] = [];
    for (const [name, args] of [
      ['run_command', {}],
      ['run_command', { command: 'true', timeout_seconds: -1 }],
      ['run_code', { language: 'cobol', code: 'x' }],
      ['write_file', { path: 'x', content: '%%%', encoding: 'base64' }],
      ['read_file', { path: '../../etc/shadow' }],
      ['read_file', { path: 'does-not-exist.txt' }],
    ] as const) {
      try {
        const r = await call(client, name, args);
        assert.equal(r.isError, true, `${name} ${JSON.stringify(args)} is an error: ${textOf(r)}`);
        outcomes.push(textOf(r));
      } catch (err) {
        outcomes.push((err as Error).message);
      }
    }
    assert.match(outcomes[0]!, /command/);
    assert.match(outcomes[1]!, /timeout_seconds/);
    assert.match(outcomes[2]!, /language/);
    assert.match(outcomes[3]!, /base64/);
    assert.match(outcomes[4]!, /outside|traversal|escapes/i);
    assert.match(outcomes[5]!, /not found|no such|does not exist/i);
  });

  it('serves streamable HTTP: bearer token required, two concurrent sessions isolated from each other', async () => {
    const url = await httpServer();
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/mcp$/);
    const noToken = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    assert.equal(noToken.status, 401);
    await assert.rejects(httpClient(url, 'wrong-token'));
    const [a, b] = await Promise.all([httpClient(url), httpClient(url)]);
    await Promise.all([
      call(a, 'run_command', { command: 'echo session-a > mine.txt; echo a-mem > /tmp/mem' }),
      call(b, 'run_command', { command: 'echo session-b > mine.txt; echo b-mem > /tmp/mem' }),
    ]);
    const [ra, rb] = await Promise.all([
      call(a, 'run_command', { command: 'cat mine.txt /tmp/mem; hostname' }),
      call(b, 'run_command', { command: 'cat mine.txt /tmp/mem; hostname' }),
    ]);
    const [outA, outB] = [ra.structuredContent?.stdout as string, rb.structuredContent?.stdout as string];
    assert.match(outA, /^session-a\na-mem\n/);
    assert.match(outB, /^session-b\nb-mem\n/);
    assert.notEqual(outA.split('\n')[2], outB.split('\n')[2], 'different sandboxes');
    await a.close();
    await b.close();
  });

  it("deletes an idle conversation's sandbox and makes a new one on the next call, saying so (stdio; over HTTP an idle session ends whole: mcp-hostile.test.ts)", async () => {
    const client = await stdioClient('--idle-timeout', '2');
    const first = await call(client, 'run_command', { command: 'hostname; echo kept > f.txt' });
    const name = (first.structuredContent?.stdout as string).trim().split('\n')[0]!;
    assert.ok((await Sandbox.list(conn())).some((s) => s.name === name));
    for (let i = 0; i < 100 && (await Sandbox.list(conn())).some((s) => s.name === name); i++) await sleep(100);
    assert.ok(!(await Sandbox.list(conn())).some((s) => s.name === name), 'the idle sandbox was deleted');
    const again = await call(client, 'run_command', { command: 'test -e f.txt; echo $?' });
    assert.match(
      textOf(again),
      /a new sandbox was created \(the previous sandbox was deleted after 2 s without a tool call\)/,
    );
    assert.equal((again.structuredContent?.stdout as string).trim(), '1');
    await client.close();
  });

  it('reattaches conversations to a named sandbox, which outlives them', async () => {
    const one = await stdioClient('--sandbox', 'shared-box');
    await call(one, 'write_file', { path: 'memory.txt', content: 'from the first conversation' });
    await one.close();
    const two = await stdioClient('--sandbox', 'shared-box');
    assert.equal(textOf(await call(two, 'read_file', { path: 'memory.txt' })), 'from the first conversation');
    await two.close();
    await sleep(500);
    const sb = await Sandbox.connect('shared-box', conn());
    await sb.kill();
  });
});
