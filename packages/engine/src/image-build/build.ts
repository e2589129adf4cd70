// `asb image build`: an image from a Dockerfile, built on the engine's own parts rather than
// buildah's: the base pulled into the image store, each RUN run under gVisor (runsc, no network,
// no capabilities, limits) on a kernel overlay of the layers so far, each COPY staged from the
// build context (nothing outside it), and each step's writes turned into a layer. The result is an
// image in the store, under its tag, that templates can name at once.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join, posix } from 'node:path';
import { processConfig, ensureMountPoint, type ImageConfig, type ImageStore, type LocalImage } from '@asb/oci';
import { runCommand as run } from '../spawner.ts';
import { parseDockerfile, type Instruction } from './dockerfile.ts';
import { inside, opaqueDirs, writeLayer, type BuiltLayer } from './layers.ts';

export interface BuildOptions {
  store: ImageStore;
  runsc: string;
  /** Where build steps keep their state and scratch directories. */
  workDir: string;
  context: string;
  dockerfile: string;
  tag: string;
  /** Each step as it starts, and what RUN steps print. */
  onStep?: (text: string) => void;
  onOutput?: (chunk: Buffer, stream: 'stdout' | 'stderr') => void;
  limits?: { memoryBytes: number; pids: number };
}

export class BuildError extends Error {
  override name = 'BuildError';
}

const STEP_LIMITS = { memoryBytes: 2 * 1024 ** 3, pids: 1024 };

export async function buildImage(opts: BuildOptions): Promise<LocalImage> {
  const steps = parseDockerfile(readFileSync(opts.dockerfile, 'utf8'));
  mkdirSync(opts.workDir, { recursive: true, mode: 0o700 });
  const scratch = mkdtempSync(join(opts.workDir, 'build-'));
  try {
    const from = steps[0] as Extract<Instruction, { op: 'FROM' }>;
    opts.onStep?.(`STEP 1/${steps.length}: FROM ${from.image}`);
    const base = await opts.store.pull(from.image, { policy: 'IfNotPresent' });
    const config: ImageConfig = structuredClone(base.config);
    config.config ??= {};
    config.rootfs = { type: 'layers', diff_ids: [...(config.rootfs?.diff_ids ?? [])] };
    const layers = [...base.manifest.layers];
    // The layers so far as directories, the lowest first: the base's root, then each step's.
    const lowers = [await opts.store.rootfs(base)];
    for (const [i, step] of steps.entries()) {
      if (i === 0) continue;
      opts.onStep?.(`STEP ${i + 1}/${steps.length}: ${describe(step)}`);
      const dir = join(scratch, String(i));
      let layer: BuiltLayer | undefined;
      const c = config.config;
      switch (step.op) {
        case 'FROM':
          throw new BuildError(`line ${step.line}: one stage only`);
        case 'ENV':
          c.Env = setEnv(
            c.Env ?? [],
            step.vars.map(([k, v]) => [k, expand(v, c.Env ?? [])]),
          );
          break;
        case 'LABEL':
          c.Labels = { ...c.Labels, ...Object.fromEntries(step.labels) };
          break;
        case 'EXPOSE':
          c.ExposedPorts = { ...c.ExposedPorts, ...Object.fromEntries(step.ports.map((p) => [p, {}])) };
          break;
        case 'WORKDIR':
          c.WorkingDir = posix.resolve(c.WorkingDir || '/', expand(step.dir, c.Env ?? []));
          break;
        case 'USER':
          c.User = expand(step.user, c.Env ?? []);
          break;
        case 'ENTRYPOINT':
          c.Entrypoint = step.argv;
          // As Docker: a new ENTRYPOINT drops a Cmd inherited from the base image.
          if (!steps.slice(i + 1).some((s) => s.op === 'CMD')) c.Cmd = null;
          break;
        case 'CMD':
          c.Cmd = step.argv;
          break;
        case 'RUN':
          layer = await runStep(opts, config, lowers, dir, step.argv, step.line);
          break;
        case 'COPY':
          layer = await copyStep(opts, config, dir, step.sources, step.dest, step.line);
          break;
      }
      if (layer) {
        layers.push(layer.descriptor);
        config.rootfs.diff_ids.push(layer.diffId);
        lowers.push(join(dir, 'upper'));
      }
      config.history = [
        ...(config.history ?? []),
        { created: new Date().toISOString(), created_by: describe(step), ...(layer ? {} : { empty_layer: true }) },
      ];
    }
    config.created = new Date().toISOString();
    return await opts.store.add(opts.tag, config, layers);
  } finally {
    await run('umount', ['-R', scratch]).catch(() => undefined);
    rmSync(scratch, { recursive: true, force: true });
  }
}

function describe(step: Instruction): string {
  switch (step.op) {
    case 'RUN':
      return `RUN ${step.shell ? step.argv[2] : JSON.stringify(step.argv)}`;
    case 'COPY':
      return `COPY ${step.sources.join(' ')} ${step.dest}`;
    case 'FROM':
      return `FROM ${step.image}`;
    case 'ENV':
      return `ENV ${step.vars.map(([k, v]) => `${k}=${v}`).join(' ')}`;
    case 'LABEL':
      return `LABEL ${step.labels.map(([k, v]) => `${k}=${v}`).join(' ')}`;
    case 'EXPOSE':
      return `EXPOSE ${step.ports.join(' ')}`;
    case 'WORKDIR':
      return `WORKDIR ${step.dir}`;
    case 'USER':
      return `USER ${step.user}`;
    default:
      return `${step.op} ${JSON.stringify(step.argv)}`;
  }
}

