// The engine's CPU weight against the sandboxes it serves. Each sandbox is a cgroup of its own
// (runsc makes it), and the kernel shares CPU between cgroups by weight before it looks at any
// process's nice value; with autogroup on, a nice value counts only inside its own session. So
// neither `nice` on sandboxes nor on the engine decides who runs: on two cores, five busy
// sandboxes delayed the engine's event loop past 100 ms. The engine moves itself into a cgroup
// of its own with a weight many times a sandbox's, and every sandbox's request is served sooner.
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * cgroup v1 `cpu.shares` of the engine: the most v1 allows (v2: `cpu.weight` 10000, also its
 * most). A process's default is 1024, a sandbox's 256 per CPU. Measured with the hostile-sandbox
 * suite on two cores: 1024 (no cgroup) gave event-loop delays up to 123 ms a window, 8192 up to
 * 174, 65536 up to 116, 262144 up to 30–62. The engine's work is what every sandbox waits on.
 */
export const ENGINE_CPU_SHARES_DEFAULT = 262_144;
export const ENGINE_CGROUP = 'asb-engine';
/** A sibling at the default weight for what the engine starts (runsc, bwrap, du): a child would
 *  otherwise inherit the engine's weight, and a bubblewrap sandbox has no cgroup of its own. */
export const HELPER_CGROUP = 'asb-engine-children';
/** A sibling at a low weight for tearing sandboxes down (`runsc kill`, `delete`): that work has
 *  no one waiting on it, and on two cores it took the CPU from the command a claim was running
 *  in the next sandbox (the warm claim's first command, 14 ms alone, took 24). */
export const TEARDOWN_CGROUP = 'asb-engine-teardown';
/** cgroup v1 `cpu.shares` of teardown: an eighth of a one-CPU sandbox's (cpuShares: 256). Not
 *  the least (2): beside five busy sandboxes that would leave a `runsc delete` (~30 ms of CPU)
 *  about 0.2% of the machine, ten seconds; at 32 it takes about half a second. */
export const TEARDOWN_CPU_SHARES = 32;
const CGROUP_ROOT = '/sys/fs/cgroup';

export type EngineCgroupResult = { moved: true; path: string; weight: string } | { moved: false; reason: string };

/** Pure: the engine's cgroup path for the cpu controller, from the text of /proc/self/cgroup. */
export function cpuCgroupOf(procCgroup: string): { version: 1 | 2; path: string } | undefined {
  let unified: string | undefined;
  for (const line of procCgroup.split('\n')) {
    // hierarchy-ID:controller-list:path (the path may itself hold colons)
    const first = line.indexOf(':');
    const second = line.indexOf(':', first + 1);
    if (first < 0 || second < 0) continue;
    const controllers = line.slice(first + 1, second);
    const path = line.slice(second + 1);
    if (controllers.split(',').includes('cpu')) return { version: 1, path };
    if (controllers === '') unified = path;
  }
  return unified === undefined ? undefined : { version: 2, path: unified };
}

/** Pure: cgroup v2's `cpu.weight` (1–10000, default 100) for a v1 share count (default 1024). */
export function sharesToWeight(shares: number): number {
  return Math.min(10_000, Math.max(1, Math.round((shares * 100) / 1024)));
}

/**
 * Moves this process (all its threads) into `<its cgroup>/asb-engine` with `shares` of CPU
 * weight. Best effort: without root or a writable cgroup tree the engine runs on where it is,
 * and the result says why (the engine logs it).
 */
