// Outputs and files larger than a client should hold, through the clients as users run them:
// `asb exec` and `asb cp` as processes (their peak memory read by /usr/bin/time), `asb mcp`
// driven by the official MCP client (its server's peak memory from /proc), against a real engine
// daemon under gVisor. Sizes pass the old failure points (a JS string ends at 512 MiB) and stay
// small enough for this 2-core machine: ~20 MB/s get through gVisor's ptrace platform.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { Sandbox } from '@asb/sdk';

const ASB = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '../../bin/asb');
const MiB = 1024 * 1024;
/** Peak resident memory a client may reach while it moves hundreds of MB. The CLI alone is ~150 MB
 *  (its bundle), and ~170 MB moving 1 GiB; holding what it moves, it was 400 MB to 6.5 GB. */
const MAX_CLIENT_RSS_KB = 300 * 1024;

type ToolResult = {
  content: Array<{ type: string; text?: string }>;
  structuredContent?: Record<string, unknown>;
  isError?: boolean;
};
const textOf = (r: ToolResult) =>
  r.content
    .filter((c) => c.type === 'text')
    .map((c) => c.text)
    .join('\n');

async function sha256(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(path)) h.update(c as Buffer);
  return h.digest('hex');
}

/** Random bytes to a file, a chunk at a time. */
async function randomFile(path: string, size: number): Promise<void> {
  const f = await open(path, 'w');
  for (let done = 0; done < size; done += 8 * MiB) await f.write(randomBytes(Math.min(8 * MiB, size - done)));
  await f.close();
}

/** VmHWM (peak resident set) of a live process, in kB. */
function peakRssKb(pid: number): number {
  return Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
}

