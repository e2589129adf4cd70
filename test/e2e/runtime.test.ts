// The runtime API through the engine: results, streaming, timeouts, files.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Sandbox, TimeoutError } from '@asb/sdk';
import { startTestEngine, raw, type TestEngine } from './harness.ts';

// One behaviour suite, run on every driver.
for (const driver of ['gvisor', 'bubblewrap'] as const)
  describe(`commands and files in a sandbox (${driver})`, () => {
    let t: TestEngine;
    let sb: Sandbox;
    before(async () => {
      t = await startTestEngine({ driver });
      sb = await Sandbox.create({ ...t.conn });
    });
    after(async () => {
      await t?.stop();
    });

    it('returns stdout, stderr and the exit code', async () => {
      const r = await sb.run('echo out; echo err >&2; exit 3');
      assert.deepEqual(r, { stdout: 'out\n', stderr: 'err\n', exitCode: 3 });
    });

    it('finds programs on PATH as bash would: missing, scripts without #!, changes between calls', async () => {
      const missing = await sb.run('no-such-program --flag');
      assert.equal(missing.exitCode, 127);
      assert.match(missing.stderr, /no-such-program: command not found/);
      await sb.run('mkdir -p bin && printf "echo first\\n" > bin/tool && chmod +x bin/tool');
      const env = { PATH: '/app/bin:/usr/bin:/bin' };
      assert.equal((await sb.run('tool', { env })).stdout, 'first\n'); // no #!: run by the shell
      await sb.run('printf "#!/bin/sh\\necho second\\n" > bin/tool2 && mv bin/tool2 bin/tool && chmod +x bin/tool');
      assert.equal((await sb.run('tool', { env })).stdout, 'second\n');
      await sb.run('rm bin/tool');
      assert.equal((await sb.run('tool', { env })).exitCode, 127);
    });

    it("runs seed 004's python command", async () => {
      const r = await sb.run(`python3 -c 'print("Hello from SDK!")'`);
      assert.equal(r.stdout.trim(), 'Hello from SDK!');
      assert.equal(r.exitCode, 0);
    });

    it('runs commands one after another over one kept-alive connection', async () => {
      // A result read up to its exit event but not to the stream's end used to cost the
      // connection (the cancelled response took it along): a new TCP connection per command.
      const server = (t.engine as unknown as { server: import('node:net').Server }).server;
      await sb.run('true');
      let opened = 0;
      const count = () => opened++;
      server.on('connection', count);
      try {
        for (let i = 0; i < 10; i++) assert.equal((await sb.run(`echo ${i}`)).stdout, `${i}\n`);
      } finally {
        server.off('connection', count);
      }
      assert.equal(opened, 0);
    });

    it('streams output in order as it is produced', async () => {
      const events: string[] = [];
      await sb.run('for i in 1 2 3; do echo o$i; echo e$i >&2; sleep 0.05; done', {
        onStdout: (d) => events.push(...d.trim().split('\n')),
        onStderr: (d) => events.push(...d.trim().split('\n')),
      });
      assert.deepEqual(events, ['o1', 'e1', 'o2', 'e2', 'o3', 'e3']);
    });

    it('kills the whole process tree on timeout', async () => {
      await assert.rejects(sb.run('sleep 100 & sleep 100; wait', { timeoutMs: 500 }), (err: unknown) => {
        assert.ok(err instanceof TimeoutError);
        assert.equal(err.result?.exitCode, 124);
        return true;
      });
      const ps = await sb.run('ps -eo args 2>/dev/null | grep -c "^sleep 100" || true');
      assert.equal(ps.stdout.trim(), '0');
    });

    it('leaves no zombies behind when commands orphan their children', async () => {
      for (let i = 0; i < 5; i++) await sb.run('(sleep 0.1 &); true');
      const z = await sb.run('sleep 0.5; ps -eo stat= | grep -c "^Z" || true');
      assert.equal(z.stdout.trim(), '0');
    });

    it('kills a streamed command when its caller goes away', async () => {
      const ac = new AbortController();
      const running = sb.run('sleep 30; echo finished > finished.txt', { signal: ac.signal });
      await new Promise((r) => setTimeout(r, 500));
      ac.abort();
      await assert.rejects(running);
      let left = '';
      for (let i = 0; i < 20; i++) {
        left = (await sb.run('ps -eo args | grep -c "^sleep 30" || true')).stdout.trim();
        if (left === '0') break;
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(left, '0');
    });

    it('passes env, cwd and stdin', async () => {
      await sb.files.write('sub/dir/.keep', '');
      const r = await sb.run('echo "$GREETING"; pwd; cat', {
        env: { GREETING: 'hi there' },
        cwd: 'sub/dir',
        stdin: 'from stdin',
      });
      assert.equal(r.stdout, 'hi there\n/app/sub/dir\nfrom stdin');
    });

    it('round-trips a binary file byte for byte', async () => {
      const data = randomBytes(3 * 1024 * 1024 + 7);
      await sb.files.write('blob.bin', data);
      const back = await sb.files.read('blob.bin', { format: 'bytes' });
      assert.equal(Buffer.compare(Buffer.from(back), data), 0);
      const sum = await sb.run('sha256sum blob.bin | cut -d" " -f1');
      assert.equal(sum.stdout.trim(), (await import('node:crypto')).createHash('sha256').update(data).digest('hex'));
    });

    it('writes, reads, lists and checks files as seed 004 does', async () => {
      await sb.files.write('test.txt', 'SDK test content');
      assert.equal(await sb.files.read('test.txt'), 'SDK test content');
      assert.equal(await sb.files.exists('test.txt'), true);
      assert.equal(await sb.files.exists('nope.txt'), false);
      const names = (await sb.files.list('.')).map((e) => e.name);
      assert.ok(names.includes('test.txt'));
    });

    it('runs background processes: output, stdin, signals', async () => {
      const { id } = await sb.commands.start(
        'echo ready; read line; echo "got $line"; trap "echo bye; exit 0" TERM; while true; do sleep 0.1; done',
      );
      await sb.commands.sendStdin(id, 'hello\n');
      let out = '';
      for (let i = 0; i < 50 && !out.includes('got hello'); i++) {
        out = (await sb.commands.output(id)).stdout;
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(out, 'ready\ngot hello\n');
      assert.equal((await sb.commands.list()).find((p) => p.id === id)?.running, true);
      await sb.commands.kill(id, 'SIGTERM');
      const done = await sb.commands.output(id, { follow: true });
      assert.equal(done.stdout, 'ready\ngot hello\nbye\n');
      assert.equal(done.exitCode, 0);
    });

    it("serves upstream's /execute shape for existing clients", async () => {
      const r = await raw(t, '/execute', {
        method: 'POST',
        sandbox: sb.id,
        body: JSON.stringify({ command: "echo 'Hello from the sandboxed environment!'" }),
        headers: { 'content-type': 'application/json' },
      });
      assert.equal(r.status, 200);
      assert.deepEqual(r.body, { stdout: 'Hello from the sandboxed environment!\n', stderr: '', exit_code: 0 });
    });
  });
