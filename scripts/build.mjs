// Bundles the programs that run outside a TypeScript loader:
// - dist/agent.cjs:  the runtime agent, mounted read-only into every sandbox (one file: the
//                    sandbox has no node_modules). CommonJS: node's ESM loader costs more at
//                    startup under gVisor.
// - dist/agent.blob: a V8 startup snapshot of the agent with its modules loaded, when the host's
//                    node can build one (it saves ~200 ms of every sandbox's cold start).
// - dist/sandboxd.cjs: upstream's sandboxd API (gRPC ProcessService, REST /v1/files...), for the
//                    Kubernetes runtime images; a bundle of its own, so that agent.cjs, which every
//                    local sandbox loads, does not carry gRPC.
// - dist/asb.mjs:    the CLI and the engine it starts.
// - dist/controller.mjs, dist/router.mjs: the Kubernetes controller and the sandbox router.
// - dist/statx-shim.so, dist/asb-spawn, dist/asb-reaper: native helpers (packages/*/native/).
// - dist/asb-agent:  the Go agent (packages/runtime/agent-go), a static binary: the default agent.
// - dist/asb-spawner: the engine's command starter (packages/engine/native/spawner), Go, static.
// - dist/asb-unpack:  the image unpacker (packages/oci/unpack-go), Go, static.
import { build } from 'esbuild';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import { builtinModules, createRequire } from 'node:module';

const require = createRequire(import.meta.url);
mkdirSync('dist', { recursive: true });

/** Node builtins become lazy getters, required on first use: several builtins (node:http among
 *  them) cannot be loaded while a startup snapshot is being built, but are fine after it. */
const lazyBuiltins = {
  name: 'lazy-builtins',
  setup(b) {
    b.onResolve({ filter: /^(node:)?[a-z_/0-9]+$/ }, (args) => {
      const name = args.path.replace(/^node:/, '');
      return builtinModules.includes(name) ? { path: name, namespace: 'lazy-builtin' } : undefined;
    });
    b.onLoad({ filter: /.*/, namespace: 'lazy-builtin' }, (args) => {
      const keys = Object.keys(require(`node:${args.path}`)).filter((k) => /^[A-Za-z_$][\w$]*$/.test(k));
      const getters = keys.map((k) => `  get ${k}() { return load().${k}; },`).join('\n');
      // `req` (not `require`) so esbuild leaves the call alone instead of resolving it back here.
      return {
        contents: `let m; const req = require; const load = () => (m ??= req('node:' + ${JSON.stringify(args.path)}));\nmodule.exports = {\n${getters}\n};`,
        loader: 'js',
      };
    });
  },
};

/** What the in-sandbox bundles share: one CommonJS file node 20 runs as it is. */
const nodeCjs = { bundle: true, platform: 'node', target: 'node20', format: 'cjs', minify: true, logLevel: 'warning' };

await build({
  ...nodeCjs,
  entryPoints: ['packages/runtime/src/main.ts'],
  outfile: 'dist/agent.cjs',
  plugins: [lazyBuiltins],
});

