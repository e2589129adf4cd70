// The local engine pulls no images: a container image names a *local image*, a set of host
// directories mounted read-only plus environment defaults. This table is the documented map;
// ASB_IMAGE_MAP (JSON: {"pattern": "local-image"}) extends it. An unknown image is an error on
// the sandbox's status, never a crash.

export interface LocalImage {
  name: 'host-python' | 'host-go' | 'host-base';
  /** Environment the image would have set (PATH, toolchain variables). */
  env: Record<string, string>;
  /** True when the image's own entrypoint is a runtime server (upstream's python-runtime-sandbox,
   *  gke-demos' go-runtime-sandbox): our agent takes that role, so no main process is started. */
  isRuntimeServer: boolean;
}

const PATH = '/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const HOME = '/home/sandbox';

const base: LocalImage = { name: 'host-base', env: { PATH, HOME }, isRuntimeServer: false };
const python: LocalImage = {
  name: 'host-python',
  env: { PATH, HOME, PYTHONUNBUFFERED: '1', PYTHONDONTWRITEBYTECODE: '1' },
  isRuntimeServer: false,
};
const go: LocalImage = {
  name: 'host-go',
  env: {
    PATH,
    HOME,
    GOPATH: `${HOME}/go`,
    GOCACHE: `${HOME}/.cache/go-build`,
    GOTOOLCHAIN: 'local',
    GOPROXY: 'off',
    GOFLAGS: '-mod=mod',
    CGO_ENABLED: '0',
  },
  isRuntimeServer: false,
};

/** Glob-ish patterns (`*` matches anything) → local image; first match wins. */
export const BUILTIN_IMAGE_MAP: ReadonlyArray<[string, LocalImage]> = [
  ['registry.k8s.io/agent-sandbox/python-runtime-sandbox:*', { ...python, isRuntimeServer: true }],
  ['*/python-runtime-sandbox:*', { ...python, isRuntimeServer: true }],
  ['python-runtime-sandbox:*', { ...python, isRuntimeServer: true }],
  ['ghcr.io/gke-demos/go-runtime-sandbox:*', { ...go, isRuntimeServer: true }],
  ['*/go-runtime-sandbox:*', { ...go, isRuntimeServer: true }],
  ['go-runtime-sandbox:*', { ...go, isRuntimeServer: true }],
  ['python:*', python],
  ['golang:*', go],
  ['busybox:*', base],
  ['debian:*', base],
  ['ubuntu:*', base],
];

const byName: Record<LocalImage['name'], LocalImage> = { 'host-base': base, 'host-python': python, 'host-go': go };

function matches(pattern: string, image: string): boolean {
  const re = new RegExp(
    '^' +
      pattern
        .split('*')
        .map((s) => s.replace(/[.+?^${}()|[\]\\/]/g, '\\$&'))
        .join('.*') +
      '$',
  );
  // An image without a tag means :latest.
  const withTag = /:[^/]+$/.test(image) || image.includes('@') ? image : `${image}:latest`;
  return re.test(withTag);
}

export class UnknownImageError extends Error {
  constructor(readonly image: string) {
    const known = BUILTIN_IMAGE_MAP.map(([p]) => p).join(', ');
    super(
      `image "${image}" is not available to the local engine (it pulls no images). Known images: ${known}. ` +
        `Map it to host-python, host-go or host-base with ASB_IMAGE_MAP='{"${image}":"host-python"}'.`,
    );
    this.name = 'UnknownImageError';
  }
}

export function resolveImage(image: string, env: NodeJS.ProcessEnv = process.env): LocalImage {
  const img = userMapping(image, env) ?? builtinImage(image);
  if (img) return img;
  throw new UnknownImageError(image);
}

/** The host image the built-in table stands in with for `image`, if it names one. */
export function builtinImage(image: string): LocalImage | undefined {
  return BUILTIN_IMAGE_MAP.find(([pattern]) => matches(pattern, image))?.[1];
}

/** The host image ASB_IMAGE_MAP (the user's own choice) maps `image` to, if it does. */
export function userMapping(image: string, env: NodeJS.ProcessEnv = process.env): LocalImage | undefined {
  if (!env.ASB_IMAGE_MAP) return undefined;
  const parsed = JSON.parse(env.ASB_IMAGE_MAP) as Record<string, string>;
  for (const [pattern, name] of Object.entries(parsed)) {
    const img = byName[name as LocalImage['name']];
    if (img && matches(pattern, image)) return img;
  }
  return undefined;
}
