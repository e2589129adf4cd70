// Upstream's Python client from PyPI (k8s-agent-sandbox[grpc] 1.0.8, the newest on 2026-11-29)
// against our sandboxd: its sandboxd connection mode runs commands over gRPC Execute and moves
// files over REST /v1/files, and through its own generated stubs and channel streams output,
// feeds stdin, sends signals. Here rather than under test/k8s: it needs no cluster, only
// sandboxd on loopback and a stand-in for the one kubectl command the client runs (its
// `port-forward` to the pod, support/sandboxd-python/kubectl), which forwards the bytes as
// kubectl would.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startSandboxd, type Sandboxd } from '../../packages/runtime/src/sandboxd/server.ts';

const run = promisify(execFile);
const support = new URL('./support/sandboxd-python/', import.meta.url).pathname;
const VERSION = '1.0.8';

/** The python of a virtualenv holding k8s-agent-sandbox[grpc]==VERSION (made on first use, next
 *  to test/k8s's client virtualenvs; the grpc extra is what the sandboxd mode needs). */
function pythonWithGrpc(): string {
  const cache = process.env.ASB_K8S_CACHE ?? join(homedir(), '.cache', 'asb-k8s');
  const venv = join(cache, `py-k8s-agent-sandbox-${VERSION}-grpc`);
  const python = join(venv, 'bin', 'python');
  if (existsSync(join(venv, '.installed'))) return python;
  execFileSync('python3', ['-m', 'venv', '--clear', venv], { stdio: 'inherit' });
  execFileSync(
    python,
    ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', `k8s-agent-sandbox[grpc]==${VERSION}`],
    { stdio: 'inherit' },
  );
  execFileSync('touch', [join(venv, '.installed')]);
  return python;
}

describe(`upstream's Python client ${VERSION} against our sandboxd`, { timeout: 300_000 }, () => {
  const root = mkdtempSync(join(tmpdir(), 'asb-sandboxd-py-'));
  let d: Sandboxd;
  before(async () => {
    d = await startSandboxd({
      rootDir: root,
      listenHost: '127.0.0.1',
      grpcPort: 0,
      restPort: 0,
      metadataEnvPrefix: 'SANDBOX_',
      streamChunkSize: 0,
      httpIdleTimeoutMs: 60_000,
    });
  });
  after(async () => {
    await d?.shutdown(5000);
    rmSync(root, { recursive: true, force: true });
  });

  it('runs commands, streams, feeds stdin, signals, and writes, reads, lists and deletes files', async () => {
    const python = pythonWithGrpc();
    const { stdout } = await run(python, [join(support, 'client_flow.py')], {
      env: {
        PATH: `${support}:${process.env.PATH}`,
        HOME: process.env.HOME,
        SANDBOXD_REST_PORT: String(d.restPort),
        SANDBOXD_GRPC_PORT: String(d.grpcPort),
      },
      timeout: 120_000,
    });
    const seen = JSON.parse(stdout.trim().split('\n').pop()!);
    assert.equal(seen.version, VERSION);
    // commands.run: Execute of /bin/sh -c, in the root dir.
    assert.deepEqual(seen.run, ['hello from the python client\n', '', 0]);
    assert.deepEqual(seen.run_err, ['', 'oops\n', 3]);
    assert.equal(seen.run_pwd, realpathSync(root));
    // files over REST, and the same files seen by a command.
    assert.equal(seen.read_ok, true);
    assert.equal(seen.read_text, 'hello from python');
    assert.equal(seen.cat, 'hello from python');
    assert.equal(seen.exists, true);
    assert.equal(seen.exists_dir, true);
    assert.equal(seen.missing, false);
    assert.deepEqual(seen.list, [
      ['hello.txt', 'file', 17, '0644', true],
      ['sub', 'directory', seen.list[1][2], '0755', true],
    ]);
    assert.deepEqual(seen.list_root, ['dir']);
    assert.equal(seen.delete_nonempty, 409);
    assert.equal(seen.after_delete, false);
    assert.equal(seen.delete_missing, 404);
    assert.equal(seen.after_rm_rf, false);
    assert.equal(seen.traversal, 403);
    assert.equal(seen.read_missing, 404);
    // Start streams each line as it is written (the lines 0.3 s apart arrive apart).
    assert.deepEqual(
      seen.stream.map(([line]: [string]) => line),
      ['1\n', '2\n', '3\n'],
    );
    assert.ok(seen.stream[2][1] - seen.stream[0][1] >= 0.4, JSON.stringify(seen.stream));
    assert.equal(seen.stream_exit, 0);
    assert.equal(seen.stdin, 'piped through stdin');
    assert.equal(seen.stdin_exit, 0);
    assert.equal(seen.signal_exit, -1);
    assert.equal(seen.resize, 'FAILED_PRECONDITION');
    assert.equal(seen.unknown_pid, 'NOT_FOUND');
    assert.equal(seen.cwd_escape, 'PERMISSION_DENIED');
    assert.equal(seen.pty, 'UNIMPLEMENTED');
  });
});
