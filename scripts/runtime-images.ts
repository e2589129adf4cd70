// The seeds' runtime images, made on this machine and served under the seeds' names. The seeds name
// `registry.k8s.io/agent-sandbox/python-runtime-sandbox:v0.1.0` and
// `ghcr.io/gke-demos/go-runtime-sandbox:latest`, which no registry here can serve. So:
//   1. base images stand in for the public ones the Dockerfiles start FROM (a Debian bookworm made
//      by debootstrap from Debian's packages; node and Go copied from this machine into it),
//      named for what they are (localhost/asb-base/...), given to the Dockerfiles as build args;
//   2. images/runtime-python and images/runtime-go are built from their own Dockerfiles by
//      `asb image build`'s builder (RUN steps under gVisor);
//   3. a registry on loopback (Debian's docker-registry) serves them under the seeds' repository
//      paths, and a registries.conf makes it the mirror of those two repositories, so an engine
//      pulls the seeds' names as it would from the real registries.
// `node --import tsx scripts/runtime-images.ts [--port N] [--conf PATH]` does all three, writes the
// registries.conf (default $ASB_HOME/registries.conf) and serves until interrupted; the quickstart
// and the tests call serveRuntimeImages() themselves.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import http from 'node:http';
import { homedir, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildImage, defaultHome, importRootfs, loadConfig } from '@asb/engine';
import { ImageStore, RegistryClient, type LocalImage } from '@asb/oci';
import { debianRootfs } from './lib/debian-rootfs.ts';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Our runtime images, the seeds' names they are served under, and their Dockerfiles. */
export const RUNTIME_IMAGES = [
  {
    tag: 'agent-sandbox-ts/runtime-python:0.1.0',
    dockerfile: 'images/runtime-python/Dockerfile',
    seedName: 'registry.k8s.io/agent-sandbox/python-runtime-sandbox:v0.1.0',
  },
  {
    tag: 'agent-sandbox-ts/runtime-go:0.1.0',
    dockerfile: 'images/runtime-go/Dockerfile',
    seedName: 'ghcr.io/gke-demos/go-runtime-sandbox:latest',
  },
] as const;

/** The cluster's own images (deploy/install, deploy/router), served under the names deploy/ gives
 *  them (Docker Hub's, as an unqualified name is): a real node pulls them through the mirror. */
export const CLUSTER_IMAGES = [
  {
    tag: 'agent-sandbox-ts/controller:0.1.0',
    dockerfile: 'images/controller/Dockerfile',
    seedName: 'docker.io/agent-sandbox-ts/controller:0.1.0',
  },
  {
    tag: 'agent-sandbox-ts/router:0.1.0',
    dockerfile: 'images/router/Dockerfile',
    seedName: 'docker.io/agent-sandbox-ts/router:0.1.0',
  },
] as const;

/** Images only upstream's e2e tests run (test/k8s/upstream-e2e-real-node.test.ts): sandboxd alone,
 *  as v1.0.1's TestRunSandboxdSandbox runs it from `${IMAGE_PREFIX}sandboxd:${IMAGE_TAG}`. */
export const UPSTREAM_E2E_IMAGES = [
  {
    tag: 'agent-sandbox-ts/sandboxd:0.1.0',
    dockerfile: 'images/sandboxd/Dockerfile',
    seedName: 'registry.k8s.io/agent-sandbox/sandboxd:v0.1.0',
  },
] as const;

export type ImageSpec = { tag: string; dockerfile: string; seedName: string };

export interface BuildContext {
  /** The builder's own image store (kept between runs: base images are made once). */
  store: ImageStore;
  runsc: string;
  workDir: string;
  log: (line: string) => void;
}

export function builderContext(log: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): BuildContext {
  const home = join(homedir(), '.cache', 'asb-runtime-images');
  mkdirSync(home, { recursive: true, mode: 0o700 });
  // Loopback registries only: plain HTTP is allowed for them, as Docker allows it.
  const store = new ImageStore(join(home, 'images'), new RegistryClient({}), []);
  return { store, runsc: loadConfig().runscPath, workDir: join(home, 'build'), log };
}

/**
 * The base images the Dockerfiles name in their ARGs, made here; returns the build args that
 * point the Dockerfiles at them. Each is made once (its tag says the versions it holds).
 */
