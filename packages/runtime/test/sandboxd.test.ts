// sandboxd (src/sandboxd): the gRPC ProcessService through a real @grpc/grpc-js client and the REST
// API through fetch, both on loopback sockets, over a temporary root dir. The cases follow
// upstream's own server tests (packages/sandboxd/pkg/server/*_test.go in agent-sandbox v1.0.1):
// same requests, same expected statuses and shapes.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import http from 'node:http';
import {
  credentials,
  makeGenericClientConstructor,
  status,
  type Client,
  type ClientReadableStream,
  type ServiceError,
} from '@grpc/grpc-js';
import { processServiceDefinition } from '../src/sandboxd/proto.ts';
import { startSandboxd, type Sandboxd } from '../src/sandboxd/server.ts';
import { parseDuration, parseSandboxdArgs } from '../src/sandboxd/args.ts';

type Rpc = (req: object, cb: (err: ServiceError | null, res: any) => void) => void;
interface ProcessClient extends Client {
  Start(req: object): ClientReadableStream<any>;
  Execute: Rpc;
  WriteStdin: Rpc;
  SendSignal: Rpc;
  ResizeTTY: Rpc;
}

const ProcessServiceClient = makeGenericClientConstructor(processServiceDefinition(), 'ProcessService');

function call(client: ProcessClient, method: 'Execute' | 'WriteStdin' | 'SendSignal' | 'ResizeTTY', req: object) {
  return new Promise<any>((resolve, reject) =>
    client[method](req, (err: ServiceError | null, res: any) => (err ? reject(err) : resolve(res))),
  );
}
const code = async (p: Promise<unknown>) =>
  p.then(
    () => status.OK,
    (err: ServiceError) => err.code,
  );

interface Drained {
  pid: number;
  stdout: string;
  stderr: string;
  stdoutChunks: number[];
  exitCode: number | undefined;
  events: string[];
}

/** Reads a Start stream to its end; `onInit` runs when the InitEvent arrives. */
function drain(stream: ClientReadableStream<any>, onInit?: (pid: number) => void): Promise<Drained> {
  const out: Drained = { pid: 0, stdout: '', stderr: '', stdoutChunks: [], exitCode: undefined, events: [] };
  return new Promise((resolve, reject) => {
    stream.on('data', (ev: any) => {
      out.events.push(ev.event);
      if (ev.event === 'init') {
        out.pid = ev.init.process_id;
        onInit?.(out.pid);
      } else if (ev.event === 'stdout') {
        out.stdout += ev.stdout.toString();
        out.stdoutChunks.push(ev.stdout.length);
      } else if (ev.event === 'stderr') out.stderr += ev.stderr.toString();
      else if (ev.event === 'exit') out.exitCode = ev.exit.exit_code;
    });
    stream.on('error', reject);
    stream.on('end', () => resolve(out));
  });
}

