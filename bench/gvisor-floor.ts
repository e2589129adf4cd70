// What gVisor itself costs on this machine, with none of ours inside: the floor the local engine's
// numbers are read against (issue 20). Every function takes the runsc to measure, so that two
// gVisor versions are measured side by side in one run.
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { unmountAll } from '@asb/engine';
import { childrenOf, pssBytes, treeOf } from './procmem.ts';

const run = promisify(execFile);

export interface RunscUnderTest {
  /** A short name for the table's column. */
  label: string;
  path: string;
  /** `runsc --version`'s first line. */
  version: string;
}

/**
 * The runscs to measure: BENCH_RUNSC (comma-separated paths), else Debian's on PATH and the pinned
 * current one (dist/runsc, scripts/build-runsc.sh) when each is there.
 */
export async function runscsUnderTest(env = process.env): Promise<RunscUnderTest[]> {
  const paths = env.BENCH_RUNSC
    ? env.BENCH_RUNSC.split(',').map((p) => p.trim())
    : ['runsc', resolve('dist/runsc')].filter((p) => p === 'runsc' || existsSync(p));
  const out: RunscUnderTest[] = [];
  for (const path of paths) {
    const version = await run(path, ['--version']).then(
      (r) => r.stdout.split('\n')[0]!,
      () => undefined,
    );
    if (!version) continue;
    const date = /(20\d{6})/.exec(version)?.[1] ?? '?';
    out.push({ label: `gVisor ${date}`, path, version });
  }
  if (out.length === 0) throw new Error("no runsc to measure (install Debian's, or run scripts/build-runsc.sh)");
  return out;
}

/** A runsc --root of its own, which newer runscs pin a network namespace in (null-netns). */
export function runscRoot(): { dir: string; remove(): Promise<void> } {
  const dir = mkdtempSync(join(tmpdir(), 'asb-floor-'));
  return {
    dir,
    async remove() {
      // Newer runsc leaves <root>/null-netns mounted: EBUSY until it is unmounted.
      await unmountAll(dir);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** `runsc do true`, start to exit, n times (the root filesystem is the host's, as runsc do has it). */
export async function runscDoTrue(runsc: string, n: number): Promise<number[]> {
  const root = runscRoot();
  const times: number[] = [];
  try {
    await run(runsc, ['--root', root.dir, '--network=none', 'do', 'true']); // warm; not counted
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      await run(runsc, ['--root', root.dir, '--network=none', 'do', 'true']);
      times.push(performance.now() - t0);
    }
  } finally {
    await root.remove();
  }
  return times;
}

const REAPER = resolve('dist/asb-reaper');

/**
 * PSS of `n` bare gVisor sandboxes running only `sleep` (the host's root read-only, /proc, a
 * tmpfs /tmp, no network), each started and waited for as the engine does (asb-reaper, or a
 * `runsc run` in the foreground without it), with everything that starts. Ten at a time.
 */
export async function idleSleepSandboxes(runsc: string, n: number): Promise<number[]> {
  const root = runscRoot();
  const ids: string[] = [];
  const pids: number[] = [];
  /** Whatever waits for each sandbox (asb-reaper, or `runsc run`): the sandbox runs under it. */
  const waiters: number[] = [];
  try {
    for (let i = 0; i < n; i += 10) {
      await Promise.all(
        Array.from({ length: Math.min(10, n - i) }, async (_, j) => {
          const id = `floor-${i + j}`;
          const bundle = join(root.dir, 'bundles', id);
          mkdirSync(bundle, { recursive: true });
          writeFileSync(join(bundle, 'config.json'), JSON.stringify(sleepSpec()));
          // As the engine waits for a sandbox: asb-reaper when built, else `runsc run` in the foreground.
          const runArgs = ['--root', root.dir, '--network=none', 'run', '--bundle', bundle, id];
          const pidFile = join(bundle, 'sandbox.pid');
          const [cmd, args] = existsSync(REAPER)
            ? [
                REAPER,
                [pidFile, '--', runsc, ...runArgs.slice(0, 4), '--detach', '--pid-file', pidFile, ...runArgs.slice(4)],
              ]
            : [runsc, runArgs];
          const child = spawn(cmd, args, {
            stdio: 'ignore',
            detached: true,
          });
          child.unref();
          ids.push(id);
          waiters.push(child.pid!);
          for (let t = 0; t < 600; t++) {
            const state = await run(runsc, ['--root', root.dir, 'state', id]).then(
              (r) => JSON.parse(r.stdout) as { status: string },
              () => undefined,
            );
            if (state?.status === 'running') break;
            await new Promise((r) => setTimeout(r, 50));
          }
          pids.push(child.pid!);
        }),
      );
    }
    await new Promise((r) => setTimeout(r, 3000));
    const kids = childrenOf();
    return pids.map((pid) => treeOf(pid, kids).reduce((a, p) => a + pssBytes(p), 0));
  } finally {
    await Promise.all(
      ids.map(async (id) => {
        await run(runsc, ['--root', root.dir, 'kill', '--all', id, 'KILL']).catch(() => undefined);
        await run(runsc, ['--root', root.dir, 'delete', '--force', id]).catch(() => undefined);
      }),
    );
    // Ten deletes at once sometimes leave one sandbox running (runsc's errors are not ours to
    // report here): whatever still runs under the waiters goes, so no run leaks a sandbox.
    const kids = childrenOf();
    for (const pid of waiters.flatMap((w) => treeOf(w, kids))) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    await root.remove();
  }
}

/** `runsc` with `args` to its end, its stdio on nothing: a sandbox it starts inherits its stdio,
 *  and a pipe held by one would keep a caller that reads it waiting for ever. */
function runQuiet(runsc: string, args: string[]): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(runsc, args, { stdio: 'ignore' });
    child.once('error', reject);
    child.once('exit', (code, signal) =>
      code === 0 ? resolvePromise() : reject(new Error(`runsc ${args.join(' ')}: ${signal ?? `exit ${code}`}`)),
    );
  });
}

