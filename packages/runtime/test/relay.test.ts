// `asb-spawn --relay NAME` on the host (abstract Unix sockets exist outside gVisor too): bytes
// both ways unchanged, each EOF passed on while the other way goes on, exit status.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildAsbSpawn, readAll } from './support/harness.ts';

const dir = mkdtempSync(join(tmpdir(), 'asb-relay-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const asbSpawn = buildAsbSpawn(dir);

/** A server on a fresh abstract name; `onConnection` gets each accepted socket (half-open allowed). */
async function abstractServer(onConnection: (s: net.Socket) => void): Promise<{ name: string; server: net.Server }> {
  const name = `asb-test-${randomBytes(6).toString('hex')}`;
  const server = net.createServer({ allowHalfOpen: true }, onConnection);
  await new Promise<void>((r) => server.listen(`\0${name}`, r));
  return { name, server };
}

/** A connected socket pair (the engine's side and the relay's stdin/stdout), as the engine makes. */
async function socketPair(): Promise<[mine: net.Socket, theirs: net.Socket]> {
  const path = join(dir, `pair-${randomBytes(4).toString('hex')}.sock`);
  const server = net.createServer({ allowHalfOpen: true });
  await new Promise<void>((r) => server.listen(path, r));
  const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
  const mine = net.connect({ path, allowHalfOpen: true });
  await new Promise<void>((r, j) => {
    mine.once('connect', r);
    mine.once('error', j);
  });
  const theirs = await accepted;
  server.close();
  return [mine, theirs];
}

/** What `s` reads until its EOF, leaving it open for writing (readAll's iterator would destroy it). */
function untilEnd(s: net.Socket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  s.on('data', (c: Buffer) => chunks.push(c));
  return new Promise((r) => s.once('end', () => r(Buffer.concat(chunks))));
}

const exitOf = (child: ReturnType<typeof spawn>) =>
  new Promise<number | null>((r) => child.once('exit', (code) => r(code)));

describe('asb-spawn --relay', { skip: typeof asbSpawn === 'string' ? undefined : asbSpawn.skip }, () => {
  it('copies a megabyte both ways over pipes and ends when both ways have ended', async () => {
    // An echo server that ends its side once the relay's side ended: the half-close came through.
    const { name, server } = await abstractServer((s) => s.pipe(s));
    try {
      const child = spawn(asbSpawn as string, ['--relay', name], { stdio: ['pipe', 'pipe', 'pipe'] });
      const exit = exitOf(child);
      const data = randomBytes(1024 * 1024);
      const echoed = readAll(child.stdout);
      child.stdin.end(data);
      assert.ok((await echoed).equals(data));
      assert.equal(await exit, 0);
    } finally {
      server.close();
    }
  });

  it('passes an EOF from the socket on while stdin still flows, over one socket as stdin and stdout', async () => {
    let received: Promise<Buffer> | undefined;
    const { name, server } = await abstractServer((s) => {
      received = readAll(s);
      s.end('from the agent'); // ends this way first; the other stays open
    });
    try {
      const [mine, theirs] = await socketPair();
      const child = spawn(asbSpawn as string, ['--relay', name], { stdio: [theirs, theirs, 'pipe'] });
      theirs.destroy(); // the relay holds its own copy
      const exit = exitOf(child);
      const fromAgent = untilEnd(mine); // resolves at the EOF the relay passed on
      assert.equal((await fromAgent).toString(), 'from the agent');
      mine.end('after the EOF');
      assert.equal((await received!).toString(), 'after the EOF');
      assert.equal(await exit, 0);
    } finally {
      server.close();
    }
  });

  it('exits 1 with a message when nothing listens on the name', async () => {
    const child = spawn(asbSpawn as string, ['--relay', `asb-test-none-${randomBytes(6).toString('hex')}`], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const stderr = readAll(child.stderr);
    assert.equal(await exitOf(child), 1);
    assert.match((await stderr).toString(), /connect to @asb-test-none-\w+: Connection refused/);
  });
});
