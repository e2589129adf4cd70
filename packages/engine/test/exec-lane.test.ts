// The engine's side of the exec lane (src/workloads/exec-lane.ts) against a lane that the test
// plays itself over a real socketpair, with a real HTTP server and client: flow control holds a
// command whose client does not read, and a lane that keeps sending past the pause it was asked
// for (not asb-spawn: the sandbox's own code, which can reach the lane's process) is ended rather
// than buffered for. The lane's real process is tested end to end in test/e2e/exec-lane.test.ts.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type net from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { socketPair } from '../src/drivers/socketpair.ts';
import { ExecLane } from '../src/workloads/exec-lane.ts';

const CONTEXT = {
  env: { PATH: '/bin' },
  cwd: '/app',
  shell: ['/bin/sh'],
  defaultTimeoutMs: 60_000,
  maxOutputBytes: 1 << 20,
};
const CHUNK = Buffer.alloc(64 * 1024, 'y');

/** One frame of asb-spawn's protocol: u32 length of the rest, u8 type, u32 id, payload. */
function frame(type: number, id: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(9);
  head.writeUInt32LE(5 + payload.length, 0);
  head.writeUInt8(type, 4);
  head.writeUInt32LE(id, 5);
  return Buffer.concat([head, payload]);
}

/** Plays the lane's process: answers a spawn with STARTED, then writes output until told to pause
 *  (unless `hostile`), and returns what it was asked. */
function playLane(socket: net.Socket, hostile: boolean) {
  const asked: number[] = [];
  let paused = false;
  let id = 0;
  let sent = 0;
  const pump = () => {
    while (id && (hostile || !paused) && sent < 256 * 1024 * 1024) {
      sent += CHUNK.length;
      if (!socket.write(frame(2, id, CHUNK))) return void socket.once('drain', pump);
    }
  };
  let buf = Buffer.alloc(0);
  socket.on('data', (chunk: Buffer) => {
    buf = Buffer.concat([buf, chunk]);
    while (buf.length >= 9 && buf.length >= 4 + buf.readUInt32LE(0)) {
      const type = buf.readUInt8(4);
      asked.push(type);
      if (type === 1) {
        id = buf.readUInt32LE(5);
        const pid = Buffer.alloc(4);
        pid.writeUInt32LE(42);
        socket.write(frame(1, id, pid));
        setImmediate(pump);
      }
      if (type === 4) paused = true;
      if (type === 5) {
        paused = false;
        setImmediate(pump);
      }
      buf = buf.subarray(4 + buf.readUInt32LE(0));
    }
  });
  socket.on('error', () => undefined);
  socket.resume(); // socketPair's accepted end starts paused
  return { asked, sent: () => sent };
}

async function setUp(hostile: boolean) {
  const dir = mkdtempSync(join(tmpdir(), 'asb-lane-'));
  const [engineEnd, laneEnd] = await socketPair(join(dir, 'lane.sock'));
  const lane = new ExecLane(engineEnd, CONTEXT);
  const played = playLane(laneEnd, hostile);
  const server = http.createServer((_req, res) => {
    assert.ok(lane.serve(Buffer.from(JSON.stringify({ command: 'yes' })), res));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  // A client that takes the headers and then reads nothing.
  const response = await new Promise<http.IncomingMessage>((resolve, reject) =>
    http.get({ host: '127.0.0.1', port, path: '/' }, resolve).on('error', reject),
  );
  response.pause();
  const ended = new Promise<string>((r) => {
    response.once('aborted', () => r('aborted'));
    response.once('error', () => r('error'));
    response.once('end', () => r('end'));
  });
  return {
    lane,
    played,
    response,
    ended,
    async tearDown() {
      response.destroy();
      engineEnd.destroy();
      laneEnd.destroy();
      await new Promise((r) => server.close(r));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const until = async (cond: () => boolean, ms: number) => {
  for (const end = Date.now() + ms; !cond() && Date.now() < end;) await new Promise((r) => setTimeout(r, 20));
  return cond();
};

describe('the exec lane, engine side', () => {
  const open: Array<() => Promise<void>> = [];
  after(async () => {
    for (const f of open) await f();
  });

  it('pauses a command whose client does not read, and holds a bounded amount for it', async () => {
    const t = await setUp(false);
    open.push(t.tearDown);
    assert.ok(await until(() => t.played.asked.includes(4), 5_000), 'the lane was told to pause');
    await new Promise((r) => setTimeout(r, 300));
    const sentWhenPaused = t.played.sent();
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(t.played.sent(), sentWhenPaused, 'nothing more is sent while paused');
    assert.ok(sentWhenPaused < 16 * 1024 * 1024, `held ${sentWhenPaused} bytes`);
    assert.ok(t.lane.alive);
    // The client reads again: the lane is told to resume.
    t.response.resume();
    assert.ok(await until(() => t.played.asked.includes(5), 5_000), 'the lane was told to resume');
  });

  it('ends a lane that keeps sending past the pause, and cuts its commands', async () => {
    const t = await setUp(true);
    open.push(t.tearDown);
    assert.ok(await until(() => !t.lane.alive, 20_000), 'the hostile lane was ended');
    assert.ok(t.lane.lostUnasked, 'as lost, not closed by the engine');
    assert.ok(t.played.sent() < 256 * 1024 * 1024, 'long before it had sent all it would');
    t.response.resume();
    assert.notEqual(await t.ended, 'end', 'the response was cut, not completed');
  });
});
