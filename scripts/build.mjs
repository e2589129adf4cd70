// Bundles the programs that run outside a TypeScript loader:
// - dist/agent.cjs: the runtime agent, mounted read-only into every sandbox (one file, no node_modules there);
// - dist/asb.mjs:   the CLI and the engine it starts.
import { build } from 'esbuild';
import { existsSync, mkdirSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

const common = { bundle: true, platform: 'node', target: 'node20', format: 'esm', sourcemap: false, logLevel: 'warning',
  // ESM bundles that pull CommonJS dependencies need a require() of their own.
  banner: { js: "import { createRequire as __asbCreateRequire } from 'node:module'; const require = __asbCreateRequire(import.meta.url);" } };

// CommonJS on purpose: under gVisor node's ESM loader costs ~50 ms more at startup than require().
await build({ ...common, format: 'cjs', banner: {}, entryPoints: ['packages/runtime/src/main.ts'], outfile: 'dist/agent.cjs', minify: true });
if (existsSync('packages/cli/src/main.ts')) {
  await build({ ...common, entryPoints: ['packages/cli/src/main.ts'], outfile: 'dist/asb.mjs', external: ['better-sqlite3'] });
}

// dist/statx-shim.so: see packages/engine/native/statx-shim.c. Without a C compiler the engine
// runs without it (and `ls` inside gVisor 20221219 fails with "Invalid argument").
mkdirSync('dist', { recursive: true });
try {
  execFileSync('cc', ['-shared', '-fPIC', '-O2', '-Wall', '-o', 'dist/statx-shim.so', 'packages/engine/native/statx-shim.c'], { stdio: 'inherit' });
} catch {
  console.warn('warning: no C compiler (cc): dist/statx-shim.so not built; `ls` in sandboxes may fail under old gVisor releases');
}
