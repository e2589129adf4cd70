// `asb image build`: an image from a Dockerfile, built on the engine's own parts rather than
// buildah's: each stage's base pulled into the image store (or `scratch`, or an earlier stage),
// each RUN run under gVisor (runsc, no network, Docker's default capabilities, limits) on a kernel
// overlay of the stage's layers so far, each COPY staged from the build context (nothing outside it), an earlier
// stage's filesystem or an image's (COPY --from), and each step's writes turned into a layer. The
// last stage is the image: stored under its tag, that templates can name at once.
//
// ARGs as Docker's: those before the first FROM are for FROM lines; a stage's ARG declares one for
// the steps after it (and for stages FROM it), its value the --build-arg's, else its default, else
// (ARG NAME alone) the global one's. RUN sees the ARGs as environment, which ENV overrides; they are
// not written into the image's config. `$NAME` is expanded from ARGs and ENV in COPY, ENV, WORKDIR,
// USER, LABEL and EXPOSE, from the global ARGs in FROM.
//
// A stage the last one does not need (neither its base nor a COPY --from, in turn) is skipped, as
// BuildKit does: it is reported, not built.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import {
  processConfig,
  ensureMountPoint,
  type Descriptor,
  type ImageConfig,
  type ImageStore,
  type LocalImage,
} from '@asb/oci';
import { runCommand as run } from '../spawner.ts';
import { unmountAll } from '../workspace.ts';
import {
  expandVars,
  parseDockerfile,
  stageIndex,
  withProtocol,
  type Dockerfile,
  type Instruction,
  type StageStep,
} from './dockerfile.ts';
import { inside, opaqueDirs, writeLayer, type BuiltLayer } from './layers.ts';
import { resolveInRoot } from './root-path.ts';

export interface BuildOptions {
  store: ImageStore;
  runsc: string;
  /** Where build steps keep their state and scratch directories. */
  workDir: string;
  context: string;
  dockerfile: string;
  tag: string;
  /** `--build-arg NAME=VALUE`: values for the Dockerfile's ARGs, over their defaults. */
  buildArgs?: Record<string, string>;
  /** Each step as it starts, and what RUN steps print. */
  onStep?: (text: string) => void;
  onOutput?: (chunk: Buffer, stream: 'stdout' | 'stderr') => void;
  limits?: { memoryBytes: number; pids: number };
}

export class BuildError extends Error {
  override name = 'BuildError';
}

const STEP_LIMITS = { memoryBytes: 2 * 1024 ** 3, pids: 1024 };

/**
 * A RUN's capabilities, Docker's defaults (moby's oci/caps): what a Dockerfile's root steps
 * expect (`chown`, `useradd --create-home`, setuid files), held inside gVisor only. A step as a
 * non-root USER loses them at exec, as in Docker (none are ambient).
 */
const STEP_CAPABILITIES = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_FSETID',
  'CAP_FOWNER',
  'CAP_MKNOD',
  'CAP_NET_RAW',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETFCAP',
  'CAP_SETPCAP',
  'CAP_NET_BIND_SERVICE',
  'CAP_SYS_CHROOT',
  'CAP_KILL',
  'CAP_AUDIT_WRITE',
];

type BuildConfig = ImageConfig & {
  config: NonNullable<ImageConfig['config']>;
  rootfs: NonNullable<ImageConfig['rootfs']>;
};

/** A stage as built so far. */
interface StageState {
  index: number;
  config: BuildConfig;
  layers: Descriptor[];
  /** The layers as directories, the lowest first: the base's root, then each step's. */
  lowers: string[];
  /** The ARGs declared (here or in the stage it is FROM) that have a value. */
  args: Map<string, string>;
  /** A CMD was given in this stage (an ENTRYPOINT then keeps it). */
  cmdSet: boolean;
}

/** What the steps of one build share. */
interface Build {
  opts: BuildOptions;
  file: Dockerfile;
  buildArgs: Map<string, string>;
  /** The global ARGs (before the first FROM): their values, undefined for one with none. */
  globals: Map<string, string | undefined>;
  /** Each stage once built, by index. */
  stages: Array<StageState | undefined>;
  /** A directory per step, and the mounts made for COPY --from, under it. */
  scratch: string;
  /** A built stage's filesystem as one directory, by index (for COPY --from). */
  roots: Map<number, string>;
  step: number;
  total: number;
}