export function raiseEngineCpuWeight(
  shares: number,
  root = CGROUP_ROOT,
  procCgroup = safeRead('/proc/self/cgroup'),
): EngineCgroupResult {
  if (shares <= 0) return { moved: false, reason: 'disabled (ASB_ENGINE_CPU_SHARES=0)' };
  const own = cpuCgroupOf(procCgroup);
  if (!own) return { moved: false, reason: 'no cpu cgroup in /proc/self/cgroup' };
  const base = own.version === 1 ? cpuControllerDir(root) : root;
  if (!base) return { moved: false, reason: `no cgroup v1 cpu controller under ${root}` };
  const parent = join(
    base,
    own.path.endsWith(`/${ENGINE_CGROUP}`) ? own.path.slice(0, -ENGINE_CGROUP.length - 1) : own.path,
  );
  const dir = join(parent, ENGINE_CGROUP);
  try {
    mkdirSync(dir, { recursive: true });
    // v2 weighs a child only when its parent hands the cpu controller down.
    const subtreeControl = join(parent, 'cgroup.subtree_control');
    const handsDownCpu = safeRead(subtreeControl).split(/\s+/).includes('cpu');
    if (own.version === 2 && !handsDownCpu) appendFileSync(subtreeControl, '+cpu');
    const [file, value] = cpuWeight(own.version, shares);
    writeFileSync(join(dir, file), String(value));
    const helpers = join(parent, HELPER_CGROUP);
    mkdirSync(helpers, { recursive: true });
    const teardown = join(parent, TEARDOWN_CGROUP);
    mkdirSync(teardown, { recursive: true });
    writeFileSync(join(teardown, file), String(cpuWeight(own.version, TEARDOWN_CPU_SHARES)[1]));
    writeFileSync(join(dir, 'cgroup.procs'), String(process.pid));
    helperProcs = join(helpers, 'cgroup.procs');
    teardownProcs = join(teardown, 'cgroup.procs');
    cpuBase = { version: own.version, base };
    return { moved: true, path: dir, weight: `${file}=${value}` };
  } catch (err) {
    return { moved: false, reason: `${dir}: ${(err as Error).message}` };
  }
}

let helperProcs: string | undefined;
let teardownProcs: string | undefined;
let cpuBase: { version: 1 | 2; base: string } | undefined;

/**
 * The argv that runs `command` outside the engine's weighted cgroup: a shell moves itself (0 is
 * the writer) into the helpers' cgroup, then execs the command, so nothing it forks ever runs at
 * the engine's weight. The identity when the engine was not moved.
 */
export function outsideEngineCgroup(command: string, args: string[]): [string, string[]] {
  return inCgroup(helperProcs, command, args);
}

/** The argv that runs `command` at teardown's CPU weight (TEARDOWN_CGROUP): work nobody waits on. */
export function atTeardownWeight(command: string, args: string[]): [string, string[]] {
  return inCgroup(teardownProcs, command, args);
}

function inCgroup(procs: string | undefined, command: string, args: string[]): [string, string[]] {
  if (!procs) return [command, args];
  return ['sh', ['-c', 'echo 0 > "$0" 2>/dev/null; exec "$@"', procs, command, ...args]];
}

/**
 * Gives a sandbox's own cgroup (runsc names it after the container, at the cpu hierarchy's root)
 * teardown's CPU weight as it is killed: its processes' exit (their memory freed) is teardown
 * too. Best effort: false when the engine has no cgroup tree or the sandbox no cgroup.
 */
export function lowerToTeardownWeight(cgroupName: string): boolean {
  if (!cpuBase || !/^[\w.-]+$/.test(cgroupName)) return false;
  const [file, value] = cpuWeight(cpuBase.version, TEARDOWN_CPU_SHARES);
  try {
    writeFileSync(join(cpuBase.base, cgroupName, file), String(value));
    return true;
  } catch {
    return false;
  }
}

/** The file and value that give a cgroup `shares` of CPU weight: v1 `cpu.shares`, v2 `cpu.weight`. */
function cpuWeight(version: 1 | 2, shares: number): [file: string, value: number] {
  return version === 1 ? ['cpu.shares', shares] : ['cpu.weight', sharesToWeight(shares)];
}

function cpuControllerDir(root: string): string | undefined {
  return ['cpu', 'cpu,cpuacct', 'cpuacct,cpu'].map((d) => join(root, d)).find((d) => existsSync(join(d, 'cpu.shares')));
}

function safeRead(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}