rmSync('dist/agent.blob', { force: true });
rmSync('dist/agent.blob.json', { force: true });
try {
  // V8 flags must be those the sandbox starts node with (agentArgv in
  // packages/engine/src/drivers/runtime-spec.ts, none today): they are part of the snapshot's configuration tag.
  execFileSync(process.execPath, ['--snapshot-blob', 'dist/agent.blob', '--build-snapshot', 'dist/agent.cjs'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  // A snapshot only loads into the very node that built it: record which one.
  writeFileSync('dist/agent.blob.json', JSON.stringify({ node: process.version, execPath: process.execPath }) + '\n');
} catch (err) {
  console.warn(
    `warning: no startup snapshot of the agent (${String(err.stderr ?? err).split('\n')[0]}); sandboxes start from dist/agent.cjs`,
  );
}

// The .proto's text goes into the bundle (src/sandboxd/proto-text.ts reads it from the repository).
const inlineProto = {
  name: 'inline-proto',
  setup(b) {
    b.onLoad({ filter: /sandboxd[\\/]proto-text\.ts$/ }, () => ({
      contents: `export const PROCESS_PROTO = ${JSON.stringify(readFileSync('packages/runtime/proto/process/v1/process.proto', 'utf8'))};`,
      loader: 'ts',
    }));
  },
};
await build({
  ...nodeCjs,
  entryPoints: ['packages/runtime/src/sandboxd/main.ts'],
  outfile: 'dist/sandboxd.cjs',
  plugins: [inlineProto],
});

if (existsSync('packages/cli/src/main.ts')) {
  await build({
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'esm',
    logLevel: 'warning',
    banner: {
      js: "import { createRequire as __asbCreateRequire } from 'node:module'; const require = __asbCreateRequire(import.meta.url);",
    },
    entryPoints: ['packages/cli/src/main.ts'],
    outfile: 'dist/asb.mjs',
    external: ['better-sqlite3'],
  });
}

// The Kubernetes controller and the sandbox router: one file each, for their container images
// (images/controller, images/router), which hold node and the bundle and nothing else.
for (const [entry, out] of [
  ['packages/k8s/src/controller/main.ts', 'dist/controller.mjs'],
  ['packages/k8s/src/router/main.ts', 'dist/router.mjs'],
]) {
  if (!existsSync(entry)) continue;
  await build({
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'esm',
    logLevel: 'warning',
    banner: {
      js: "import { createRequire as __asbCreateRequire } from 'node:module'; const require = __asbCreateRequire(import.meta.url);",
    },
    entryPoints: [entry],
    outfile: out,
  });
}

// Native helpers, when a C compiler is present; the engine works without them, slower or with
// `ls` failing under gVisor 20221219 (each file says why it exists).
const native = [
  ['dist/statx-shim.so', ['-shared', '-fPIC', '-O2', '-Wall', 'packages/engine/native/statx-shim.c']],
  ['dist/asb-spawn', ['-O2', '-Wall', 'packages/runtime/native/asb-spawn.c']],
  ['dist/asb-reaper', ['-O2', '-Wall', 'packages/engine/native/asb-reaper.c']],
];
for (const [out, args] of native) {
  // asb-spawn runs inside sandboxes (the relay that re-attaches an engine, and PID 1 under the node
  // agent): static, so that it needs no libc from the sandbox's filesystem; dynamic where libc.a
  // is missing.
  const attempts = out === 'dist/asb-spawn' ? [['-static', ...args], args] : [args];
  let why = '';
  const built = attempts.some((a) => {
    try {
      execFileSync('cc', [...a, '-o', out], { stdio: ['ignore', 'ignore', 'pipe'] });
      return true;
    } catch (err) {
      why = String(err.stderr ?? err.message).trim();
      return false;
    }
  });
  if (!built) console.warn(`warning: ${out} not built (no C compiler?): ${why}`);
}

/**
 * A static Go binary (CGO_ENABLED=0: no libc, loader or interpreter needed where it runs) built
 * from `dir` to dist/<name>, or the warning said when it cannot be (no Go toolchain). GOFLAGS=-mod=mod
 * unless set: dependencies come from the module proxy or the module cache.
 */
function goBinary(dir, name, without) {
  try {
    execFileSync('go', ['build', '-trimpath', '-ldflags', '-s -w', '-o', resolve(`dist/${name}`), '.'], {
      cwd: dir,
      env: { ...process.env, CGO_ENABLED: '0', GOFLAGS: process.env.GOFLAGS ?? '-mod=mod' },
      stdio: 'inherit',
    });
  } catch {
    console.warn(`warning: dist/${name} not built (no Go toolchain?): ${without}`);
  }
}

// dist/asb-agent: the in-sandbox agent (packages/runtime/agent-go), when Go is installed; the
// engine runs it instead of node unless ASB_AGENT=node. Its one dependency: golang.org/x/net.
goBinary('packages/runtime/agent-go', 'asb-agent', 'sandboxes run the node agent');

// dist/asb-unpack: applies an image's layers (packages/oci/unpack-go; Go's tar and decompression
// through an os.Root), ~4 times node-tar's speed; without it, packages/oci unpacks with node-tar.
// Its one dependency: klauspost/compress, for zstd and a faster gzip.
goBinary('packages/oci/unpack-go', 'asb-unpack', 'images are unpacked by node-tar');

// dist/asb-spawner: starts the commands the engine runs to their end (runsc kill, delete, umount)
// and makes its mounts, so that node's spawn does not block the engine's event loop for each
// (packages/engine/src/spawner.ts); without it the engine uses execFile and mount(8).
goBinary('packages/engine/native/spawner', 'asb-spawner', 'the engine starts commands with execFile');
