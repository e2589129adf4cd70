// asb image pull | build | ls | rm | prune: the images of this machine's engine home ($ASB_HOME/images).
import { defaultPullPolicy, localImageStore, type LocalImage, type PullPolicy, type PullProgress } from '@asb/oci';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { buildImage, defaultHome, loadConfig } from '@asb/engine';
import type { Ctx } from '../context.ts';
import { age, formatTable, print } from '../output.ts';

const mb = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MB`;
const short = (digest: string) => digest.slice(7, 19);
const imageSize = (i: LocalImage) => i.manifest.layers.reduce((a, l) => a + l.size, i.manifest.config.size);

const store = () => localImageStore(defaultHome());

/** What pull, build and push print: reference@digest (or the object, with -o json|yaml). */
function printImage(ctx: Ctx, image: LocalImage): void {
  print(
    ctx.format === 'table' ? 'name' : ctx.format,
    { reference: image.reference, digest: image.digest, size: imageSize(image) },
    () => '',
    () => `${image.reference}@${image.digest}`,
  );
}

/** Per-layer progress on stderr: redrawn in place on a terminal, one line per layer otherwise. */
function layerProgress(quiet: boolean): (p: PullProgress) => void {
  if (quiet) return () => {};
  const tty = process.stderr.isTTY;
  const layers: Array<{ digest: string; size: number; received: number; state: string }> = [];
  let drawn = 0;
  let last = 0;
  const draw = (force: boolean) => {
    if (!tty || (!force && Date.now() - last < 100)) return;
    last = Date.now();
    if (drawn) process.stderr.write(`\x1b[${drawn}A`);
    for (const l of layers) {
      const detail = l.state === 'pulling' ? `${mb(l.received)} / ${mb(l.size)}` : l.state;
      process.stderr.write(`\x1b[2K${short(l.digest)}: ${detail}\n`);
    }
    drawn = layers.length;
  };
  return (p) => {
    if (p.type === 'resolved') {
      process.stderr.write(`resolved ${p.digest}, ${p.layers.length} layer(s)\n`);
      for (const l of p.layers) layers.push({ digest: l.digest, size: l.size, received: 0, state: 'waiting' });
      draw(true);
      return;
    }
    const l = layers.find((x) => x.digest === p.digest);
    if (!l) return;
    if (p.type === 'layer') {
      l.received = p.received;
      l.state = 'pulling';
      draw(false);
    } else {
      l.state = p.cached ? 'already here' : `pulled (${mb(p.size)})`;
      if (tty) draw(true);
      else process.stderr.write(`${short(p.digest)}: ${l.state}\n`);
    }
  };
}

export async function imagePullCommand(ctx: Ctx, reference: string, flags: { policy?: string }): Promise<number> {
  const policy = (flags.policy ?? 'Always') as PullPolicy;
  if (!['Always', 'IfNotPresent', 'Never'].includes(policy)) {
    process.stderr.write(`asb: --policy must be Always, IfNotPresent or Never (got "${policy}")\n`);
    return 2;
  }
  const image = await store().pull(reference, { policy, onProgress: layerProgress(ctx.quiet) });
  printImage(ctx, image);
  return 0;
}

export function imageLsCommand(ctx: Ctx): number {
  const images = store().list();
  const items = images.map((i) => ({
    reference: i.reference,
    digest: i.digest,
    size: imageSize(i),
    pulledAt: i.pulledAt,
    defaultPullPolicy: defaultPullPolicy(i.reference),
  }));
  print(
    ctx.format,
    { items },
    () =>
      formatTable(
        ['reference', 'digest', 'size', 'pulled'],
        images.map((i) => [i.reference, short(i.digest), mb(imageSize(i)), age(i.pulledAt)]),
      ),
    () => images.map((i) => i.reference).join('\n'),
  );
  return 0;
}

export function imageRmCommand(ctx: Ctx, references: string[]): number {
  const s = store();
  let missing = 0;
  for (const r of references) {
    if (s.remove(r)) {
      if (!ctx.quiet) process.stdout.write(`image/${r} removed\n`);
    } else {
      process.stderr.write(`asb: image "${r}" is not on this machine\n`);
      missing++;
    }
  }
  return missing ? 4 : 0;
}

export function imagePruneCommand(ctx: Ctx): number {
  const freed = store().prune();
  print(
    ctx.format === 'table' ? 'name' : ctx.format,
    { freedBytes: freed },
    () => '',
    () => `${mb(freed)} freed`,
  );
  return 0;
}

/**
 * Builds an image from a Dockerfile into this machine's store (RUN steps under gVisor, as root:
 * the engine's own rights), prints reference@digest. Steps on stderr, RUN output as it comes.
 */
export async function imageBuildCommand(
  ctx: Ctx,
  contextDir: string,
  flags: { tag: string; file?: string; push?: boolean; buildArg?: string[] },
): Promise<number> {
  const buildArgs = parseBuildArgs(flags.buildArg);
  const context = resolve(contextDir);
  const dockerfile = resolve(flags.file ?? join(context, 'Dockerfile'));
  if (!existsSync(dockerfile)) {
    process.stderr.write(`asb: no Dockerfile at ${dockerfile} (give one with -f)\n`);
    return 2;
  }
  const home = defaultHome();
  const image = await buildImage({
    store: store(),
    runsc: loadConfig().runscPath,
    workDir: join(home, 'build'),
    context,
    dockerfile,
    tag: flags.tag,
    buildArgs,
    onStep: (text) => ctx.quiet || process.stderr.write(`${text}\n`),
    // What the steps print goes to stderr, both streams: stdout is for the reference built.
    onOutput: (chunk) => process.stderr.write(chunk),
  });
  if (flags.push) {
    if (!ctx.quiet) process.stderr.write(`pushing ${image.reference}\n`);
    await store().push(image.reference);
  }
  printImage(ctx, image);
  return 0;
}

/** `--build-arg NAME=VALUE`, or `NAME` alone for the value of $NAME here (none when it is unset), as Docker's. */
export function parseBuildArgs(given: string[] = []): Record<string, string> {
  const args = new Map<string, string>();
  for (const arg of given) {
    const eq = arg.indexOf('=');
    const name = eq < 0 ? arg : arg.slice(0, eq);
    if (!/^[^\s=]+$/.test(name)) throw new Error(`--build-arg ${arg}: expected NAME=VALUE`);
    const value = eq < 0 ? process.env[name] : arg.slice(eq + 1);
    if (value !== undefined) args.set(name, value);
  }
  return Object.fromEntries(args);
}

/** Pushes an image of this machine to the registry its reference names; prints reference@digest. */
export async function imagePushCommand(ctx: Ctx, reference: string): Promise<number> {
  const image = await store().push(reference);
  printImage(ctx, image);
  return 0;
}