describe('large outputs and files', () => {
  const home = mkdtempSync(join(tmpdir(), 'asb-large-'));
  const env = { ...process.env, ASB_HOME: home, ASB_ENGINE_PORT: '0', ASB_LOG_LEVEL: 'warn' } as Record<string, string>;
  const asb = (...args: string[]) =>
    spawnSync(process.execPath, [ASB, ...args], { env, encoding: 'utf8', timeout: 600_000 });
  /** A shell line with `$ASB` as the CLI, `$RSS` a file that /usr/bin/time writes its peak RSS (kB) to. */
  const sh = (line: string) => {
    const rssFile = join(home, `rss-${randomBytes(4).toString('hex')}`);
    const r = spawnSync('bash', ['-o', 'pipefail', '-c', line], {
      env: { ...env, ASB: `${process.execPath} ${ASB}`, RSS: rssFile },
      encoding: 'utf8',
      timeout: 600_000,
    });
    let rssKb = NaN;
    try {
      rssKb = Number(readFileSync(rssFile, 'utf8').trim().split('\n').at(-1));
    } catch {
      /* not measured */
    }
    return { ...r, rssKb };
  };
  const conn = () => ({
    url: JSON.parse(readFileSync(join(home, 'engine.json'), 'utf8')).url as string,
    token: readFileSync(join(home, 'token'), 'utf8').trim(),
  });
  let id = '';

  before(() => {
    const r = asb('engine', 'start');
    assert.equal(r.status, 0, r.stderr);
    id = asb('create', '-o', 'name').stdout.trim();
    assert.match(id, /^sandbox-/);
  });
  after(() => {
    asb('engine', 'stop');
    rmSync(home, { recursive: true, force: true });
  });

  it('asb exec streams 600 MiB of output to a pipe, every byte, in bounded memory', (t) => {
    // Past 512 MiB the old client died ("Invalid string length"), having held it all.
    const r = sh(
      `/usr/bin/time -f %M -o "$RSS" $ASB exec ${id} -- dd if=/dev/zero bs=1M count=600 status=none | wc -c`,
    );
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), String(600 * MiB));
    t.diagnostic(`asb exec peak RSS ${r.rssKb} kB`);
    assert.ok(r.rssKb < MAX_CLIENT_RSS_KB, `asb exec peaked at ${r.rssKb} kB`);
  });

  it('asb exec passes bytes that are not UTF-8 through unchanged', () => {
    const src = join(home, 'random.bin');
    writeFileSync(src, randomBytes(MiB));
    assert.equal(asb('cp', src, `${id}:random.bin`).status, 0);
    const out = spawnSync(process.execPath, [ASB, 'exec', id, '--', 'cat random.bin; cat random.bin >&2'], {
      env,
      timeout: 120_000,
      maxBuffer: 16 * MiB,
    });
    assert.equal(out.status, 0, `exit ${out.status}, ${out.error}`);
    assert.ok(readFileSync(src).equals(out.stdout), 'stdout is the file, byte for byte');
    assert.ok(readFileSync(src).equals(out.stderr), 'stderr too');
    const head = sh(`$ASB exec ${id} -- cat random.bin | head -c 10 | wc -c`);
    assert.equal(head.stdout.trim(), '10');
    assert.equal(head.stderr, '', 'a reader that goes away (head) is no error to report');
  });

  it('asb cp copies a 250 MB file into the sandbox and back, byte for byte, in bounded memory', async (t) => {
    const src = join(home, 'big.bin');
    await randomFile(src, 250_000_000);
    const up = sh(`/usr/bin/time -f %M -o "$RSS" $ASB cp ${src} ${id}:big.bin`);
    assert.equal(up.status, 0, up.stderr);
    t.diagnostic(`asb cp upload peak RSS ${up.rssKb} kB`);
    assert.ok(up.rssKb < MAX_CLIENT_RSS_KB, `asb cp (upload) peaked at ${up.rssKb} kB`);
    const digest = await sha256(src);
    assert.equal(asb('exec', id, '--', 'sha256sum big.bin').stdout.split(' ')[0], digest);
    const back = join(home, 'big.back');
    const down = sh(`/usr/bin/time -f %M -o "$RSS" $ASB cp ${id}:big.bin ${back}`);
    assert.equal(down.status, 0, down.stderr);
    t.diagnostic(`asb cp download peak RSS ${down.rssKb} kB`);
    assert.ok(down.rssKb < MAX_CLIENT_RSS_KB, `asb cp (download) peaked at ${down.rssKb} kB`);
    assert.equal(statSync(back).size, 250_000_000);
    assert.equal(await sha256(back), digest);
    rmSync(back);
  });

  it("asb cp refuses a file over the engine's upload limit with its 413, before sending it", () => {
    const src = join(home, 'sparse-300M.bin');
    spawnSync('truncate', ['-s', String(300 * MiB), src]);
    const r = sh(`/usr/bin/time -f %M -o "$RSS" $ASB cp ${src} ${id}:too-big.bin`);
    assert.equal(r.status, 1);
    assert.match(
      r.stderr,
      /^asb: write too-big\.bin: request body of 314572800 bytes exceeds the limit of 268435456 bytes \(ASB_MAX_UPLOAD_BYTES\)\n/,
    );
    assert.ok(r.rssKb < MAX_CLIENT_RSS_KB, `asb cp peaked at ${r.rssKb} kB`);
    assert.equal(asb('exec', id, '--', 'test -e too-big.bin').status, 1, 'nothing was written');
  });

  it('asb cp downloads a file that is still being written: the bytes its header announced, not a cut transfer', async () => {
    const sb = await Sandbox.connect(id, conn());
    await sb.run('head -c 4000000 /dev/zero > growing.log');
    const writer = await sb.commands.start('while :; do head -c 65536 /dev/zero; done >> growing.log');
    try {
      for (let i = 0; i < 3; i++) {
        const dst = join(home, `growing-${i}.log`);
        const r = asb('cp', `${id}:growing.log`, dst);
        assert.equal(r.status, 0, r.stderr);
        assert.ok(statSync(dst).size >= 4_000_000, `${statSync(dst).size} bytes`);
      }
    } finally {
      await sb.commands.kill(writer.id);
    }
  });

  it('asb mcp returns the documented head and tail of 600 MiB of output, and the head of a 300 MB file, in bounded memory', async (t) => {
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [ASB, 'mcp'],
      env,
      stderr: 'ignore',
    });
    const client = new Client({ name: 'e2e-large', version: '1.0.0' });
    await client.connect(transport);
    try {
      const call = async (name: string, args: Record<string, unknown>) =>
        (await client.callTool({ name, arguments: args }, undefined, { timeout: 600_000 })) as ToolResult;
      const total = 600 * MiB + 'THE-END\n'.length;
      const big = await call('run_command', {
        command:
          "python3 -c \"import sys; b = b'a' * 1048576\nfor _ in range(600): sys.stdout.buffer.write(b)\nprint('THE-END')\"; echo done >&2",
        timeout_seconds: 600,
      });
      assert.notEqual(big.isError, true, textOf(big));
      assert.equal(big.structuredContent?.exit_code, 0);
      assert.equal(big.structuredContent?.truncated, true);
      const stdout = big.structuredContent?.stdout as string;
      assert.equal(
        stdout,
        `${'a'.repeat(32_000)}\n… [truncated: ${total - 64_000} characters omitted of ${total}] …\n${'a'.repeat(32_000 - 8)}THE-END\n`,
      );
      assert.equal(big.structuredContent?.stderr, 'done\n');

      assert.equal(
        (await call('run_command', { command: 'truncate -s 300000000 big.bin' })).structuredContent?.exit_code,
        0,
      );
      const read = await call('read_file', { path: 'big.bin' });
      assert.notEqual(read.isError, true, textOf(read));
      assert.match(
        textOf(read),
        /^big\.bin: 300000000 bytes, binary, base64 below\n… \[truncated: showing 1048576 of 300000000 bytes\]$/,
      );

      const peak = peakRssKb(transport.pid!);
      t.diagnostic(`asb mcp peak RSS ${peak} kB`);
      assert.ok(peak < MAX_CLIENT_RSS_KB, `asb mcp peaked at ${peak} kB`);
    } finally {
      await client.close();
    }
  });
});
