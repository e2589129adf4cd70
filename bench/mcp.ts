// npm run bench:mcp: the MCP server as an agent sees it, through the official client over stdio
// (`asb mcp`, a real engine daemon under gVisor): the round trip of a `true` tool call, and the
// first call of a conversation (which makes its sandbox) without and with a warm pool.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { apply, Objects } from '@asb/sdk';
import { percentile, table } from './stats.ts';

const ASB = join(import.meta.dirname, '../bin/asb');
const N = Number(process.env.BENCH_MCP_N ?? 200);
const FIRST_N = Number(process.env.BENCH_MCP_FIRST_N ?? 8);
const ms = (n: number) => `${n.toFixed(1)} ms`;

async function main(): Promise<void> {
  const home = mkdtempSync(join(tmpdir(), 'asb-bench-mcp-'));
  const env = {
    ...process.env,
    ASB_HOME: home,
    ASB_ENGINE_PORT: '0',
    ASB_LOG_LEVEL: 'warn',
    ASB_HOST_IMAGES: '1',
  } as Record<string, string>;
  const asb = (...args: string[]) => spawnSync(process.execPath, [ASB, ...args], { env, encoding: 'utf8' });
  if (asb('engine', 'start').status !== 0) throw new Error('engine did not start');
  const conn = {
    url: JSON.parse(readFileSync(join(home, 'engine.json'), 'utf8')).url as string,
    token: readFileSync(join(home, 'token'), 'utf8').trim(),
  };
  const connect = async () => {
    const client = new Client({ name: 'bench', version: '1.0.0' });
    await client.connect(
      new StdioClientTransport({ command: process.execPath, args: [ASB, 'mcp'], env, stderr: 'ignore' }),
    );
    return client;
  };
  const rows: string[][] = [];
  try {
    // First call of a conversation: the client is connected, the sandbox does not exist yet.
    const firstCalls = async () => {
      const out: number[] = [];
      for (let i = 0; i < FIRST_N; i++) {
        const client = await connect();
        const t0 = performance.now();
        await client.callTool({ name: 'run_command', arguments: { command: 'true' } });
        out.push(performance.now() - t0);
        await client.close();
        await new Promise((r) => setTimeout(r, 1500)); // the pool refills; the deletion settles
      }
      return out;
    };
    const cold = await firstCalls();
    rows.push([
      'first tool call of a conversation, no warm pool',
      String(FIRST_N),
      ms(percentile(cold, 50)),
      ms(percentile(cold, 95)),
    ]);
    await apply(
      `apiVersion: extensions.agents.x-k8s.io/v1alpha1
kind: SandboxWarmPool
metadata: { name: mcp-pool }
spec: { replicas: 2, sandboxTemplateRef: { name: python-runtime-template } }
`,
      conn,
    );
    const objects = new Objects(conn);
    while ((await objects.get('SandboxWarmPool', 'mcp-pool')).status?.readyReplicas !== 2)
      await new Promise((r) => setTimeout(r, 100));
    const warm = await firstCalls();
    rows.push([
      'first tool call of a conversation, warm pool of 2',
      String(FIRST_N),
      ms(percentile(warm, 50)),
      ms(percentile(warm, 95)),
    ]);
    await objects.delete('SandboxWarmPool', 'mcp-pool');

    const client = await connect();
    for (let i = 0; i < 20; i++) await client.callTool({ name: 'run_command', arguments: { command: 'true' } });
    const rt: number[] = [];
    for (let i = 0; i < N; i++) {
      const t0 = performance.now();
      await client.callTool({ name: 'run_command', arguments: { command: 'true' } });
      rt.push(performance.now() - t0);
    }
    rows.push(['tool call round trip, run_command `true`', String(N), ms(percentile(rt, 50)), ms(percentile(rt, 95))]);
    await client.close();

    console.log(`\nMCP benchmark (stdio, official client) — ${new Date().toISOString()}\n`);
    console.log(table(['measure', 'n', 'p50', 'p95'], rows));
  } finally {
    asb('engine', 'stop');
    rmSync(home, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
