// When `asb mcp --http` sessions end, with a clock the test moves: unused after initialize, idle,
// never while a request is in flight; and the cap on sessions open at once.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js';
import { HttpSessions, isUse } from '../src/http-sessions.ts';
import { SandboxSession } from '../src/session.ts';

function setup(limits = { maxSessions: 2, unusedSessionTimeoutMs: 1_000, idleTimeoutMs: 10_000 }) {
  let now = 0;
  const ended: string[] = [];
  const sessions = new HttpSessions(
    limits,
    (msg) => ended.push(msg),
    () => now,
  );
  const open = (id: string) => {
    assert.equal(sessions.reserve(), undefined);
    sessions.add(
      id,
      new WebStandardStreamableHTTPServerTransport({ sessionIdGenerator: () => id }),
      new SandboxSession({ conn: {} }),
    );
    sessions.release();
    return sessions.get(id)!;
  };
  return {
    sessions,
    open,
    ended,
    advance: (ms: number) => {
      now += ms;
      sessions.sweep();
    },
  };
}

describe('MCP HTTP sessions', () => {
  it('tells the handshake from use', () => {
    for (const [body, used] of [
      [{ jsonrpc: '2.0', id: 1, method: 'initialize' }, false],
      [{ jsonrpc: '2.0', method: 'notifications/initialized' }, false],
      [{ jsonrpc: '2.0', id: 2, method: 'tools/call' }, true],
      [{ jsonrpc: '2.0', id: 3, method: 'ping' }, true],
      [
        [
          { jsonrpc: '2.0', method: 'notifications/initialized' },
          { jsonrpc: '2.0', id: 4, method: 'tools/list' },
        ],
        true,
      ],
      [{ jsonrpc: '2.0', id: 5, result: {} }, true],
      [undefined, false],
    ] as const)
      assert.equal(isUse(body), used, JSON.stringify(body));
  });

  it('ends a session with no request after initialize, and keeps one that was used', async () => {
    const { sessions, open, advance, ended } = setup();
    open('unused');
    const used = open('used');
    sessions.seen(used, { jsonrpc: '2.0', id: 2, method: 'tools/list' }, true)();
    advance(1_000);
    assert.equal(sessions.get('unused'), undefined);
    assert.ok(sessions.get('used'));
    assert.match(ended.join('\n'), /session unused ended: no request after initialize within 1 s/);
    await sessions.closeAll();
  });

  it('ends an idle session, but not while a request is in flight', async () => {
    const { sessions, open, advance } = setup();
    const live = open('busy');
    const done = sessions.seen(live, { jsonrpc: '2.0', id: 2, method: 'tools/call' }, true);
    advance(60_000);
    assert.ok(sessions.get('busy'), 'a long call is not idleness');
    done();
    advance(9_999);
    assert.ok(sessions.get('busy'));
    advance(1);
    assert.equal(sessions.get('busy'), undefined);
    await sessions.closeAll();
  });

  it("refuses a session past the cap, counting those being opened, with the limit's name", async () => {
    const { sessions, open } = setup();
    open('a');
    assert.equal(sessions.reserve(), undefined);
    assert.match(sessions.reserve()!, /too many MCP sessions open \(2, ASB_MCP_MAX_SESSIONS\)/);
    sessions.release();
    assert.equal(sessions.reserve(), undefined);
    sessions.release();
    await sessions.closeAll();
  });
});
