// The engine's exec lane (packages/engine/src/workloads/exec-lane.ts): after a sandbox's first
// command, its foreground commands are started by an asb-spawn the engine exec'd into it, not by
// the agent. What must hold: commands really take it; what a command sees (its user, capabilities,
// limits, environment, directory) is what the agent would have given it; a lane that dies cuts
// the commands it ran instead of inventing their ends, and the sandbox goes on; what the lane
// cannot run as the agent would (a cwd) still goes to the agent.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Sandbox } from '@asb/sdk';
import { startTestEngine, raw, type TestEngine } from './harness.ts';

/** The command line of the process that started the command: which lane it took. */
const PARENT = 'cat /proc/$PPID/cmdline | tr "\\0" " "';
/** The lane's command line (its pids and open-files limits follow). */
const LANE = /^\/\.asb\/asb-spawn --exec-lane /;
const AGENT = '/.asb/asb-agent --fd 0 ';

/** What a command is given, each line from the kernel's view of it. */
const SEEN = [
  'id',
  'ulimit -a',
  "grep -E '^(Cap|NoNewPrivs|Seccomp|Groups)' /proc/self/status",
  'env | grep -v "^_=" | sort',
  'pwd',
  'umask',
].join('; echo ---; ');

async function untilLane(sb: Sandbox): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (LANE.test((await sb.run(PARENT)).stdout)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail('no command took the exec lane within ~10 s');
}