/**
 * gVisor's own suspend and resume, none of ours inside: a bare sandbox running only `sleep`
 * (sleepSpec) checkpointed to disk (`runsc checkpoint --image-path`), deleted, and restored from
 * the image (`runsc restore --detach`), n times: the floor of the engine's suspend and resume.
 */
export async function checkpointRestoreFloor(
  runsc: string,
  n: number,
): Promise<{ checkpoint: number[]; restore: number[] }> {
  const root = runscRoot();
  const base = ['--root', root.dir, '--network=none'];
  const bundle = join(root.dir, 'bundle');
  mkdirSync(bundle, { recursive: true });
  writeFileSync(join(bundle, 'config.json'), JSON.stringify(sleepSpec()));
  const checkpoint: number[] = [];
  const restore: number[] = [];
  let ids: string[] = [];
  try {
    for (let i = 0; i <= n; i++) {
      const [booted, restored] = [`cr-${i}`, `cr-${i}-restored`];
      ids = [booted, restored];
      const image = join(root.dir, `image-${i}`);
      mkdirSync(image);
      await runQuiet(runsc, [...base, 'run', '--detach', '--bundle', bundle, booted]);
      let t0 = performance.now();
      await runQuiet(runsc, [...base, 'checkpoint', '--image-path', image, booted]);
      const c = performance.now() - t0;
      await runQuiet(runsc, [...base, 'delete', '--force', booted]).catch(() => undefined);
      t0 = performance.now();
      await runQuiet(runsc, [...base, 'restore', '--detach', '--bundle', bundle, '--image-path', image, restored]);
      const r = performance.now() - t0;
      await runQuiet(runsc, [...base, 'delete', '--force', restored]).catch(() => undefined);
      if (i === 0) continue; // warm; not counted
      checkpoint.push(c);
      restore.push(r);
    }
  } finally {
    // A step that failed leaves its sandbox running: it goes, so no run leaks one.
    for (const id of ids) await runQuiet(runsc, [...base, 'delete', '--force', id]).catch(() => undefined);
    await root.remove();
  }
  return { checkpoint, restore };
}