/** The image a stage starts from. */
type Base = { stage: number } | { scratch: true } | { image: string };

export async function buildImage(opts: BuildOptions): Promise<LocalImage> {
  const file = parseDockerfile(readFileSync(opts.dockerfile, 'utf8'));
  mkdirSync(opts.workDir, { recursive: true, mode: 0o700 });
  const b: Build = {
    opts,
    file,
    buildArgs: new Map(Object.entries(opts.buildArgs ?? {})),
    globals: new Map(),
    stages: [],
    scratch: mkdtempSync(join(opts.workDir, 'build-')),
    roots: new Map(),
    step: 0,
    total: file.args.length + file.stages.reduce((n, s) => n + 1 + s.steps.length, 0),
  };
  try {
    warnUnusedBuildArgs(b);
    declareGlobalArgs(b);
    const needed = neededStages(b);
    for (const [index, stage] of file.stages.entries()) {
      if (needed.has(index)) {
        b.stages[index] = await buildStage(b, index);
      } else {
        b.step += 1 + stage.steps.length;
        b.opts.onStep?.(`skipping stage ${stageLabel(b, index)}: the last stage does not use it`);
      }
    }
    const last = b.stages.at(-1)!;
    last.config.created = new Date().toISOString();
    return await opts.store.add(opts.tag, last.config, last.layers);
  } finally {
    // The stages' roots mounted for COPY --from, and what runsc leaves mounted in its state
    // directory (the network namespace it pins for gofers): else the home cannot be removed.
    await unmountAll(b.scratch);
    await unmountAll(join(opts.workDir, 'runsc'));
    rmSync(b.scratch, { recursive: true, force: true });
  }
}

/** As Docker warns: a --build-arg that no ARG declares is not used. */
function warnUnusedBuildArgs(b: Build): void {
  const declared = new Set(
    [...b.file.args, ...b.file.stages.flatMap((s) => s.steps)].flatMap((s) =>
      s.op === 'ARG' ? s.vars.map(([name]) => name) : [],
    ),
  );
  const unused = [...b.buildArgs.keys()].filter((name) => !declared.has(name));
  if (unused.length) {
    b.opts.onStep?.(`warning: build-arg(s) ${unused.join(', ')} not used: no ARG in the Dockerfile declares them`);
  }
}

/** The ARGs before the first FROM, each default expanded with those before it. */
function declareGlobalArgs(b: Build): void {
  for (const arg of b.file.args) {
    announce(b, describe(arg));
    for (const [name, value] of arg.vars) b.globals.set(name, argValue(b, name, value, definedGlobals(b)));
  }
}

function announce(b: Build, text: string): void {
  b.step++;
  b.opts.onStep?.(`STEP ${b.step}/${b.total}: ${text}`);
}

/** An ARG's value: the build arg's, else its default (expanded), else the global ARG's of its name. */
function argValue(
  b: Build,
  name: string,
  fallback: string | undefined,
  vars: ReadonlyMap<string, string>,
): string | undefined {
  return b.buildArgs.get(name) ?? (fallback !== undefined ? expandVars(fallback, vars) : b.globals.get(name));
}

function definedGlobals(b: Build): Map<string, string> {
  return new Map([...b.globals].filter((kv): kv is [string, string] => kv[1] !== undefined));
}

/** The stages the last one needs, it included: its base, what it copies from, and theirs in turn. */
function neededStages(b: Build): Set<number> {
  const needed = new Set<number>();
  const visit = (index: number) => {
    if (needed.has(index)) return;
    needed.add(index);
    const base = baseOf(b, index);
    if ('stage' in base) visit(base.stage);
    for (const step of b.file.stages[index]!.steps) {
      const from =
        step.op === 'COPY' && step.from !== undefined ? stageIndex(b.file.stages, step.from, index) : undefined;
      if (from !== undefined) visit(from);
    }
  };
  visit(b.file.stages.length - 1);
  return needed;
}

