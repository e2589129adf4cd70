// Real agents for the tests, over real sockets, and one small client for both protocols:
// - in process, HTTP/1.1 on an ephemeral loopback port (how Kubernetes runs it);
// - as a child process serving HTTP/2 over a socketpair on its fd 0 (how the local engine runs
//   it), optionally under asb-spawn as the local sandbox's PID 1 does.
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { configFromEnv, createAgent, requestHandler, serveHttp1 } from '../../src/server.ts';

export interface Res {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Readable;
  /** Goes away mid-response, as a client that gave up does. */
  abort(): void;
}

export type Body = Uint8Array | string | AsyncIterable<Uint8Array>;
export interface SendOpts {
  body?: Body;
  headers?: Record<string, string>;
}

export interface TestAgent {
  /** Sends `path` exactly as given: no URL normalisation, so `..` and `%2e%2e` reach the agent. */
  send(method: string, path: string, opts?: SendOpts): Promise<Res>;
  baseDir: string;
  /** The agent's OS process, when it runs in one of its own. */
  child?: ChildProcess;
  stop(): Promise<void>;
}

/** Environment every test agent gets: small limits, so the limits can be tested. */
export const TEST_LIMITS = { ASB_MAX_UPLOAD_BYTES: String(2 * 1024 * 1024), ASB_MAX_OUTPUT_BYTES: String(1024 * 1024) };

const repoRoot = new URL('../../../../', import.meta.url).pathname;

/** Writes a body (one buffer, or chunks with no length given), tolerating a server that answers
 *  and stops reading before the end (413). */
async function writeBody(w: NodeJS.WritableStream & { destroyed?: boolean }, body: Body | undefined): Promise<void> {
  if (body === undefined) return void w.end();
  if (typeof body === 'string' || body instanceof Uint8Array) return void w.end(body);
  try {
    for await (const chunk of body) {
      if (w.destroyed) return;
      if (!w.write(chunk)) {
        await new Promise<void>((r) => {
          const done = () => {
            w.off('drain', done);
            w.off('close', done);
            r();
          };
          w.on('drain', done);
          w.on('close', done);
        });
      }
    }
    if (!w.destroyed) w.end();
  } catch {
    /* the server stopped reading */
  }
}

function http1Send(port: number) {
  return (method: string, path: string, opts: SendOpts = {}): Promise<Res> =>
    new Promise((resolve, reject) => {
      const headers = { ...opts.headers };
      const req = http.request({ host: '127.0.0.1', port, method, path, headers, agent: false });
      let answered = false;
      req.on('response', (res) => {
        answered = true;
        resolve({ status: res.statusCode!, headers: res.headers, body: res, abort: () => req.destroy() });
      });
      req.on('error', (err) => {
        if (!answered) reject(err);
      });
      void writeBody(req, opts.body);
    });
}

export async function startInProcess(): Promise<TestAgent> {
  const baseDir = mkdtempSync(join(tmpdir(), 'asb-runtime-'));
  // The agent's environment as a sandbox's would be: its configuration, which commands must not see.
  const env = { PATH: process.env.PATH, SANDBOX_BASE_DIR: baseDir, ...TEST_LIMITS };
  const agent = createAgent(configFromEnv(env), undefined, env);
  const { server, port } = await serveHttp1(await requestHandler(agent.app), '127.0.0.1', 0);
  return {
    send: http1Send(port),
    baseDir,
    async stop() {
      for (const p of agent.procs.list()) agent.procs.remove(p.id);
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      rmSync(baseDir, { recursive: true, force: true });
    },
  };
}

/** A connected pair of sockets: `ours` here, `theirs` to hand to a child as a file descriptor. */
async function socketPair(dir: string): Promise<{ ours: net.Socket; theirs: net.Socket; server: net.Server }> {
  const server = net.createServer();
  const path = join(dir, 'agent.sock');
  await new Promise<void>((r) => server.listen(path, r));
  const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
  const ours = net.connect(path);
  await new Promise<void>((r, j) => {
    ours.once('connect', r);
    ours.once('error', j);
  });
  return { ours, theirs: await accepted, server };
}

/** asb-spawn built from this package's source into `dir`, or why not (no C compiler). */
export function buildAsbSpawn(dir: string): string | { skip: string } {
  const out = join(dir, 'asb-spawn');
  try {
    execFileSync('cc', ['-O2', '-Wall', join(repoRoot, 'packages/runtime/native/asb-spawn.c'), '-o', out], {
      stdio: 'pipe',
    });
    return out;
  } catch (err) {
    return { skip: `asb-spawn could not be built (${String((err as Error).message).split('\n')[0]})` };
  }
}

/** The Go agent (packages/runtime/agent-go) built into `dir`, or why not (no Go toolchain). */
export function buildGoAgent(dir: string): string | { skip: string } {
  const out = join(dir, 'asb-agent');
  try {
    execFileSync('go', ['build', '-trimpath', '-o', out, '.'], {
      cwd: join(repoRoot, 'packages/runtime/agent-go'),
      env: { ...process.env, CGO_ENABLED: '0', GOFLAGS: process.env.GOFLAGS ?? '-mod=mod' },
      stdio: 'pipe',
    });
    return out;
  } catch (err) {
    return { skip: `the Go agent could not be built (${String((err as Error).message).split('\n')[0]})` };
  }
}