/** RUN: the command under gVisor, on an overlay of the layers so far; its writes are the layer. */
async function runStep(
  opts: BuildOptions,
  config: ImageConfig,
  lowers: string[],
  dir: string,
  argv: string[],
  line: number,
): Promise<BuiltLayer> {
  const [upper, work, merged] = ['upper', 'work', 'merged'].map((d) => join(dir, d)) as [string, string, string];
  for (const d of [upper, work, merged]) mkdirSync(d, { recursive: true, mode: 0o755 });
  // The topmost first, as overlayfs lists them.
  const lowerdir = [...lowers].reverse().join(':');
  await run('mount', [
    '-t',
    'overlay',
    'overlay',
    '-o',
    `lowerdir=${lowerdir},upperdir=${upper},workdir=${work}`,
    merged,
  ]);
  let opaque: string[];
  try {
    const proc = processConfig(config, { command: argv }, merged);
    const cwd = ensureMountPoint(merged, proc.cwd);
    for (const p of ['/proc', '/dev']) ensureMountPoint(merged, p);
    const bundle = join(dir, 'bundle');
    mkdirSync(bundle);
    writeFileSync(join(bundle, 'config.json'), JSON.stringify(stepSpec(merged, proc, cwd, opts.limits ?? STEP_LIMITS)));
    const code = await runsc(opts, bundle, `asb-build-${randomBytes(6).toString('hex')}`);
    if (code !== 0) throw new BuildError(`line ${line}: RUN ${argv.join(' ')}: exited with code ${code}`);
    // What the step left of the runtime's own: the mount points it may have made stay, as Docker's do.
    opaque = opaqueDirs(upper, merged, lowers);
  } finally {
    await run('umount', [merged]).catch(() => run('umount', ['-l', merged]));
  }
  return writeLayer(opts.store.blobs, upper, opaque);
}

function stepSpec(
  root: string,
  proc: ReturnType<typeof processConfig>,
  cwd: string,
  limits: { memoryBytes: number; pids: number },
): Record<string, unknown> {
  return {
    ociVersion: '1.0.2',
    process: {
      terminal: false,
      user: { uid: proc.uid, gid: proc.gid },
      args: proc.argv,
      env: proc.env.map(([k, v]) => `${k}=${v}`),
      cwd,
      capabilities: { bounding: [], effective: [], inheritable: [], permitted: [], ambient: [] },
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: 65536, soft: 65536 }],
      noNewPrivileges: true,
    },
    root: { path: root, readonly: false },
    hostname: 'build',
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc' },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'mode=755', 'size=65536k'] },
    ],
    linux: {
      namespaces: [{ type: 'pid' }, { type: 'network' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }],
      resources: { memory: { limit: limits.memoryBytes }, pids: { limit: limits.pids + 256 } },
    },
  };
}

/** `runsc run` in the foreground, its output passed on; resolves with its exit code. */
function runsc(opts: BuildOptions, bundle: string, id: string): Promise<number> {
  const state = join(opts.workDir, 'runsc');
  mkdirSync(state, { recursive: true });
  const args = ['--root', state, '--network=none', '--overlay2=none', 'run', '--bundle', bundle, id];
  return new Promise((resolve, reject) => {
    const child = spawn(opts.runsc, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', (d: Buffer) => opts.onOutput?.(d, 'stdout'));
    child.stderr.on('data', (d: Buffer) => opts.onOutput?.(d, 'stderr'));
    child.on('error', reject);
    child.on('close', (code) => resolve(code ?? 128));
  });
}

/** COPY: the sources, from inside the build context only, staged at their destination. */
async function copyStep(
  opts: BuildOptions,
  config: ImageConfig,
  dir: string,
  sources: string[],
  dest: string,
  line: number,
): Promise<BuiltLayer> {
  const stage = join(dir, 'upper');
  mkdirSync(stage, { recursive: true, mode: 0o755 });
  const target = posix.resolve(config.config?.WorkingDir || '/', dest);
  const intoDir = dest.endsWith('/') || sources.length > 1;
  for (const src of sources) {
    const path = join(opts.context, src);
    if (inside(opts.context, path) === undefined) {
      throw new BuildError(`line ${line}: COPY ${src}: outside the build context`);
    }
    const st = lstatSync(path, { throwIfNoEntry: false });
    if (!st) throw new BuildError(`line ${line}: COPY ${src}: no such file in the build context`);
    // A directory's contents go to the destination; a file goes to it, or into it.
    const to = st.isDirectory() ? target : intoDir ? posix.join(target, basename(path)) : target;
    const at = join(stage, to);
    mkdirSync(st.isDirectory() ? at : join(at, '..'), { recursive: true, mode: 0o755 });
    // -a keeps links as links: a link in the context is never followed on the host.
    await run('cp', ['-a', '--', st.isDirectory() ? `${path}/.` : path, at]);
  }
  // As Docker's COPY without --chown: everything owned by root.
  if (existsSync(stage)) await run('chown', ['-hR', '0:0', stage]);
  return writeLayer(opts.store.blobs, stage);
}

/** Docker's ENV expansion of $NAME and ${NAME} from the environment so far. */
function expand(value: string, env: string[]): string {
  const vars = new Map(env.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
  return value.replace(/\$(?:\{(\w+)\}|(\w+))/g, (_, a: string, b: string) => vars.get(a ?? b) ?? '');
}

function setEnv(env: string[], vars: Array<[string, string]>): string[] {
  const out = new Map(env.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
  for (const [k, v] of vars) out.set(k, v);
  return [...out].map(([k, v]) => `${k}=${v}`);
}
