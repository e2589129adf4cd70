// The guards over real sockets, on a bare node server: capped body reads, answers that do not
// read the rest of a body, the body-idle watchdog (and what it must not count as idle), and node's
// header bounds answered in the server's own format.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  answer,
  answerClientErrors,
  closeStalled,
  limitConnections,
  readCappedBody,
  serverOptions,
  watchBodyProgress,
  BodyBudget,
  BodyBudgetError,
  BodyTooLargeError,
} from '../src/index.ts';
import {
  answers,
  connected,
  endlessHeaders,
  oversizedBody,
  oversizedHeader,
  partialBody,
  stalledBody,
  tricklingBody,
  MiB,
} from './support/clients.ts';

const LIMITS = { headersTimeoutMs: 1_000, maxHeaderBytes: 8 * 1024, bodyIdleTimeoutMs: 1_000, maxConnections: 1_000 };
const json = (status: number, message: string) => ({
  contentType: 'application/json',
  text: JSON.stringify({ status, message }),
});

/** A server with the guards, whose handler reads (capped), or holds the body a while first. */
async function guardedServer(
  handler: (req: http.IncomingMessage, res: http.ServerResponse) => void,
): Promise<{ url: string; bytesRead: () => number[]; close: () => void }> {
  const reads: number[] = [];
  const server = http.createServer(serverOptions(LIMITS), (req, res) => {
    req.socket.once('close', () => reads.push(req.socket.bytesRead));
    watchBodyProgress(req, LIMITS.bodyIdleTimeoutMs, () =>
      closeStalled(req, res, { status: 408, ...json(408, 'stalled') }),
    );
    handler(req, res);
  });
  answerClientErrors(server, LIMITS, json);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    bytesRead: () => reads,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}

const capped = (max: number) => (req: http.IncomingMessage, res: http.ServerResponse) => {
  readCappedBody(req, max).then(
    (body) => answer(req, res, { status: 200, ...json(200, `read ${body.length}`) }),
    (err) => {
      if (err instanceof BodyTooLargeError) answer(req, res, { status: 413, ...json(413, err.message) });
    },
  );
};