/** What a stage's FROM names, its global ARGs expanded: an earlier stage, scratch, or an image. */
function baseOf(b: Build, index: number): Base {
  const image = expandVars(b.file.stages[index]!.from.image, definedGlobals(b));
  const stage = stageIndex(b.file.stages, image, index, { byIndex: false });
  if (stage !== undefined) return { stage };
  if (image === 'scratch') return { scratch: true };
  if (!image) throw new BuildError(`line ${b.file.stages[index]!.from.line}: FROM: the image is empty`);
  return { image };
}

function stageLabel(b: Build, index: number): string {
  const { from } = b.file.stages[index]!;
  return `${index}${from.name ? ` (${from.name})` : ''}, line ${from.line}`;
}

async function buildStage(b: Build, index: number): Promise<StageState> {
  const stage = b.file.stages[index]!;
  const base = baseOf(b, index);
  announce(b, describe({ ...stage.from, image: 'image' in base ? base.image : stage.from.image }));
  const state = await startStage(b, index, base);
  for (const step of stage.steps) {
    announce(b, describe(step));
    const dir = join(b.scratch, String(b.step));
    const layer = await applyStep(b, state, step, dir);
    if (layer) {
      state.layers.push(layer.descriptor);
      state.config.rootfs.diff_ids.push(layer.diffId);
      state.lowers.push(join(dir, 'upper'));
    }
    state.config.history = [
      ...(state.config.history ?? []),
      { created: new Date().toISOString(), created_by: describe(step), ...(layer ? {} : { empty_layer: true }) },
    ];
  }
  return state;
}

/** A stage's starting point: a copy of the earlier stage it is FROM, an empty image, or an image pulled. */
async function startStage(b: Build, index: number, base: Base): Promise<StageState> {
  if ('stage' in base) {
    const from = b.stages[base.stage]!;
    return {
      index,
      config: structuredClone(from.config),
      layers: [...from.layers],
      lowers: [...from.lowers],
      args: new Map(from.args),
      cmdSet: false,
    };
  }
  if ('scratch' in base) {
    const empty = join(b.scratch, 'empty');
    mkdirSync(empty, { recursive: true, mode: 0o755 });
    const config: BuildConfig = {
      architecture: 'amd64',
      os: 'linux',
      config: {},
      rootfs: { type: 'layers', diff_ids: [] },
    };
    return { index, config, layers: [], lowers: [empty], args: new Map(), cmdSet: false };
  }
  const image = await b.opts.store.pull(base.image, { policy: 'IfNotPresent' });
  const config: BuildConfig = {
    ...structuredClone(image.config),
    config: structuredClone(image.config.config ?? {}),
    rootfs: { type: 'layers', diff_ids: [...(image.config.rootfs?.diff_ids ?? [])] },
  };
  const lowers = [await b.opts.store.rootfs(image)];
  return { index, config, layers: [...image.manifest.layers], lowers, args: new Map(), cmdSet: false };
}

/** One step of a stage: its config changed, or (RUN, COPY) its layer written from `dir`/upper. */
async function applyStep(b: Build, state: StageState, step: StageStep, dir: string): Promise<BuiltLayer | undefined> {
  const c = state.config.config;
  const expand = (text: string) => expandVars(text, varsOf(state));
  switch (step.op) {
    case 'ARG':
      declareArgs(b, state, step);
      return undefined;
    case 'ENV':
      // Each value expanded with the variables as they were before this line, as Docker does.
      c.Env = setEnv(
        c.Env ?? [],
        step.vars.map(([k, v]) => [k, expand(v)]),
      );
      return undefined;
    case 'LABEL':
      c.Labels = { ...c.Labels, ...Object.fromEntries(step.labels.map(([k, v]) => [expand(k), expand(v)])) };
      return undefined;
    case 'EXPOSE':
      c.ExposedPorts = {
        ...c.ExposedPorts,
        ...Object.fromEntries(step.ports.map((p) => [withProtocol(expand(p)), {}])),
      };
      return undefined;
    case 'WORKDIR':
      c.WorkingDir = posix.resolve(c.WorkingDir || '/', expand(step.dir));
      return undefined;
    case 'USER':
      c.User = expand(step.user);
      return undefined;
    case 'ENTRYPOINT':
      c.Entrypoint = step.argv;
      // As Docker: a new ENTRYPOINT drops a Cmd but one this stage gave.
      if (!state.cmdSet) c.Cmd = null;
      return undefined;
    case 'CMD':
      c.Cmd = step.argv;
      state.cmdSet = true;
      return undefined;
    case 'RUN':
      return runStep(b.opts, state, dir, step.argv, step.line);
    case 'COPY':
      return copyStep(b, state, dir, step);
  }
}

