// Seed 000's two flows, shared by the quickstart and the demo (examples/go/demo.ts): ship Go
// sources into a sandbox, build and run them there. Each command's output is printed as the
// seed's "Expected tail of output" shows it; a failing command stops the flow with its exit code.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CommandResult, Sandbox } from '@asb/sdk';

const here = dirname(fileURLToPath(import.meta.url));
const BUILD_TIMEOUT_MS = 600_000;

/** Every file under `dir`, by its path relative to `dir`. */
export function filesOf(dir: string): Array<[string, Buffer]> {
  const out: Array<[string, Buffer]> = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out.push([relative(dir, p), readFileSync(p)]);
    }
  };
  walk(dir);
  return out;
}

/** Prints `-- label [exit=N] -- output`; throws when the command failed. */
export function show(label: string, r: CommandResult): void {
  const text = (r.stdout + (r.exitCode !== 0 ? r.stderr : '')).trimEnd();
  console.log(`-- ${label} [exit=${r.exitCode}] -- ${text}`);
  if (r.exitCode !== 0) throw new Error(`${label} failed with exit code ${r.exitCode}`);
}

/** The single-file flow: `go run`, then a build whose binary is run again without recompiling. */
export async function smokeFlow(sb: Sandbox): Promise<void> {
  console.log('=== single-file smoke flow ===');
  for (const [path, data] of filesOf(join(here, 'smoke'))) await sb.files.write(`smoke/${path}`, data);
  show('go run main.go', await sb.run('go run main.go', { cwd: 'smoke', timeoutMs: BUILD_TIMEOUT_MS }));
  show('go build -o app .', await sb.run('go build -o app .', { cwd: 'smoke', timeoutMs: BUILD_TIMEOUT_MS }));
  show('./app (re-runs the binary without recompiling)', await sb.run('./app', { cwd: 'smoke' }));
}

/** The multi-file module flow: a module with a package and its tests. */
export async function multiFlow(sb: Sandbox): Promise<void> {
  console.log('=== multi-file module flow ===');
  for (const [path, data] of filesOf(join(here, 'multifile'))) await sb.files.write(`multifile/${path}`, data);
  const build = await sb.run('go build -o app .', { cwd: 'multifile', timeoutMs: BUILD_TIMEOUT_MS });
  if (build.exitCode !== 0) show('go build -o app .', build);
  show('./app', await sb.run('./app', { cwd: 'multifile' }));
  show(
    'go test ./...',
    await sb.run('go test ./... 2>&1 | grep -v "no test files"', { cwd: 'multifile', timeoutMs: BUILD_TIMEOUT_MS }),
  );
}