describe('http guards', () => {
  const closers: Array<() => void> = [];
  after(() => closers.forEach((c) => c()));

  it('refuses a body over the cap with 413, before reading when Content-Length says so, at the cap when chunked', async () => {
    const s = await guardedServer(capped(MiB));
    closers.push(s.close);
    const declared = await oversizedBody(s.url, { path: '/', totalBytes: 100 * MiB, chunked: false });
    assert.equal(declared.status, 413);
    assert.match(declared.body, /request body of 104857600 bytes exceeds the limit of 1048576 bytes/);
    const chunked = await oversizedBody(s.url, { path: '/', totalBytes: 100 * MiB, chunked: true });
    assert.equal(chunked.status, 413);
    assert.match(chunked.body, /exceeds the limit of 1048576 bytes/);
    assert.equal(chunked.headers.connection, 'close');
    await new Promise((r) => setTimeout(r, 1_000));
    assert.ok(Math.max(...s.bytesRead()) < 2 * MiB, `the server read ${Math.max(...s.bytesRead())} bytes`);
  });

  it('reads a body under the cap whole', async () => {
    const s = await guardedServer(capped(MiB));
    closers.push(s.close);
    const r = await fetch(s.url, { method: 'POST', body: Buffer.alloc(MiB) });
    assert.deepEqual(await r.json(), { status: 200, message: `read ${MiB}` });
  });

  it('answers a request without reading its body, and the client gets the answer rather than a reset', async () => {
    const s = await guardedServer((req, res) => answer(req, res, { status: 401, ...json(401, 'who are you') }));
    closers.push(s.close);
    for (const chunked of [false, true, false, true]) {
      const r = await oversizedBody(s.url, { path: '/', totalBytes: 200 * MiB, chunked });
      assert.equal(r.status, 401);
      assert.equal(r.headers.connection, 'close');
    }
    await new Promise((r) => setTimeout(r, 1_000));
    assert.ok(Math.max(...s.bytesRead()) < MiB, `the server read ${Math.max(...s.bytesRead())} bytes`);
  });

  it('ends a body that stops arriving with 408 and closes its connection', async () => {
    const s = await guardedServer(capped(MiB));
    closers.push(s.close);
    for (const chunked of [false, true]) {
      const r = await stalledBody(s.url, { path: '/', sendBytes: 10, chunked, giveUpMs: 15_000 });
      assert.equal(r.status, 408);
      assert.ok(r.closedAfterMs < LIMITS.bodyIdleTimeoutMs + 5_000, `closed after ${r.closedAfterMs} ms`);
    }
  });

  it('lets a body flow slowly for longer than the bound while each piece comes within it', async () => {
    const s = await guardedServer(capped(MiB));
    closers.push(s.close);
    const r = await tricklingBody(s.url, {
      path: '/',
      chunkBytes: 10,
      everyMs: LIMITS.bodyIdleTimeoutMs / 3,
      chunks: 8,
    });
    assert.equal(r.status, 200, r.body);
  });

  it('does not count as idle a body the server itself is not reading yet (backpressure)', async () => {
    // The handler holds the body for 3 bounds before it reads it: the client is not slow.
    const s = await guardedServer((req, res) => {
      setTimeout(() => capped(64 * MiB)(req, res), 3 * LIMITS.bodyIdleTimeoutMs);
    });
    closers.push(s.close);
    const r = await fetch(s.url, { method: 'POST', body: Buffer.alloc(8 * MiB) });
    assert.equal(r.status, 200);
  });

  it("answers a header block over the limit with 431 and headers that never end with 408, in the server's format", async () => {
    const s = await guardedServer(capped(MiB));
    closers.push(s.close);
    const big = await oversizedHeader(s.url, { path: '/', bytes: 16 * 1024 });
    assert.equal(big.status, 431);
    assert.deepEqual(JSON.parse(big.body), { status: 431, message: 'request headers exceed the limit of 8192 bytes' });
    const slow = await endlessHeaders(s.url, { everyMs: 100, giveUpMs: 15_000 });
    assert.equal(slow.status, 408);
    assert.equal(JSON.parse(slow.body).message, 'request headers did not arrive within 1000 ms');
    assert.ok(slow.closedAfterMs < LIMITS.headersTimeoutMs + 5_000, `closed after ${slow.closedAfterMs} ms`);
  });

  it('holds at most the budget of bodies being read across requests: the one over it gets 503, and the budget comes back', async () => {
    const budget = new BodyBudget(6 * MiB);
    const s = await guardedServer((req, res) => {
      readCappedBody(req, 4 * MiB, budget).then(
        (body) => answer(req, res, { status: 200, ...json(200, `read ${body.length}`) }),
        (err) => {
          if (err instanceof BodyBudgetError) answer(req, res, { status: 503, ...json(503, err.message) });
        },
      );
    });
    closers.push(s.close);
    // Two bodies of 4 MiB, 3 and 3.5 MiB of each sent and held: the second crosses 6 MiB.
    const first = partialBody(s.url, 4 * MiB, 3 * MiB);
    await first.sent;
    const second = partialBody(s.url, 4 * MiB, 3.5 * MiB);
    const refused = await second.answer;
    assert.equal(refused.status, 503);
    assert.match(refused.body, /reading 6291456 bytes of request bodies at once already/);
    assert.ok(budget.usedBytes <= 6 * MiB && budget.usedBytes >= 3 * MiB, `${budget.usedBytes} bytes held`);
    first.finish();
    assert.equal((await first.answer).status, 200);
    assert.equal(budget.usedBytes, 0, 'a body read whole gives its bytes back');
    const later = await fetch(s.url, { method: 'POST', body: Buffer.alloc(4 * MiB) });
    assert.equal(later.status, 200);
  });

  it('closes connections over the limit as they are accepted, and takes new ones once others close', async () => {
    let dropped = 0;
    const server = http.createServer((_req, res) => res.end('ok'));
    limitConnections(server, 3, () => dropped++);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    closers.push(() => {
      server.closeAllConnections();
      server.close();
    });
    const { port } = server.address() as AddressInfo;
    const open = await Promise.all([1, 2, 3].map(() => connected(port)));
    assert.equal(await answers(await connected(port)), false, 'the fourth connection was closed unanswered');
    assert.equal(dropped, 1);
    open[0]!.destroy();
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(await (await fetch(`http://127.0.0.1:${port}/`)).text(), 'ok');
    open.forEach((c) => c.destroy());
  });
});