export async function makeBaseImages(ctx: BuildContext): Promise<Record<string, string>> {
  const python = await imported(ctx, 'localhost/asb-base/debian-python3:bookworm', ['python3']);
  const cc = await imported(ctx, 'localhost/asb-base/debian-gcc:bookworm', ['gcc', 'libc6-dev']);
  // node:*-bookworm-slim keeps node at /usr/local/bin/node; ours is this machine's node.
  const node = await derived(ctx, `localhost/asb-base/node:${process.version.slice(1)}-bookworm`, python, {
    files: { node: realpathSync(process.execPath) },
    steps: ['COPY node /usr/local/bin/node'],
  });
  // golang:*-bookworm keeps Go at /usr/local/go with GOPATH /go; ours is this machine's Go.
  const goroot = execFileSync('go', ['env', 'GOROOT'], { encoding: 'utf8' }).trim();
  const goVersion = execFileSync('go', ['env', 'GOVERSION'], { encoding: 'utf8' }).trim();
  const golang = await derived(ctx, `localhost/asb-base/golang:${goVersion.replace(/^go/, '')}-bookworm`, python, {
    context: dirname(goroot),
    steps: [
      `COPY ${goroot.split('/').pop()} /usr/local/go`,
      `ENV GOLANG_VERSION=${goVersion.replace(/^go/, '')} GOTOOLCHAIN=local GOPATH=/go PATH=/go/bin:/usr/local/go/bin:${PATH}`,
      'WORKDIR /go',
    ],
  });
  return { PYTHON_IMAGE: python, CC_IMAGE: cc, NODE_IMAGE: node, GO_IMAGE: golang };
}

async function imported(ctx: BuildContext, tag: string, include: string[]): Promise<string> {
  if (ctx.store.get(tag)) return tag;
  const rootfs = await debianRootfs(include);
  if (typeof rootfs !== 'string') throw new Error(`cannot make ${tag}: ${rootfs.skip}`);
  ctx.log(`==> ${tag}: Debian bookworm (debootstrap --variant=minbase --include=${include.join(',')})`);
  await importRootfs(ctx.store, rootfs, tag, { Env: [`PATH=${PATH}`], Cmd: ['bash'] }, `debootstrap ${include}`);
  return tag;
}

