// asb mcp: the MCP server. stdio by default (what desktop agents and coding assistants spawn), or
// streamable HTTP with --http PORT (loopback, the engine's bearer token). It starts the local
// engine when none is running, so registering `asb mcp` with a client is the whole setup. With
// --kubernetes (or --kubeconfig) the sandboxes are SandboxClaims on a cluster instead.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { kubernetes, resolveConnection, SandboxError, type ResolvedConnection } from '@asb/sdk';
import { serveHttp, serveStdio, type McpOptions } from '@asb/mcp';
import type { Ctx } from '../context.ts';

export interface McpFlags {
  http?: string;
  host?: string;
  template?: string;
  idleTimeout?: string;
  sandbox?: string;
  kubernetes?: boolean;
  kubeconfig?: string;
  routerUrl?: string;
  warmPool?: string;
}

export async function mcpCommand(ctx: Ctx, flags: McpFlags): Promise<number> {
  const log = (msg: string) => process.stderr.write(`asb mcp: ${msg}\n`);
  const idleTimeoutMs = flags.idleTimeout !== undefined ? Number(flags.idleTimeout) * 1000 : undefined;
  if (idleTimeoutMs !== undefined && !(idleTimeoutMs >= 0))
    throw new Error(`--idle-timeout ${flags.idleTimeout}: give seconds (0: never)`);
  const common = { template: flags.template, idleTimeoutMs, sandbox: flags.sandbox, log };
  if (flags.kubernetes || flags.kubeconfig) {
    const connection = kubernetes({
      kubeconfig: flags.kubeconfig,
      router: flags.routerUrl ? { url: flags.routerUrl } : undefined,
    });
    // No engine token on a cluster: HTTP clients use ASB_MCP_TOKEN, or one made now and printed.
    const token = process.env.ASB_MCP_TOKEN || randomBytes(24).toString('base64url');
    if (flags.http !== undefined && !process.env.ASB_MCP_TOKEN)
      log(`bearer token for this server: ${token} (set ASB_MCP_TOKEN to choose one)`);
    return serve(
      { ...common, conn: { namespace: ctx.conn.namespace }, connection, warmPool: flags.warmPool },
      flags,
      token,
      log,
    );
  }
  let conn: ResolvedConnection;
  try {
    conn = resolveConnection(ctx.conn);
    const res = await fetch(`${conn.url}/healthz`, { signal: AbortSignal.timeout(2000) }).catch(() => undefined);
    if (!res) throw new SandboxError('engine not answering');
  } catch (err) {
    if (process.env.ASB_ENGINE_URL || ctx.conn.url) throw err;
    // stdout is the MCP channel in stdio mode: the engine's start says what it does on stderr.
    log('no local engine is running: starting one');
    const r = spawnSync(process.execPath, [process.argv[1]!, 'engine', 'start'], {
      stdio: ['ignore', 2, 2],
      env: process.env,
    });
    if (r.status !== 0) {
      throw new Error('could not start the local engine (see above); start it with `asb engine start`', { cause: err });
    }
    conn = resolveConnection(ctx.conn);
  }
  return serve({ ...common, conn }, flags, conn.token, log);
}

async function serve(opts: McpOptions, flags: McpFlags, token: string, log: (m: string) => void): Promise<number> {
  if (flags.http === undefined) {
    await serveStdio(opts);
    return 0;
  }
  const port = Number(flags.http);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error(`--http ${flags.http}: give a port number (0: any free port)`);
  const server = await serveHttp({ ...opts, host: flags.host ?? '127.0.0.1', port, token });
  log(`serving MCP (streamable HTTP) at ${server.url}; send Authorization: Bearer <token>`);
  process.stdout.write(`${server.url}\n`);
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await server.close();
  return 0;
}
