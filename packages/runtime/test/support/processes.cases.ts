// Behaviour of commands and processes, run against every way the agent is served (suite.ts).
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import type { ExecEvent, ExecuteResponse, ProcessInfo } from '../../src/replies.ts';
import { drain, json, liveProcesses, ndjson, waitFor, type TestAgent } from './harness.ts';

const post = (a: TestAgent, path: string, body: unknown) =>
  a.send('POST', path, { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });

async function execute(a: TestAgent, body: Record<string, unknown>): Promise<ExecuteResponse> {
  const res = await post(a, '/execute', body);
  assert.equal(res.status, 200);
  return json<ExecuteResponse>(res);
}

async function streamed(a: TestAgent, body: Record<string, unknown>): Promise<ExecEvent[]> {
  const res = await post(a, '/v1/exec', body);
  assert.equal(res.status, 200);
  assert.equal(res.headers['content-type'], 'application/x-ndjson');
  const events: ExecEvent[] = [];
  for await (const ev of ndjson<ExecEvent>(res.body)) events.push(ev);
  return events;
}

const gone = (match: { pgid?: number; pid?: number }) => () => liveProcesses(match).length === 0;

export function processCases(agent: () => TestAgent): void {
  it('answers the readiness probe as upstream does, without a date header', async () => {
    const res = await agent().send('GET', '/');
    // Formatting a date loads ICU, which costs ~800 ms on the first response under gVisor.
    assert.equal(res.headers.date, undefined);
    assert.deepEqual(await json(res), { status: 'ok', message: 'Sandbox Runtime is active.' });
  });

  it('returns stdout, stderr and the exit code of a shell command', async () => {
    assert.deepEqual(await execute(agent(), { command: 'echo out; echo err >&2; exit 3' }), {
      stdout: 'out\n',
      stderr: 'err\n',
      exit_code: 3,
    });
  });

  it('runs plain commands and reports a missing program as bash would', async () => {
    assert.deepEqual(await execute(agent(), { command: 'echo plain words' }), {
      stdout: 'plain words\n',
      stderr: '',
      exit_code: 0,
    });
    assert.equal((await execute(agent(), { command: 'false' })).exit_code, 1);
    const missing = await execute(agent(), { command: 'no-such-program-asb --flag' });
    assert.equal(missing.exit_code, 127);
    assert.match(missing.stderr, /no-such-program-asb: command not found/);
  });

  it('feeds stdin to a command', async () => {
    assert.equal((await execute(agent(), { command: 'tr a-z A-Z', stdin: 'hello\n' })).stdout, 'HELLO\n');
    assert.equal(
      (await execute(agent(), { command: 'cat' })).stdout,
      '',
      'without stdin a command reads EOF, it does not hang',
    );
  });

  it('runs in the base directory with a clean environment plus the request env', async () => {
    const r = await execute(agent(), {
      command:
        'pwd; echo "$GREETING"; echo "${SANDBOX_BASE_DIR-unset} ${ASB_MAX_UPLOAD_BYTES-unset}"; echo "$LANG"; test -n "$HOME" && test -n "$PATH" && echo has-home-and-path',
      env: { GREETING: 'hi there' },
    });
    assert.deepEqual(r.stdout.split('\n'), [
      realpathSync(agent().baseDir),
      'hi there',
      'unset unset',
      'C.UTF-8',
      'has-home-and-path',
      '',
    ]);
    await drain(await agent().send('POST', '/v1/mkdir/sub%2Fdir'));
    assert.equal(
      (await execute(agent(), { command: 'pwd', cwd: 'sub/dir' })).stdout,
      `${realpathSync(agent().baseDir)}/sub/dir\n`,
    );
  });

  it('caps buffered output per stream and says it did', async () => {
    const r = await execute(agent(), { command: 'head -c 3000000 /dev/zero | tr "\\0" a; echo tail >&2' });
    assert.equal(r.stdout.length, 1024 * 1024);
    assert.equal(r.stderr, 'tail\n');
    assert.equal(r.truncated, true);
    assert.equal(r.exit_code, 0);
  });

  it('streams start, output in the order it was written, and exit', async () => {
    const events = await streamed(agent(), {
      command: 'for i in 1 2 3; do echo o$i; sleep 0.05; echo e$i >&2; sleep 0.05; done; exit 4',
    });
    const first = events[0]!;
    assert.equal(first.type, 'start');
    assert.ok(first.type === 'start' && first.pid > 0);
    const output = events
      .slice(1, -1)
      .map((e) => ('data' in e ? `${e.type}:${e.data}` : e.type))
      .join('');
    assert.equal(output, 'stdout:o1\nstderr:e1\nstdout:o2\nstderr:e2\nstdout:o3\nstderr:e3\n');
    const last = events.at(-1)!;
    assert.ok(last.type === 'exit');
    assert.equal(last.exitCode, 4);
    assert.equal(last.timedOut, false);
    assert.equal(typeof last.durationMs, 'number');
  });

  it('streams a large output completely through flow control', async () => {
    let text = '';
    for (const ev of await streamed(agent(), { command: 'seq 1 400000' })) if (ev.type === 'stdout') text += ev.data;
    const lines = text.trimEnd().split('\n');
    assert.equal(lines.length, 400000);
    assert.equal(lines.at(-1), '400000');
  });

  it('streams the exact bytes a command wrote as base64 when asked, invalid UTF-8 and NULs included', async () => {
    // Every byte value, twice, on stdout; bytes that are not UTF-8 on stderr.
    const command =
      'python3 -c "import sys; sys.stdout.buffer.write(bytes(range(256)) * 2); sys.stderr.buffer.write(b\'\\xff\\xfe\\x00\\xc3\')"';
    const events = await streamed(agent(), { command, encoding: 'base64' });
    const bytes = (type: string) =>
      Buffer.concat(
        events
          .filter((e) => e.type === type)
          .map((e) => {
            assert.ok('data' in e && e.encoding === 'base64', JSON.stringify(e));
            return Buffer.from(e.data, 'base64');
          }),
      );
    const all = Buffer.from([...Array(256).keys(), ...Array(256).keys()]);
    assert.deepEqual(bytes('stdout'), all);
    assert.deepEqual(bytes('stderr'), Buffer.from([0xff, 0xfe, 0x00, 0xc3]));
    assert.equal(events.at(-1)!.type, 'exit');
    // Text, the default, is what it was: invalid UTF-8 becomes U+FFFD.
    const text = (await streamed(agent(), { command }))
      .filter((e) => e.type === 'stderr')
      .map((e) => ('data' in e ? e.data : ''))
      .join('');
    assert.equal(text, '\uFFFD\uFFFD\u0000\uFFFD');
    const wrong = await post(agent(), '/v1/exec', { command: 'true', encoding: 'latin1' });
    assert.equal(wrong.status, 422);
    assert.match((await json(wrong)).detail, /encoding/);
  });

  it('holds a command back while its client does not read, and loses nothing', async () => {
    const a = agent();
    const total = 32_000_000;
    const res = await post(a, '/v1/exec', { command: `head -c ${total} /dev/zero | tr "\\0" a; touch wrote-all` });
    // Unread, the output fills the buffers on the way (far less than 32 MB) and then the pipe:
    // the command blocks instead of the agent holding the rest in memory.
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(existsSync(join(a.baseDir, 'wrote-all')), false, 'the command ran ahead of its reader');
    let size = 0;
    for await (const ev of ndjson<ExecEvent>(res.body)) if (ev.type === 'stdout') size += ev.data.length;
    assert.equal(size, total);
    assert.equal(existsSync(join(a.baseDir, 'wrote-all')), true);
  });

  it('kills a command held back by its client when the client goes away, and closes its pipes', async () => {
    // Open file descriptors of whoever forks commands (the agent, or asb-spawn): a paused
    // command's pipes must still be drained and closed once it is killed.
    const forkerFds = async () =>
      Number((await execute(agent(), { command: 'ls /proc/$PPID/fd | wc -l' })).stdout.trim());
    const before = await forkerFds();
    const res = await post(agent(), '/v1/exec', { command: 'echo $$; exec cat /dev/zero' });
    const first = await new Promise<string>((resolve) =>
      res.body.once('data', (b: Buffer) => {
        res.body.pause();
        resolve(b.toString());
      }),
    );
    const pgid = Number(/"pid":(\d+)/.exec(first)?.[1]);
    assert.ok(pgid > 0);
    await new Promise((r) => setTimeout(r, 300)); // long enough for the buffers to fill and the agent to pause it
    res.abort();
    await waitFor(gone({ pgid }), () => `command ${pgid} outlived its client`);
    let now = 0;
    await waitFor(
      async () => (now = await forkerFds()) <= before,
      () => `${now - before} file descriptors more than before`,
    );
  });

  it('kills the whole process tree on timeout, with exit code 124', { timeout: 30_000 }, async () => {
    const r = await execute(agent(), { command: 'echo $$; sleep 100 & sleep 100; wait', timeout: 0.5 });
    assert.equal(r.exit_code, 124);
    assert.equal(r.timed_out, true);
    const pgid = Number(r.stdout.trim());
    assert.ok(pgid > 0);
    await waitFor(gone({ pgid }), () => `process group ${pgid} still has ${liveProcesses({ pgid })}`);

    const events = await streamed(agent(), { command: 'sleep 100 & sleep 100; wait', timeoutMs: 500 });
    const start = events[0]!;
    const exit = events.at(-1)!;
    assert.ok(start.type === 'start' && exit.type === 'exit');
    assert.deepEqual([exit.exitCode, exit.timedOut], [124, true]);
    await waitFor(gone({ pgid: start.pid }), () => `process group ${start.pid} survived its timeout`);
  });

  it('kills what a foreground command left running in the background when it exits', async () => {
    const r = await execute(agent(), { command: 'sleep 100 & echo $!' });
    assert.equal(r.exit_code, 0);
    const pid = Number(r.stdout.trim());
    await waitFor(gone({ pid }), () => `leftover ${pid} still runs`);
  });

  it('kills a streamed command when its client goes away', async () => {
    const res = await post(agent(), '/v1/exec', { command: 'echo $$; sleep 100' });
    let pgid = 0;
    for await (const ev of ndjson<ExecEvent>(res.body))
      if (ev.type === 'stdout') {
        pgid = Number(ev.data.trim());
        break;
      }
    assert.ok(pgid > 0);
    res.abort();
    await waitFor(gone({ pgid }), () => `command ${pgid} outlived its client`);
  });

  it('runs a background process that can be followed, signalled, listed and deleted', async () => {
    const a = agent();
    const started = await post(a, '/v1/processes', {
      command: 'trap "echo got-term; exit 7" TERM; echo ready; while true; do sleep 0.05; done',
    });
    assert.equal(started.status, 201);
    const { id, pid } = await json<{ id: string; pid: number }>(started);
    assert.ok(pid > 0);
    assert.equal((await json<ProcessInfo>(await a.send('GET', `/v1/processes/${id}`))).running, true);

    const follow = await a.send('GET', `/v1/processes/${id}/output?follow=1`);
    const seen: ExecEvent[] = [];
    let signalled = false;
    for await (const ev of ndjson<ExecEvent>(follow.body)) {
      seen.push(ev);
      if (!signalled && ev.type === 'stdout' && ev.data.includes('ready')) {
        signalled = true;
        assert.equal(await drain(await post(a, `/v1/processes/${id}/signal`, { signal: 'SIGTERM' })), 204);
      }
    }
    const out = seen
      .filter((e) => e.type === 'stdout')
      .map((e) => (e as { data: string }).data)
      .join('');
    assert.equal(out, 'ready\ngot-term\n');
    assert.deepEqual(pick(seen.at(-1)), { type: 'exit', exitCode: 7 });

    const info = await json<ProcessInfo>(await a.send('GET', `/v1/processes/${id}`));
    assert.deepEqual([info.running, info.exitCode, info.pid, info.id], [false, 7, pid, id]);
    assert.ok((await json<ProcessInfo[]>(await a.send('GET', '/v1/processes'))).some((p) => p.id === id));
    const replay = await a.send('GET', `/v1/processes/${id}/output`);
    // (bash may also report on stderr that its sleep was terminated)
    assert.deepEqual(
      (await collect(replay.body)).map((e) => e.type).filter((t) => t !== 'stderr'),
      ['start', 'stdout', 'stdout', 'exit'],
    );
    assert.equal(await drain(await a.send('DELETE', `/v1/processes/${id}`)), 204);
    assert.equal(await drain(await a.send('GET', `/v1/processes/${id}`)), 404);
  });

  it('writes stdin to a background process and closes it', async () => {
    const a = agent();
    const { id } = await json<{ id: string }>(await post(a, '/v1/processes', { command: 'cat' }));
    assert.equal(await drain(await a.send('POST', `/v1/processes/${id}/stdin`, { body: 'hello ' })), 204);
    assert.equal(await drain(await a.send('POST', `/v1/processes/${id}/stdin?eof=1`, { body: 'world\n' })), 204);
    const events = await collect((await a.send('GET', `/v1/processes/${id}/output?follow=1`)).body);
    assert.equal(
      events
        .filter((e) => e.type === 'stdout')
        .map((e) => (e as { data: string }).data)
        .join(''),
      'hello world\n',
    );
    assert.deepEqual(pick(events.at(-1)), { type: 'exit', exitCode: 0 });
    assert.equal(await drain(await a.send('POST', `/v1/processes/${id}/stdin`, { body: 'late' })), 409);
  });

  it('keeps the last MiB of a background process for replay', async () => {
    const a = agent();
    const { id } = await json<{ id: string }>(
      await post(a, '/v1/processes', { command: 'head -c 3000000 /dev/zero | tr "\\0" a; echo; echo done' }),
    );
    const events = await collect((await a.send('GET', `/v1/processes/${id}/output?follow=1`)).body);
    assert.equal(events.at(-1)!.type, 'exit');
    const replay = await collect((await a.send('GET', `/v1/processes/${id}/output`)).body);
    const text = replay
      .filter((e) => e.type === 'stdout')
      .map((e) => (e as { data: string }).data)
      .join('');
    assert.ok(text.length <= 1024 * 1024 + 65536 && text.length > 0, `replay holds ${text.length} bytes`);
    assert.ok(text.endsWith('\ndone\n'));
    assert.equal(replay.at(-1)!.type, 'exit');
  });

  it('kills a background process group on delete', async () => {
    const a = agent();
    const { id, pid } = await json<{ id: string; pid: number }>(
      await post(a, '/v1/processes', { command: 'sleep 100 & sleep 100; wait' }),
    );
    await waitFor(
      () => liveProcesses({ pgid: pid }).length >= 2,
      () => 'the background process did not start its children',
    );
    assert.equal(await drain(await a.send('DELETE', `/v1/processes/${id}`)), 204);
    await waitFor(gone({ pgid: pid }), () => `process group ${pid} survived its deletion`);
  });
}

async function collect(body: NodeJS.ReadableStream): Promise<ExecEvent[]> {
  const events: ExecEvent[] = [];
  for await (const ev of ndjson<ExecEvent>(body as never)) events.push(ev);
  return events;
}

const pick = (ev: ExecEvent | undefined) => (ev?.type === 'exit' ? { type: ev.type, exitCode: ev.exitCode } : ev);