describe('the exec lane', () => {
  let t: TestEngine;
  before(async () => {
    t = await startTestEngine();
  });
  after(async () => {
    await t?.stop();
  });

  it('runs the commands after the first, each as the agent would have run it', async () => {
    await using sb = await Sandbox.create({ ...t.conn, template: 'python-runtime-template' });
    // The first goes to the agent (the lane opens behind it).
    assert.equal((await sb.run(PARENT)).stdout, AGENT);
    await untilLane(sb);
    // A cwd is resolved by the agent, inside the sandbox: such a request still goes there.
    assert.equal((await sb.run(PARENT, { cwd: '.' })).stdout, AGENT);

    const viaLane = await sb.run(SEEN);
    const viaAgent = await sb.run(SEEN, { cwd: '.' });
    assert.equal(viaLane.exitCode, 0, viaLane.stderr);
    assert.equal(viaLane.stdout, viaAgent.stdout);
    assert.match(viaLane.stdout, /uid=1000\(sandbox\)/);
    assert.match(viaLane.stdout, /max user processes\s+\(-u\) 512/);
    assert.match(viaLane.stdout, /CapEff:\t0000000000000000/);
    // (gVisor 20221219 does not show NoNewPrivs; where it is shown, it is set.)
    if (viaLane.stdout.includes('NoNewPrivs')) assert.match(viaLane.stdout, /NoNewPrivs:\t1/);

    // Streams, stdin, exit codes, signals and timeouts, as the agent reports them.
    assert.deepEqual(await sb.run('echo out; echo err >&2; exit 3'), { stdout: 'out\n', stderr: 'err\n', exitCode: 3 });
    assert.deepEqual(await sb.run('cat', { stdin: 'fed' }), { stdout: 'fed', stderr: '', exitCode: 0 });
    assert.equal((await sb.run('kill -9 $$')).exitCode, 137);
    // A timeout is the SDK's TimeoutError, with the result the agent reported (exit 124).
    const slow = await sb.run('sleep 30', { timeoutMs: 300 }).catch((err: { result?: { exitCode: number } }) => err);
    assert.equal((slow as { result?: { exitCode: number } }).result?.exitCode, 124);
    const missing = await sb.run('no-such-command-here');
    assert.deepEqual(missing, {
      stdout: '',
      stderr: 'bash: line 1: no-such-command-here: command not found\n',
      exitCode: 127,
    });
    assert.match((await sb.run(PARENT)).stdout, LANE);
  });

  it("serves upstream's /execute too, answering as the agent does", async () => {
    await using sb = await Sandbox.create({ ...t.conn, template: 'python-runtime-template' });
    await sb.run('true');
    await untilLane(sb);
    const execute = async (body: object) => {
      const res = await raw(t, '/execute', {
        method: 'POST',
        sandbox: sb.id,
        body: JSON.stringify(body),
        headers: { 'content-type': 'application/json' },
      });
      assert.equal(res.status, 200, res.text);
      return res.body as { stdout: string; stderr: string; exit_code: number };
    };
    assert.match((await execute({ command: PARENT })).stdout, LANE);
    assert.equal((await execute({ command: PARENT, cwd: '.' })).stdout, AGENT);
    for (const command of ['echo out; echo err >&2; exit 3', 'sleep 5', 'head -c 100000 /dev/zero | tr "\\0" x']) {
      const timeout = command.startsWith('sleep') ? 0.3 : undefined;
      const viaLane = await execute({ command, timeout });
      const viaAgent = await execute({ command, timeout, cwd: '.' });
      assert.deepEqual(viaLane, viaAgent, command);
    }
  });

  it("holds a stream's head only for a moment: a command's start and output reach the client while it runs", async () => {
    await using sb = await Sandbox.create({ ...t.conn, template: 'python-runtime-template' });
    await sb.run('true');
    await untilLane(sb);
    // Each event with when it arrived, read off the wire as it comes.
    const stream = async (command: string) => {
      const res = await fetch(`${t.engine.url}/v1/exec`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${t.engine.bearerToken}`,
          'x-sandbox-id': sb.id,
          'content-type': 'application/json',
        },
        body: JSON.stringify({ command }),
      });
      assert.equal(res.status, 200);
      const events: { type: string; data?: string; at: number }[] = [];
      let buf = '';
      for await (const chunk of res.body!.pipeThrough(new TextDecoderStream())) {
        buf += chunk;
        for (let i; (i = buf.indexOf('\n')) >= 0; buf = buf.slice(i + 1))
          events.push({ ...(JSON.parse(buf.slice(0, i)) as { type: string }), at: performance.now() });
      }
      return events;
    };
    const silent = await stream('sleep 2');
    assert.deepEqual(
      silent.map((e) => e.type),
      ['start', 'exit'],
    );
    assert.ok(silent[1]!.at - silent[0]!.at > 1000, 'the start event was held until the command ended');
    const talking = await stream('echo early; sleep 2; echo late');
    assert.deepEqual(
      talking.map((e) => [e.type, e.data]),
      [
        ['start', undefined],
        ['stdout', 'early\n'],
        ['stdout', 'late\n'],
        ['exit', undefined],
      ],
    );
    assert.ok(talking[3]!.at - talking[1]!.at > 1000, 'output was held until the command ended');
    // And a quick one is whole: its head, start and exit (sent together) parse as before.
    assert.deepEqual(
      (await stream('true')).map((e) => e.type),
      ['start', 'exit'],
    );
  });

  it('cuts the commands of a lane that dies, and the sandbox goes on (on a new lane)', async () => {
    await using sb = await Sandbox.create({ ...t.conn, template: 'python-runtime-template' });
    await sb.run('true');
    await untilLane(sb);
    const running = sb.run('sleep 20').then(
      (result) => ({ result }),
      (error: Error) => ({ error }),
    );
    await new Promise((r) => setTimeout(r, 300));
    // Killed from inside, as a sandbox's own code could: through the agent (a cwd takes it there).
    // ([e]: the pattern must not match the shell that runs pkill, whose command line holds it.)
    const killed = await sb.run('pkill -KILL -f "asb-spawn --exec-lan[e]"', { cwd: '.' });
    assert.equal(killed.exitCode, 0, killed.stderr);
    // Not a made-up exit (the spawner's loss would read as 127): the stream ends unfinished.
    const ended = await running;
    assert.ok('error' in ended, `the command's stream was not cut: ${JSON.stringify(ended)}`);
    assert.equal((await sb.run('echo still here')).stdout, 'still here\n');
    await untilLane(sb);
  });

  it('tells the engine what a command starts from (GET /v1/exec-context)', async () => {
    await using sb = await Sandbox.create({ ...t.conn, template: 'python-runtime-template' });
    const res = await raw(t, '/v1/exec-context', { sandbox: sb.id });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.cwd, '/app');
    assert.equal(res.body.env.HOME, '/home/sandbox');
    assert.deepEqual(
      Object.keys(res.body.env).filter((k) => /^(ASB_|SANDBOX_)/.test(k)),
      [],
    );
    assert.deepEqual(res.body.shell, ['/bin/bash', '--norc', '--noprofile']);
    assert.equal(res.body.defaultTimeoutMs, 300_000);
  });
});