function sleepSpec(): Record<string, unknown> {
  return {
    ociVersion: '1.0.2',
    process: {
      user: { uid: 1000, gid: 1000 },
      args: ['/bin/sleep', 'infinity'],
      env: ['PATH=/usr/bin:/bin'],
      cwd: '/',
      capabilities: { bounding: [], effective: [], inheritable: [], permitted: [], ambient: [] },
      noNewPrivileges: true,
    },
    root: { path: '/', readonly: true },
    hostname: 'floor',
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc' },
      { destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'mode=1777'] },
    ],
    linux: {
      namespaces: [{ type: 'pid' }, { type: 'network' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }],
    },
  };
}

/** How long a sandbox sits idle before the commands timed "after quiet", and how many are timed. */
export const QUIET_MS = 200;
const QUIET_N = 20;

/** `call` timed up to QUIET_N times (at most n), each after QUIET_MS with nothing sent: what a
 *  command costs a sandbox that sat idle (a warm pool's member, claimed), its threads asleep. */
export async function timedAfterQuiet(n: number, call: () => Promise<unknown>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < Math.min(n, QUIET_N); i++) {
    await new Promise((r) => setTimeout(r, QUIET_MS));
    const t0 = performance.now();
    await call();
    out.push(performance.now() - t0);
  }
  return out;
}

/**
 * Round trips from the host into a running sandbox and back, timed one at a time, with none of ours
 * inside: bench/native/exec-floor.c under `runsc do` (no network), a socket as its stdin and
 * stdout. `call`: a byte and its answer, nothing run; `exec`: the same with /bin/true started
 * (vfork, its output on pipes read to the end, its exit waited for) before the answer: the least
 * an exec service in a sandbox can cost; `execAfterQuiet`: that, each after QUIET_MS of quiet.
 * Undefined where no C compiler builds it.
 */
export async function roundTripFloor(
  runsc: string,
  n: number,
): Promise<{ call: number[]; exec: number[]; execAfterQuiet: number[] } | undefined> {
  const root = runscRoot();
  const server = join(root.dir, 'exec-floor');
  try {
    const built = await run('cc', ['-O2', '-Wall', '-static', '-o', server, resolve('bench/native/exec-floor.c')]).then(
      () => true,
      () => false,
    );
    if (!built) return undefined;
    // node's stdio pipes are socketpairs: the sandbox reads and writes a host socket, as the agent's.
    const child = spawn(runsc, ['--root', root.dir, '--network=none', 'do', server], {
      stdio: ['pipe', 'pipe', 'ignore'],
    });
    let answer: (() => void) | undefined;
    child.stdout.on('data', () => answer?.());
    const roundTrip = (byte: string) =>
      new Promise<void>((res, rej) => {
        const timer = setTimeout(() => rej(new Error('exec-floor: no answer within 10 s')), 10_000);
        answer = () => {
          clearTimeout(timer);
          res();
        };
        child.stdin.write(byte);
      });
    const times = async (byte: string) => {
      for (let i = 0; i < 20; i++) await roundTrip(byte); // warm; not counted
      const out: number[] = [];
      for (let i = 0; i < n; i++) {
        const t0 = performance.now();
        await roundTrip(byte);
        out.push(performance.now() - t0);
      }
      return out;
    };
    try {
      return {
        call: await times('.'),
        exec: await times('x'),
        execAfterQuiet: await timedAfterQuiet(n, () => roundTrip('x')),
      };
    } finally {
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
    }
  } finally {
    await root.remove();
  }
}

/** A fork+exec of /bin/true inside a running sandbox, µs per iteration of a `sh` loop of `n`. */
export const FORK_EXEC_LOOP = (n: number) =>
  `sh -c 'a=$(date +%s%N); i=0; while [ $i -lt ${n} ]; do /bin/true; i=$((i+1)); done; b=$(date +%s%N); echo $(( (b-a)/1000/${n} ))'`;