async function derived(
  ctx: BuildContext,
  tag: string,
  from: string,
  opts: { files?: Record<string, string>; context?: string; steps: string[] },
): Promise<string> {
  if (ctx.store.get(tag)) return tag;
  ctx.log(`==> ${tag}`);
  const dir = mkdtempSync(join(tmpdir(), 'asb-base-'));
  try {
    for (const [name, src] of Object.entries(opts.files ?? {})) copyFileSync(src, join(dir, name));
    writeFileSync(join(dir, 'Dockerfile'), [`FROM ${from}`, ...opts.steps].join('\n') + '\n');
    await buildImage({
      store: ctx.store,
      runsc: ctx.runsc,
      workDir: ctx.workDir,
      context: opts.context ?? dir,
      dockerfile: join(dir, 'Dockerfile'),
      tag,
      onStep: (s) => ctx.log(`    ${s}`),
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return tag;
}

/** images/runtime-python and images/runtime-go (or `images`) from their Dockerfiles (dist/ must
 *  be built). */
export async function buildRuntimeImages(
  ctx: BuildContext,
  images: readonly ImageSpec[] = RUNTIME_IMAGES,
): Promise<LocalImage[]> {
  for (const f of ['agent.cjs', 'sandboxd.cjs', 'controller.mjs', 'router.mjs']) {
    if (!existsSync(join(repoRoot, 'dist', f))) throw new Error(`dist/${f} is missing: npm run build first`);
  }
  const buildArgs = await makeBaseImages(ctx);
  // debian:bookworm-slim with procps (images/sandboxd), made only when a Dockerfile asks for it.
  if (images.some((i) => /^ARG DEBIAN_IMAGE[=\s]/m.test(readFileSync(join(repoRoot, i.dockerfile), 'utf8'))))
    buildArgs.DEBIAN_IMAGE = await imported(ctx, 'localhost/asb-base/debian-procps:bookworm', [
      'procps',
      'ca-certificates',
    ]);
  const out: LocalImage[] = [];
  for (const image of images) {
    ctx.log(`==> ${image.tag} from ${image.dockerfile}`);
    const dockerfile = readFileSync(join(repoRoot, image.dockerfile), 'utf8');
    const declared = Object.entries(buildArgs).filter(([name]) =>
      new RegExp(`^ARG ${name}[=\\s]`, 'm').test(dockerfile),
    );
    out.push(
      await buildImage({
        store: ctx.store,
        runsc: ctx.runsc,
        workDir: ctx.workDir,
        context: repoRoot,
        dockerfile: join(repoRoot, image.dockerfile),
        tag: image.tag,
        buildArgs: Object.fromEntries(declared),
        onStep: (s) => ctx.log(`    ${s}`),
      }),
    );
  }
  return out;
}

export interface ServedImages {
  /** host:port of the loopback registry. */
  registry: string;
  /** A registries.conf that makes it the mirror of the seeds' repositories. */
  registriesConf: string;
  /** The same as mirrors by registry host (`registry.k8s.io` → the loopback registry), the way
   *  containerd's hosts.toml files name them. */
  mirrors: Array<{ host: string; mirror: string }>;
  stop(): Promise<void>;
}

/** Builds the runtime images (and `images`, when given), starts a loopback registry, pushes them
 *  there under the seeds' names. */
export async function serveRuntimeImages(
  opts: { port?: number; ctx?: BuildContext; images?: readonly ImageSpec[] } = {},
): Promise<ServedImages> {
  const ctx = opts.ctx ?? builderContext();
  const specs = opts.images ?? RUNTIME_IMAGES;
  const images = await buildRuntimeImages(ctx, specs);
  const registry = await startRegistry(opts.port ?? 0);
  try {
    const conf: string[] = [];
    const hosts = new Set<string>();
    for (const [i, spec] of specs.entries()) {
      const seed = spec.seedName;
      const repository = seed.slice(seed.indexOf('/') + 1, seed.lastIndexOf(':'));
      const target = `${registry.host}/${repository}:${seed.slice(seed.lastIndexOf(':') + 1)}`;
      const image = images[i]!;
      await ctx.store.add(target, image.config, image.manifest.layers);
      ctx.log(`==> pushing ${image.reference} as ${target}`);
      await ctx.store.push(target);
      ctx.store.remove(target);
      const prefix = seed.slice(0, seed.lastIndexOf('/'));
      hosts.add(seed.slice(0, seed.indexOf('/')));
      conf.push(
        `[[registry]]\nprefix = "${prefix}"\nlocation = "${prefix}"\n[[registry.mirror]]\n` +
          `location = "${registry.host}/${repository.slice(0, repository.lastIndexOf('/'))}"\n`,
      );
    }
    return {
      registry: registry.host,
      registriesConf: `# The seeds' runtime images, built from images/ and served on loopback (scripts/runtime-images.ts).\n${conf.join('\n')}`,
      mirrors: [...hosts].map((host) => ({ host, mirror: registry.host })),
      stop: registry.stop,
    };
  } catch (err) {
    await registry.stop();
    throw err;
  }
}

/** Debian's docker-registry (the CNCF distribution registry) on 127.0.0.1, its data in a temp dir. */
async function startRegistry(port: number): Promise<{ host: string; stop(): Promise<void> }> {
  const bin = ['/usr/bin/docker-registry'].find((p) => existsSync(p));
  if (!bin) throw new Error('no docker-registry (apt-get install docker-registry)');
  const dir = mkdtempSync(join(tmpdir(), 'asb-runtime-registry-'));
  if (port === 0) port = await freePort();
  writeFileSync(
    join(dir, 'config.yml'),
    `version: 0.1\nlog: { level: error, accesslog: { disabled: true } }\n` +
      `storage: { filesystem: { rootdirectory: ${join(dir, 'data')} } }\n` +
      `http: { addr: "127.0.0.1:${port}", secret: asb-local }\n`,
  );
  const child: ChildProcess = spawn(bin, ['serve', join(dir, 'config.yml')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const host = `127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode === null) {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
    rmSync(dir, { recursive: true, force: true });
  };
  for (let i = 0; ; i++) {
    const up = await new Promise<boolean>((done) => {
      http
        .get(`http://${host}/v2/`, (res) => {
          res.resume();
          done(res.statusCode === 200);
        })
        .on('error', () => done(false));
    });
    if (up) return { host, stop };
    if (i > 200 || child.exitCode !== null) {
      await stop();
      throw new Error(`docker-registry did not start on ${host}: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const srv = http.createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => done(port));
    });
    srv.on('error', fail);
  });
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const flag = (name: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const served = await serveRuntimeImages({ port: Number(flag('--port') ?? 0) });
  const conf = flag('--conf') ?? join(defaultHome(), 'registries.conf');
  mkdirSync(dirname(conf), { recursive: true });
  writeFileSync(conf, served.registriesConf);
  process.stderr.write(
    `==> serving on ${served.registry}; ${conf} makes it the mirror of:\n` +
      RUNTIME_IMAGES.map((i) => `    ${i.seedName}\n`).join('') +
      '    (an engine reads registries.conf when it starts; Ctrl-C stops the registry)\n',
  );
  const stop = () => void served.stop().then(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((err: Error) => {
    process.stderr.write(`runtime-images: ${err.message}\n`);
    process.exit(1);
  });
}