/** A stage's ARG: each name with a value (one without stays unset, or keeps the value it had). */
function declareArgs(b: Build, state: StageState, step: Extract<StageStep, { op: 'ARG' }>): void {
  for (const [name, fallback] of step.vars) {
    const value = argValue(b, name, fallback, varsOf(state));
    if (value !== undefined) state.args.set(name, value);
  }
}

/** What `$NAME` expands to in a stage: its ARGs, and its ENV over them. */
function varsOf(state: StageState): Map<string, string> {
  return new Map([...state.args, ...envMap(state.config.config.Env ?? [])]);
}

/** The ARGs a RUN sees as environment: those ENV does not set. */
function argEnv(state: StageState): Array<{ name: string; value: string }> {
  const env = envMap(state.config.config.Env ?? []);
  return [...state.args].filter(([name]) => !env.has(name)).map(([name, value]) => ({ name, value }));
}

function describe(step: Instruction): string {
  const pairs = (vars: Array<[string, string | undefined]>) =>
    vars.map(([k, v]) => (v === undefined ? k : `${k}=${v}`)).join(' ');
  switch (step.op) {
    case 'RUN':
      return `RUN ${step.shell ? step.argv[2] : JSON.stringify(step.argv)}`;
    case 'COPY': {
      const flags = [step.from && `--from=${step.from}`, step.chown && `--chown=${step.chown}`].filter(Boolean);
      return ['COPY', ...flags, ...step.sources, step.dest].join(' ');
    }
    case 'FROM':
      return `FROM ${step.image}${step.name ? ` AS ${step.name}` : ''}`;
    case 'ARG':
      return `ARG ${pairs(step.vars)}`;
    case 'ENV':
      return `ENV ${pairs(step.vars)}`;
    case 'LABEL':
      return `LABEL ${pairs(step.labels)}`;
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
  state: StageState,
  dir: string,
  argv: string[],
  line: number,
): Promise<BuiltLayer> {
  const [upper, work, merged] = ['upper', 'work', 'merged'].map((d) => join(dir, d)) as [string, string, string];
  for (const d of [upper, work, merged]) mkdirSync(d, { recursive: true, mode: 0o755 });
  const { lowers } = state;
  await run('mount', [
    '-t',
    'overlay',
    'overlay',
    '-o',
    `lowerdir=${lowerdir(lowers)},upperdir=${upper},workdir=${work}`,
    merged,
  ]);
  let opaque: string[];
  try {
    const proc = processConfig(state.config, { command: argv, env: argEnv(state) }, merged);
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
    await unmount(merged);
  }
  return writeLayer(opts.store.blobs, upper, opaque);
}

/** overlayfs's lowerdir option: the topmost first. */
function lowerdir(lowers: string[]): string {
  return [...lowers].reverse().join(':');
}

async function unmount(path: string): Promise<void> {
  await run('umount', [path]).catch(() => run('umount', ['-l', path]));
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
      capabilities: {
        bounding: STEP_CAPABILITIES,
        effective: STEP_CAPABILITIES,
        permitted: STEP_CAPABILITIES,
        inheritable: [],
        ambient: [],
      },
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

/**
 * COPY: the sources, looked up in their root (the build context, an earlier stage's filesystem,
 * an image's) with every symlink resolved inside that root, staged at their destination.
 */
async function copyStep(
  b: Build,
  state: StageState,
  dir: string,
  step: Extract<Instruction, { op: 'COPY' }>,
): Promise<BuiltLayer> {
  const vars = varsOf(state);
  const { line } = step;
  const source = step.from === undefined ? undefined : await copySource(b, state.index, step.from);
  const owner = step.chown === undefined ? '0:0' : numericOwner(expandVars(step.chown, vars), line);
  const dest = expandVars(step.dest, vars);
  const stage = join(dir, 'upper');
  mkdirSync(stage, { recursive: true, mode: 0o755 });
  const target = posix.resolve(state.config.config.WorkingDir || '/', dest);
  const intoDir = dest.endsWith('/') || step.sources.length > 1;
  const copied: string[] = [];
  for (const src of step.sources.map((s) => expandVars(s, vars))) {
    const path = source ? resolveInRoot(source.root, src) : contextPath(b.opts.context, src, line);
    const st = path === undefined ? undefined : lstatSync(path, { throwIfNoEntry: false });
    if (!path || !st)
      throw new BuildError(`line ${line}: COPY ${src}: no such file in ${source?.what ?? 'the build context'}`);
    // A directory's contents go to the destination; a file goes to it, or into it.
    const to = st.isDirectory() || !intoDir ? target : posix.join(target, posix.basename(posix.resolve('/', src)));
    const at = join(stage, to);
    mkdirSync(st.isDirectory() ? at : join(at, '..'), { recursive: true, mode: 0o755 });
    // -a keeps the links below the source as links: none is followed on the host.
    await run('cp', ['-a', '--', st.isDirectory() ? `${path}/.` : path, at]);
    copied.push(at);
  }
  // As Docker's COPY: everything owned by root, or what was copied by the --chown owner (the
  // directories made to hold it stay root's).
  await run('chown', ['-hR', '0:0', stage]);
  if (owner !== '0:0') await run('chown', ['-hR', owner, ...copied]);
  return writeLayer(b.opts.store.blobs, stage);
}

/** A source in the build context: never outside it, by `..` or by a symlink. */
function contextPath(context: string, src: string, line: number): string | undefined {
  if (inside(context, join(context, src)) === undefined) {
    throw new BuildError(`line ${line}: COPY ${src}: outside the build context`);
  }
  return resolveInRoot(context, src);
}

/** The root a COPY --from reads: an earlier stage's filesystem, or an image's (pulled if it is not here). */
async function copySource(b: Build, index: number, from: string): Promise<{ root: string; what: string }> {
  const stage = stageIndex(b.file.stages, from, index);
  if (stage !== undefined) return { root: await stageRoot(b, stage), what: `stage ${stageLabel(b, stage)}` };
  const image = await b.opts.store.pull(from, { policy: 'IfNotPresent' });
  return { root: await b.opts.store.rootfs(image), what: `image ${image.reference}` };
}

/** A built stage's filesystem as one directory: its only layer, or a read-only overlay of them all. */
async function stageRoot(b: Build, index: number): Promise<string> {
  const known = b.roots.get(index);
  if (known) return known;
  const { lowers } = b.stages[index]!;
  let root = lowers[0]!;
  if (lowers.length > 1) {
    root = join(b.scratch, `stage-${index}`);
    mkdirSync(root);
    await run('mount', ['-t', 'overlay', 'overlay', '-o', `ro,lowerdir=${lowerdir(lowers)}`, root]);
  }
  b.roots.set(index, root);
  return root;
}

/** `--chown=UID[:GID]` as chown takes it (the group the uid when not given); names are not looked up. */
function numericOwner(text: string, line: number): string {
  const m = /^(\d+)(?::(\d+))?$/.exec(text);
  if (!m) throw new BuildError(`line ${line}: COPY --chown=${text}: only a numeric UID[:GID] is supported`);
  return `${m[1]}:${m[2] ?? m[1]}`;
}

function envMap(env: string[]): Map<string, string> {
  return new Map(env.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
}

function setEnv(env: string[], vars: Array<[string, string]>): string[] {
  const out = envMap(env);
  for (const [k, v] of vars) out.set(k, v);
  return [...out].map(([k, v]) => `${k}=${v}`);
}
