// Upstream's own sandboxd server tests (sigs.k8s.io/agent-sandbox v1.0.1,
// packages/sandboxd/pkg/server/*_test.go) against our daemon, dist/sandboxd.cjs: runs
// scripts/upstream-sandboxd-tests.sh with `go test -json` and requires every test the suite ran to
// pass. Needs Go (CI has it; without it this fails, it does not skip) and upstream's module, which
// is fetched into the Go module cache when missing, as test/k8s does; so are the modules its tests
// import (GOPROXY from `go env` unless set).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const repo = new URL('../../', import.meta.url).pathname;
const UPSTREAM = 'sigs.k8s.io/agent-sandbox';
const VERSION = 'v1.0.1';

/** One line of `go test -json` (test2json's TestEvent). */
interface TestEvent {
  Action: string;
  Test?: string;
  Output?: string;
}

function goEnv(name: string): string {
  return execFileSync('go', ['env', name], { encoding: 'utf8' }).trim();
}

describe(`upstream's sandboxd server tests (${UPSTREAM}@${VERSION}) against our sandboxd`, { timeout: 900_000 }, () => {
  it('every test of the suite passes, the PTY ones included', async () => {
    for (const f of ['sandboxd.cjs', 'asb-spawn'])
      assert.ok(existsSync(join(repo, 'dist', f)), `dist/${f} is missing: run npm run build`);
    try {
      execFileSync('go', ['version'], { stdio: 'ignore' });
    } catch (err) {
      assert.fail(`Go is needed to compile upstream's tests (go test), and was not found: ${(err as Error).message}`);
    }
    // As test/k8s/cluster.ts's goModuleDir: `go mod download` from outside any module.
    const mod = (
      JSON.parse(
        execFileSync('go', ['mod', 'download', '-json', `${UPSTREAM}@${VERSION}`], {
          cwd: tmpdir(),
          encoding: 'utf8',
          env: { ...process.env, GOFLAGS: '-mod=mod' },
        }),
      ) as { Dir: string }
    ).Dir;
    const { code, stdout, stderr } = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
      execFile(
        'bash',
        [join(repo, 'scripts/upstream-sandboxd-tests.sh'), '-json'],
        {
          env: { ...process.env, UPSTREAM_MODULE: mod, GOPROXY: process.env.GOPROXY ?? goEnv('GOPROXY') },
          maxBuffer: 256 << 20,
        },
        (err, out, errOut) =>
          resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout: out, stderr: errOut }),
      ),
    );
    const output = new Map<string, string>();
    const results = new Map<string, string>();
    for (const line of stdout.split('\n')) {
      if (!line.startsWith('{')) continue;
      const ev = JSON.parse(line) as TestEvent;
      if (!ev.Test) continue;
      if (ev.Action === 'output') output.set(ev.Test, (output.get(ev.Test) ?? '') + (ev.Output ?? ''));
      else if (['pass', 'fail', 'skip'].includes(ev.Action)) results.set(ev.Test, ev.Action);
    }
    const tail = (s: string) => s.split('\n').slice(-40).join('\n');
    assert.ok(
      results.size > 0,
      `upstream's suite ran no test (exit code ${code}); the build failed?\n${tail(stderr)}\n${tail(stdout)}`,
    );
    const notPassed = [...results].filter(([, r]) => r !== 'pass');
    assert.deepEqual(
      notPassed.map(([t, r]) => `${t}: ${r}`),
      [],
      notPassed.map(([t, r]) => `--- ${t}: ${r}\n${tail(output.get(t) ?? '')}`).join('\n'),
    );
    assert.equal(code, 0, `the script failed though no test did:\n${tail(stderr)}\n${tail(stdout)}`);
    // 34 today (the script leaves out only the tests that reach into upstream's server object).
    assert.ok(results.size >= 34, `only ${results.size} tests ran: ${[...results.keys()].join(', ')}`);
    for (const t of ['TestStartWithPTY', 'TestResizeTTYWithPTY']) assert.equal(results.get(t), 'pass', t);
  });
});