/** One HTTP/1.1 request with the path exactly as given. */
function rawRequest(port: number, method: string, path: string, body = ''): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode!, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function until(what: string, fn: () => boolean, ms = 5000): Promise<void> {
  for (const end = Date.now() + ms; Date.now() < end;) {
    if (fn()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

const repo = new URL('../../../', import.meta.url).pathname;
/** The pty helper (native/asb-spawn.c), built by `npm run build`. */
const ptyHelper = join(repo, 'dist/asb-spawn');
const noPtyHelper = existsSync(ptyHelper) ? undefined : 'run npm run build (dist/asb-spawn makes the ptys)';

describe('sandboxd', () => {
  const root = mkdtempSync(join(tmpdir(), 'asb-sandboxd-'));
  const outside = mkdtempSync(join(tmpdir(), 'asb-sandboxd-outside-'));
  let d: Sandboxd;
  let client: ProcessClient;
  let rest: string;
  const env = {
    PATH: process.env.PATH,
    SANDBOX_ID: 'sbx-123',
    SANDBOX_WORKSPACE: '/workspace',
    SANDBOX_API_TOKEN: 'super-secret',
    SANDBOX_SSH_KEY: 'super-secret',
    SANDBOX_AUTH_HEADER: 'super-secret',
    SANDBOX_BEARER: 'super-secret',
    SANDBOX_CRED: 'super-secret',
    SANDBOX_PASSWD: 'super-secret',
    SANDBOX_TLS_CERT: 'super-secret',
    SANDBOX_PRIVATE_URL: 'super-secret',
    KUBERNETES_SERVICE_HOST: '1.2.3.4',
  };

  before(async () => {
    d = await startSandboxd({
      rootDir: root,
      listenHost: '127.0.0.1',
      grpcPort: 0,
      restPort: 0,
      metadataEnvPrefix: 'SANDBOX_',
      streamChunkSize: 0,
      httpIdleTimeoutMs: 60_000,
      env,
      ptyHelper,
    });
    client = new ProcessServiceClient(
      `127.0.0.1:${d.grpcPort}`,
      credentials.createInsecure(),
    ) as unknown as ProcessClient;
    rest = `http://127.0.0.1:${d.restPort}/v1`;
  });
  after(async () => {
    client?.close();
    await d?.shutdown(5000);
    rmSync(root, { recursive: true, force: true });
    rmSync(outside, { recursive: true, force: true });
  });
  const clean = () => {
    for (const name of readdirSync(root)) rmSync(join(root, name), { recursive: true, force: true });
  };

  describe('ProcessService (gRPC)', () => {
    it('Execute returns stdout, stderr and the exit code', async () => {
      const res = await call(client, 'Execute', { config: { command: ['echo', 'hello'] } });
      assert.equal(res.exit_code, 0);
      assert.equal(res.stdout.toString(), 'hello\n');
      assert.equal(res.stderr.length, 0);
      const res3 = await call(client, 'Execute', { config: { command: ['sh', '-c', 'echo oops >&2; exit 3'] } });
      assert.equal(res3.exit_code, 3);
      assert.equal(res3.stderr.toString(), 'oops\n');
    });

    it('Execute: env_vars over the daemon environment, cwd under the root', async () => {
      mkdirSync(join(root, 'sub'), { recursive: true });
      const res = await call(client, 'Execute', {
        config: {
          command: ['sh', '-c', 'echo $SANDBOX_TEST_VAR $SANDBOX_ID; pwd'],
          env_vars: { SANDBOX_TEST_VAR: 'sentinel' },
          cwd: 'sub',
        },
      });
      const [vars, pwd] = res.stdout.toString().trim().split('\n');
      assert.equal(vars, 'sentinel sbx-123');
      assert.equal(pwd, join(root, 'sub'));
      // No cwd: the root dir; an absolute cwd under the root is taken as it is.
      assert.equal((await call(client, 'Execute', { config: { command: ['pwd'] } })).stdout.toString(), `${root}\n`);
      const abs = await call(client, 'Execute', { config: { command: ['pwd'], cwd: join(root, 'sub') } });
      assert.equal(abs.stdout.toString(), `${join(root, 'sub')}\n`);
    });

    it('refuses what upstream refuses, with its codes', async () => {
      assert.equal(await code(call(client, 'Execute', { config: {} })), status.INVALID_ARGUMENT);
      assert.equal(await code(call(client, 'Execute', {})), status.INVALID_ARGUMENT);
      assert.equal(
        await code(call(client, 'Execute', { config: { command: ['pwd'], cwd: '../..' } })),
        status.PERMISSION_DENIED,
      );
      symlinkSync(outside, join(root, 'out-link'));
      try {
        assert.equal(
          await code(call(client, 'Execute', { config: { command: ['pwd'], cwd: 'out-link' } })),
          status.PERMISSION_DENIED,
        );
      } finally {
        rmSync(join(root, 'out-link'));
      }
      assert.equal(
        await code(call(client, 'Execute', { config: { command: ['no-such-binary-xyz'] } })),
        status.NOT_FOUND,
      );
      assert.equal(
        await code(call(client, 'Execute', { config: { command: ['pwd'], cwd: 'no/such/dir' } })),
        status.NOT_FOUND,
      );
      assert.equal(await code(drain(client.Start({ config: { command: ['no-such-binary-xyz'] } }))), status.NOT_FOUND);
      assert.equal(await code(drain(client.Start({ config: { command: [] } }))), status.INVALID_ARGUMENT);
      assert.equal(
        await code(call(client, 'WriteStdin', { process_id: 424242, input: Buffer.from('x') })),
        status.NOT_FOUND,
      );
      assert.equal(
        await code(call(client, 'SendSignal', { process_id: 424242, signal: 'SIGNAL_SIGTERM' })),
        status.NOT_FOUND,
      );
      assert.equal(await code(call(client, 'ResizeTTY', { process_id: 424242, cols: 80, rows: 24 })), status.NOT_FOUND);
    });

    it('Start streams InitEvent, stdout, stderr, then ExitEvent', async () => {
      const res = await drain(client.Start({ config: { command: ['sh', '-c', 'echo out; echo err 1>&2; exit 7'] } }));
      assert.ok(res.pid > 0);
      assert.equal(res.events[0], 'init');
      assert.equal(res.events.at(-1), 'exit');
      assert.equal(res.stdout, 'out\n');
      assert.equal(res.stderr, 'err\n');
      assert.equal(res.exitCode, 7);
    });

    it('Start streams as the command writes, in chunks of at most 4096 bytes', async () => {
      const stream = client.Start({ config: { command: ['sh', '-c', 'echo first; sleep 30'] } });
      const first = await new Promise<{ pid: number; text: string }>((resolve) => {
        let pid = 0;
        stream.on('data', (ev: any) => {
          if (ev.event === 'init') pid = ev.init.process_id;
          if (ev.event === 'stdout') resolve({ pid, text: ev.stdout.toString() });
        });
      });
      assert.equal(first.text, 'first\n'); // before the command ended
      await call(client, 'SendSignal', { process_id: first.pid, signal: 'SIGNAL_SIGKILL' });
      await new Promise((r) => stream.on('end', r));

      const big = await drain(client.Start({ config: { command: ['head', '-c', '100000', '/dev/zero'] } }));
      assert.equal(big.stdout.length, 100_000);
      assert.ok(Math.max(...big.stdoutChunks) <= 4096, `chunks up to ${Math.max(...big.stdoutChunks)}`);
    });

    it('WriteStdin feeds a running process; EOF closes its stdin', async () => {
      const stream = client.Start({ config: { command: ['cat'] } });
      const res = await drain(stream, (pid) => {
        void (async () => {
          await call(client, 'WriteStdin', { process_id: pid, input: Buffer.from('piped-') });
          await call(client, 'WriteStdin', { process_id: pid, input: Buffer.from('through') });
          await call(client, 'WriteStdin', { process_id: pid, eof: {} });
        })();
      });
      assert.equal(res.stdout, 'piped-through');
      assert.equal(res.exitCode, 0);
    });

    it('SendSignal: unspecified is INVALID_ARGUMENT, SIGTERM ends the process (exit -1), SIGINT too', async () => {
      for (const signal of ['SIGNAL_SIGTERM', 'SIGNAL_SIGINT']) {
        let unspecified = -1;
        const res = await drain(client.Start({ config: { command: ['sleep', '30'] } }), (pid) => {
          void (async () => {
            unspecified = await code(call(client, 'SendSignal', { process_id: pid }));
            await call(client, 'SendSignal', { process_id: pid, signal });
          })();
        });
        assert.equal(unspecified, status.INVALID_ARGUMENT);
        assert.equal(res.exitCode, -1, 'a process ended by a signal has no exit code (upstream: -1)');
      }
    });

    it('SendSignal reaches the whole process group', async () => {
      const pidFile = join(root, 'grandchild.pid');
      const res = await drain(
        client.Start({ config: { command: ['sh', '-c', `sleep 60 & echo $! > ${pidFile}; wait`] } }),
        (pid) => {
          void until('the grandchild', () => existsSync(pidFile) && readFileSync(pidFile, 'utf8').trim() !== '').then(
            () => call(client, 'SendSignal', { process_id: pid, signal: 'SIGNAL_SIGTERM' }),
          );
        },
      );
      assert.notEqual(res.exitCode, 0);
      const grandchild = Number(readFileSync(pidFile, 'utf8'));
      await until('the grandchild to die', () => !alive(grandchild));
      rmSync(pidFile);
    });

    it('ResizeTTY without a PTY is FAILED_PRECONDITION, of an unknown process NOT_FOUND', async () => {
      let resize = -1;
      await drain(client.Start({ config: { command: ['sleep', '30'] } }), (pid) => {
        void (async () => {
          resize = await code(call(client, 'ResizeTTY', { process_id: pid, cols: 80, rows: 24 }));
          await call(client, 'SendSignal', { process_id: pid, signal: 'SIGNAL_SIGKILL' });
        })();
      });
      assert.equal(resize, status.FAILED_PRECONDITION);
      assert.equal(await code(call(client, 'ResizeTTY', { process_id: 99999, cols: 80, rows: 24 })), status.NOT_FOUND);
    });

    describe('Start with a PTY', { skip: noPtyHelper }, () => {
      /** Runs `script` under sh on a pty; `steps` gets the process id and the output so far. */
      const onPty = (
        script: string,
        steps: (pid: number, out: () => string) => Promise<void>,
        pty = { cols: 80, rows: 24 },
      ) => {
        let out = '';
        let done: Promise<{ failed: Error } | void> = Promise.resolve();
        const stream = client.Start({ config: { command: ['sh', '-c', script] }, pty });
        stream.on('data', (ev: any) => {
          if (ev.event === 'stdout') out += ev.stdout.toString();
        });
        const res = drain(stream, (pid) => {
          // (Its failure, kept as a value until the end: a rejection nobody awaits yet would warn.)
          done = steps(pid, () => out).catch((err: Error) => {
            void call(client, 'SendSignal', { process_id: pid, signal: 'SIGNAL_SIGKILL' });
            return { failed: err };
          });
        });
        // The steps' failure first: it tells more than the output.
        return res.then(async (r) => {
          const d = await done;
          if (d) throw d.failed;
          return r;
        });
      };

      it('runs the command on a terminal of the requested size: tty, stty size; all output is stdout', async () => {
        const res = await drain(
          client.Start({
            config: { command: ['sh', '-c', 'tty; stty size; echo to-stderr >&2; exit 7'] },
            pty: { cols: 80, rows: 24 },
          }),
        );
        assert.match(res.stdout, /^\/dev\/pts\/\d+\r\n24 80\r\nto-stderr\r\n$/);
        assert.equal(res.stderr, '');
        assert.equal(res.exitCode, 7);
      });

      it('ResizeTTY sets the size (SIGWINCH); input is echoed; EOF hangs the terminal up', async () => {
        const res = await onPty(
          // (A trap interrupts `read`: the loop reads again.)
          'trap "stty size" WINCH; echo ready; while :; do if read -r line; then echo "got:$line"; fi; done',
          async (pid, out) => {
            await until('ready', () => out().includes('ready'));
            await call(client, 'ResizeTTY', { process_id: pid, cols: 120, rows: 40 });
            await until('the new size', () => out().includes('40 120'));
            await call(client, 'WriteStdin', { process_id: pid, input: Buffer.from('hello\n') });
            await until('the answer', () => out().includes('got:hello'));
            await call(client, 'WriteStdin', { process_id: pid, eof: {} });
          },
        );
        // The terminal echoes the input (\n as \r\n), then comes the command's answer.
        assert.match(res.stdout, /40 120\r\n[^]*hello\r\ngot:hello\r\n/);
        assert.equal(res.exitCode, -1, 'the hang-up (SIGHUP) ends it, as upstream');
      });

      it('a pty closed by EOF cannot be resized: FAILED_PRECONDITION', async () => {
        let resized = -1;
        // The command ignores the hang-up, so it still runs when ResizeTTY comes.
        await onPty('trap "" HUP; echo ready; sleep 30', async (pid, out) => {
          await until('ready', () => out().includes('ready'));
          await call(client, 'WriteStdin', { process_id: pid, eof: {} });
          resized = await code(call(client, 'ResizeTTY', { process_id: pid, cols: 100, rows: 30 }));
          await call(client, 'SendSignal', { process_id: pid, signal: 'SIGNAL_SIGKILL' });
        });
        assert.equal(resized, status.FAILED_PRECONDITION);
      });

      it('^C on stdin interrupts the foreground job, as a terminal does', async () => {
        const res = await onPty(
          'trap "echo interrupted; exit 3" INT; echo ready; sleep 30 & wait',
          async (pid, out) => {
            await until('ready', () => out().includes('ready'));
            await call(client, 'WriteStdin', { process_id: pid, input: Buffer.from([3]) });
          },
        );
        assert.match(res.stdout, /\^C[^]*interrupted/);
        assert.equal(res.exitCode, 3);
      });

      it('without cols and rows the terminal has no size (0 0); SendSignal reaches the command', async () => {
        const res = await onPty(
          'stty size; echo ready; sleep 30',
          async (pid, out) => {
            await until('ready', () => out().includes('ready'));
            await call(client, 'SendSignal', { process_id: pid, signal: 'SIGNAL_SIGTERM' });
          },
          { cols: 0, rows: 0 },
        );
        assert.match(res.stdout, /^0 0\r\n/);
        assert.equal(res.exitCode, -1);
      });

      it('refuses what upstream refuses: missing binary or cwd NOT_FOUND, a cwd out of the root PERMISSION_DENIED', async () => {
        const pty = { cols: 80, rows: 24 };
        const start = (config: object) => code(drain(client.Start({ config, pty })));
        assert.equal(await start({ command: ['no-such-binary-xyz'] }), status.NOT_FOUND);
        assert.equal(await start({ command: ['true'], cwd: 'no/such/dir' }), status.NOT_FOUND);
        assert.equal(await start({ command: ['true'], cwd: '../..' }), status.PERMISSION_DENIED);
        assert.equal(await start({ command: [] }), status.INVALID_ARGUMENT);
      });
    });

    it('a cancelled Start kills its command; the id is gone once it exited', async () => {
      const pidFile = join(root, 'cancel.pid');
      const stream = client.Start({ config: { command: ['sh', '-c', `echo $$ > ${pidFile}; exec sleep 60`] } });
      let id = 0;
      stream.on('data', (ev: any) => {
        if (ev.event === 'init') id = ev.init.process_id;
      });
      stream.on('error', () => undefined);
      await until('the command', () => existsSync(pidFile) && readFileSync(pidFile, 'utf8').trim() !== '');
      const pid = Number(readFileSync(pidFile, 'utf8'));
      stream.cancel();
      await until('the cancelled command to die', () => !alive(pid));
      await until('its id to be released', () => d.processes.running === 0);
      assert.equal(
        await code(call(client, 'SendSignal', { process_id: id, signal: 'SIGNAL_SIGKILL' })),
        status.NOT_FOUND,
      );
      rmSync(pidFile);
    });

    it('REST and gRPC share the root: PUT, then cat it', async () => {
      assert.equal(
        (await fetch(`${rest}/files/notes/hello.txt`, { method: 'PUT', body: 'hello from REST' })).status,
        204,
      );
      const res = await call(client, 'Execute', { config: { command: ['cat', 'notes/hello.txt'] } });
      assert.equal(res.stdout.toString(), 'hello from REST');
      clean();
    });
  });

  describe('Filesystem & Runtime REST API', () => {
    const put = (path: string, body: RequestInit['body'], init: RequestInit = {}) =>
      fetch(`${rest}/files/${path}`, { method: 'PUT', body, ...init });
    const errorCode = async (res: Response) => {
      const body = (await res.json()) as { code: string; message: string };
      assert.ok(body.message, 'an error has a message');
      return body.code;
    };

    it('PUT then GET round-trips raw bytes; parents are created', async () => {
      const bytes = Buffer.from([0, 1, 2, 255, 10, 13]);
      const res = await put('a/b/c/deep.bin', bytes);
      assert.equal(res.status, 204);
      assert.deepEqual(readFileSync(join(root, 'a/b/c/deep.bin')), bytes);
      const got = await fetch(`${rest}/files/a/b/c/deep.bin`);
      assert.equal(got.status, 200);
      assert.equal(got.headers.get('content-type'), 'application/octet-stream');
      assert.equal(got.headers.get('content-length'), '6');
      assert.deepEqual(Buffer.from(await got.arrayBuffer()), bytes);
      clean();
    });

    it('PUT applies ?mode and refuses a bad one; overwrites leave no temp file', async () => {
      assert.equal((await put('run.sh?mode=0755', '#!/bin/sh')).status, 204);
      assert.equal(statSync(join(root, 'run.sh')).mode & 0o777, 0o755);
      assert.equal((await put('plain.txt', 'x')).status, 204);
      assert.equal(statSync(join(root, 'plain.txt')).mode & 0o777, 0o644);
      for (const mode of ['0999', '777', 'abcd', '01777']) {
        const res = await put(`f.txt?mode=${mode}`, 'x');
        assert.equal(res.status, 400, mode);
        assert.equal(await errorCode(res), 'INVALID_ARGUMENT');
      }
      clean();
      await put('f.txt', 'old');
      await put('f.txt', 'new');
      assert.equal(readFileSync(join(root, 'f.txt'), 'utf8'), 'new');
      assert.deepEqual(readdirSync(root), ['f.txt']);
      clean();
    });

    it('PUT takes a multipart "file" part, and refuses a form without one', async () => {
      const form = new FormData();
      form.append('file', new Blob(['multipart-payload']), 'upload.bin');
      assert.equal((await put('upload.bin', form)).status, 204);
      assert.equal(readFileSync(join(root, 'upload.bin'), 'utf8'), 'multipart-payload');
      const bad = new FormData();
      bad.append('notfile', 'x');
      const res = await put('f.txt', bad);
      assert.equal(res.status, 400);
      assert.equal(await errorCode(res), 'INVALID_ARGUMENT');
      clean();
    });

    it('PUT onto a directory is 400; %2F-encoded separators make nested files', async () => {
      mkdirSync(join(root, 'd'));
      assert.equal((await put('d', 'x')).status, 400);
      assert.equal((await put('dir%2Fsub%2Ffile.txt', 'x')).status, 204);
      assert.ok(existsSync(join(root, 'dir/sub/file.txt')));
      clean();
    });

    it('GET of a directory lists it: sorted, typed, sized, with mode and RFC 3339 time', async () => {
      const empty = await fetch(`${rest}/files/`);
      assert.equal(empty.headers.get('content-type'), 'application/json');
      assert.match(await empty.text(), /"entries":\[\]/);
      writeFileSync(join(root, 'b.txt'), 'bb', { mode: 0o600 });
      mkdirSync(join(root, 'adir'));
      symlinkSync(outside, join(root, 'escaping_link'));
      symlinkSync('b.txt', join(root, 'inner_link'));
      const res = await fetch(`${rest}/files/`);
      assert.equal(res.status, 200);
      const listing = (await res.json()) as { path: string; entries: any[] };
      assert.equal(listing.path, '/');
      assert.deepEqual(
        listing.entries.map((e) => [e.name, e.type, e.size]),
        [
          ['adir', 'directory', statSync(join(root, 'adir')).size],
          ['b.txt', 'file', 2],
          ['inner_link', 'file', 2], // a link inside the root is listed as what it leads to
        ],
      );
      assert.equal(listing.entries[1].mode, '0600');
      assert.match(listing.entries[1].modified_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
      const sub = (await (await fetch(`${rest}/files/adir`)).json()) as { path: string };
      assert.equal(sub.path, '/adir');
      clean();
    });

    it('404 NOT_FOUND for a missing path; HEAD probes existence without a body', async () => {
      const missing = await fetch(`${rest}/files/nope.txt`);
      assert.equal(missing.status, 404);
      assert.equal(await errorCode(missing), 'NOT_FOUND');
      writeFileSync(join(root, 'f.txt'), '12345');
      const head = await fetch(`${rest}/files/f.txt`, { method: 'HEAD' });
      assert.equal(head.status, 200);
      assert.equal(head.headers.get('content-length'), '5');
      assert.equal(await head.text(), '');
      assert.equal((await fetch(`${rest}/files/absent.txt`, { method: 'HEAD' })).status, 404);
      clean();
    });

    it('serves a byte range', async () => {
      writeFileSync(join(root, 'r.txt'), '0123456789');
      const part = await fetch(`${rest}/files/r.txt`, { headers: { range: 'bytes=2-5' } });
      assert.equal(part.status, 206);
      assert.equal(part.headers.get('content-range'), 'bytes 2-5/10');
      assert.equal(await part.text(), '2345');
      assert.equal(await (await fetch(`${rest}/files/r.txt`, { headers: { range: 'bytes=-3' } })).text(), '789');
      assert.equal((await fetch(`${rest}/files/r.txt`, { headers: { range: 'bytes=20-' } })).status, 416);
      clean();
    });

    it('refuses traversal and symlink escapes with 403 PERMISSION_DENIED', async () => {
      // Sent as is: fetch's URL parser would fold %2E%2E away before it left.
      for (const method of ['GET', 'PUT', 'DELETE']) {
        const res = await rawRequest(
          d.restPort,
          method,
          '/v1/files/%2E%2E/%2E%2E/etc/passwd',
          method === 'PUT' ? 'x' : '',
        );
        assert.equal(res.status, 403, method);
        assert.equal(JSON.parse(res.body).code, 'PERMISSION_DENIED');
      }
      assert.equal((await rawRequest(d.restPort, 'GET', '/v1/files/../../etc/passwd')).status, 403);
      writeFileSync(join(outside, 'secret'), 's');
      symlinkSync(outside, join(root, 'link'));
      assert.equal((await fetch(`${rest}/files/link/secret`)).status, 403);
      assert.equal((await put('link/planted', 'x')).status, 403);
      assert.ok(!existsSync(join(outside, 'planted')));
      // An absolute path outside the root is read under the root (upstream joins it), not refused.
      assert.equal((await fetch(`${rest}/files/${encodeURIComponent('/etc/passwd')}`)).status, 404);
      clean();
    });

    it('DELETE: a file, 404 after; non-empty dir is 409 unless recursive; bad recursive is 400', async () => {
      writeFileSync(join(root, 'f.txt'), 'x');
      assert.equal((await fetch(`${rest}/files/f.txt?recursive=banana`, { method: 'DELETE' })).status, 400);
      assert.equal((await fetch(`${rest}/files/f.txt`, { method: 'DELETE' })).status, 204);
      assert.equal((await fetch(`${rest}/files/f.txt`, { method: 'DELETE' })).status, 404);
      mkdirSync(join(root, 'd'));
      writeFileSync(join(root, 'd/f.txt'), 'x');
      const conflict = await fetch(`${rest}/files/d`, { method: 'DELETE' });
      assert.equal(conflict.status, 409);
      assert.equal(await errorCode(conflict), 'CONFLICT');
      assert.equal((await fetch(`${rest}/files/d?recursive=true`, { method: 'DELETE' })).status, 204);
      assert.ok(!existsSync(join(root, 'd')));
    });

    it('DELETE of the root: 409, and with recursive=true it empties the root but keeps it', async () => {
      writeFileSync(join(root, 'f.txt'), 'x');
      mkdirSync(join(root, 'd'));
      assert.equal((await fetch(`${rest}/files/`, { method: 'DELETE' })).status, 409);
      assert.equal((await fetch(`${rest}/files/?recursive=true`, { method: 'DELETE' })).status, 204);
      assert.ok(existsSync(root));
      assert.deepEqual(readdirSync(root), []);
    });

    it('/v1/health is ok, 503 UNAVAILABLE when not ready; /v1/metadata filters the environment', async () => {
      const health = (await (await fetch(`${rest}/health`)).json()) as { status: string; uptime_seconds: number };
      assert.equal(health.status, 'ok');
      assert.ok(health.uptime_seconds >= 0);
      d.setReady(false);
      const down = await fetch(`${rest}/health`);
      assert.equal(down.status, 503);
      assert.equal(await errorCode(down), 'UNAVAILABLE');
      d.setReady(true);
      assert.deepEqual(await (await fetch(`${rest}/metadata`)).json(), {
        env: { SANDBOX_ID: 'sbx-123', SANDBOX_WORKSPACE: '/workspace' },
      });
    });

    it('other paths and methods answer as a Go ServeMux: 404, 405 with Allow', async () => {
      assert.equal((await fetch(`${rest}/nope`)).status, 404);
      const res = await fetch(`${rest}/health`, { method: 'POST' });
      assert.equal(res.status, 405);
      assert.equal(res.headers.get('allow'), 'GET, HEAD');
      assert.equal((await fetch(`${rest}/files/x`, { method: 'POST' })).status, 405);
    });
  });

  it('shutdown SIGTERMs running commands, so their Start streams end with an exit', async () => {
    const d2 = await startSandboxd({
      rootDir: root,
      listenHost: '127.0.0.1',
      grpcPort: 0,
      restPort: 0,
      metadataEnvPrefix: 'SANDBOX_',
      streamChunkSize: 0,
      httpIdleTimeoutMs: 60_000,
      env,
      ptyHelper,
    });
    const c2 = new ProcessServiceClient(
      `127.0.0.1:${d2.grpcPort}`,
      credentials.createInsecure(),
    ) as unknown as ProcessClient;
    try {
      const res = await drain(c2.Start({ config: { command: ['sleep', '300'] } }), () => void d2.shutdown(10_000));
      assert.equal(res.events.at(-1), 'exit');
      assert.notEqual(res.exitCode, 0);
    } finally {
      c2.close();
    }
  });
});

describe('sandboxd flags', () => {
  it("has upstream's defaults", () => {
    assert.deepEqual(parseSandboxdArgs([]), {
      listenHost: '0.0.0.0',
      grpcPort: 9090,
      restPort: 8080,
      rootDir: '/workspace',
      metadataEnvPrefix: 'SANDBOX_',
      shutdownTimeoutMs: 10_000,
      httpIdleTimeoutMs: 60_000,
      streamChunkSize: 0,
      version: false,
    });
  });

  it("parses as Go's flag package, and checks the ports as upstream", () => {
    const a = parseSandboxdArgs([
      '--grpc-port=9191',
      '-rest-port',
      '8181',
      '--root-dir',
      '/app',
      '--listen-host=127.0.0.1',
      '--shutdown-timeout=1m30s',
      '--zap-log-level',
      'debug',
      '--legacy-listen',
      '0.0.0.0:8888',
    ]);
    assert.equal(a.grpcPort, 9191);
    assert.equal(a.restPort, 8181);
    assert.equal(a.rootDir, '/app');
    assert.equal(a.listenHost, '127.0.0.1');
    assert.equal(a.shutdownTimeoutMs, 90_000);
    assert.deepEqual(a.legacyListen, { host: '0.0.0.0', port: 8888 });
    assert.equal(parseSandboxdArgs(['--version']).version, true);
    assert.throws(() => parseSandboxdArgs(['--grpc-port=8080']), /must differ/);
    assert.throws(() => parseSandboxdArgs(['--rest-port=0']), /range 1-65535/);
    assert.throws(() => parseSandboxdArgs(['--nope']), /flag provided but not defined: -nope/);
    assert.equal(parseDuration('250ms'), 250);
    assert.equal(parseDuration('1h'), 3_600_000);
    assert.throws(() => parseDuration('10'), /invalid duration/);
  });

  it('the entry point checks its flags before it listens: port 0 exits 2, as upstream', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'asb-sandboxd-main-'));
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        new URL('../src/sandboxd/main.ts', import.meta.url).pathname,
        '--root-dir',
        join(dir, 'ws'),
        '--listen-host',
        '127.0.0.1',
        '--grpc-port',
        '0',
        '--rest-port',
        '0',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    try {
      // Port 0 is refused, as upstream: the flags are checked before anything listens.
      const code = await new Promise((r) => child.once('exit', r));
      assert.equal(code, 2);
    } finally {
      child.kill();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