/** The agent as the local engine starts it: `main.ts --fd 0` on one end of a socketpair. */
export async function startChildOverFd(
  opts: { asbSpawn?: string; env?: Record<string, string>; agent?: string } = {},
): Promise<TestAgent & { stderr: () => string; closeConnection: () => void }> {
  const dir = mkdtempSync(join(tmpdir(), 'asb-runtime-fd-'));
  const baseDir = join(dir, 'app');
  execFileSync('mkdir', [baseDir]);
  const { ours, theirs, server } = await socketPair(dir);
  // `agent`: another agent binary serving the same protocol (the Go agent, agent-go/).
  const agentArgv = opts.agent
    ? [opts.agent, '--fd', '0']
    : [process.execPath, '--import', 'tsx', join(repoRoot, 'packages/runtime/src/main.ts'), '--fd', '0'];
  const argv = opts.asbSpawn ? [opts.asbSpawn, '--init', '--', ...agentArgv] : agentArgv;
  const child = spawn(argv[0]!, argv.slice(1), {
    // Its own process group, so that stop() also ends the agent asb-spawn started (in a sandbox
    // that happens when PID 1 dies; here the agent would be orphaned and hold our stderr pipe).
    cwd: repoRoot,
    stdio: [theirs, 'ignore', 'pipe'],
    detached: true,
    env: { PATH: process.env.PATH, SANDBOX_BASE_DIR: baseDir, ...TEST_LIMITS, ...opts.env },
  });
  theirs.destroy(); // the child holds its own copy
  server.close();
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => {
    stderr += b.toString();
  });
  const session = http2.connect('http://agent', { createConnection: () => ours });
  session.on('error', () => undefined); // surfaced per request
  const send = (method: string, path: string, o: SendOpts = {}): Promise<Res> =>
    new Promise((resolve, reject) => {
      const stream = session.request({ ':method': method, ':path': path, ...o.headers });
      let answered = false;
      stream.on('response', (h) => {
        answered = true;
        resolve({
          status: Number(h[':status']),
          headers: h,
          body: stream,
          abort: () => stream.close(http2.constants.NGHTTP2_CANCEL),
        });
      });
      stream.on('error', (err: Error) => {
        if (!answered) reject(err);
      });
      void writeBody(stream, o.body);
    });
  const agent = {
    send,
    baseDir,
    child,
    stderr: () => stderr,
    closeConnection() {
      session.destroy();
      ours.destroy();
    },
    async stop() {
      if (child.exitCode === null && !session.destroyed) {
        // Processes are detached from the agent: end them through the API, as a client would.
        const list = await send('GET', '/v1/processes').then(
          (r) => json<Array<{ id: string }>>(r),
          () => [],
        );
        for (const p of list) await send('DELETE', `/v1/processes/${p.id}`).then(drain, () => undefined);
      }
      session.destroy();
      ours.destroy();
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        process.kill(-child.pid!, 'SIGKILL');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
  await waitFor(
    async () => (await send('GET', '/').then(drain, () => 0)) === 200,
    () => `the agent did not start: ${stderr}`,
  );
  return agent;
}

// ---- reading responses ----

export async function readAll(r: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** Reads and discards the body; returns the status. */
export async function drain(res: Res): Promise<number> {
  await readAll(res.body);
  return res.status;
}

export async function json<T = any>(res: Res): Promise<T> {
  return JSON.parse((await readAll(res.body)).toString()) as T;
}

/** One parsed JSON value per line, as the lines arrive. */
export async function* ndjson<T = any>(r: Readable): AsyncGenerator<T> {
  let buf = '';
  for await (const chunk of r) {
    buf += (chunk as Buffer).toString();
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (line) yield JSON.parse(line) as T;
    }
  }
}

// ---- waiting and processes ----

/** Polls `pred` until it holds; the deadline is a hang guard, not an assertion about speed. */
export async function waitFor(
  pred: () => boolean | Promise<boolean>,
  what: () => string,
  deadlineMs = 15_000,
): Promise<void> {
  const end = Date.now() + deadlineMs;
  while (!(await pred())) {
    if (Date.now() > end) throw new Error(`timed out waiting: ${what()}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Processes that are running (not zombies) in process group `pgid`, or with pid `pid`. */
export function liveProcesses(match: { pgid?: number; pid?: number }): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue;
    }
    // pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses.
    const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (state === 'Z' || state === 'X') continue;
    if (
      (match.pgid !== undefined && Number(pgrp) === match.pgid) ||
      (match.pid !== undefined && Number(name) === match.pid)
    )
      out.push(Number(name));
  }
  return out;
}

export const hasProc = existsSync('/proc/self/stat');
