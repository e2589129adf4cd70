// Image references as Docker and Kubernetes read them: `python:3.13-slim` is
// docker.io/library/python:3.13-slim, `localhost:5000/team/app@sha256:...` names a digest on a
// registry with a port. The grammar is distribution's (github.com/distribution/reference).

export interface ImageReference {
  /** The registry's host (and port), as written: `docker.io`, `localhost:5000`. */
  registry: string;
  /** The repository within it, with `library/` for Docker Hub's official images. */
  repository: string;
  /** The tag; `latest` when neither a tag nor a digest was given. Absent with a digest alone. */
  tag?: string;
  /** `sha256:<hex>` when the reference pins one. */
  digest?: string;
}

export class InvalidReferenceError extends Error {
  override name = 'InvalidReferenceError';
}

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN =
  /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^sha256:[a-f0-9]{64}$/;

export const DOCKER_HUB = 'docker.io';

/** Parses a reference, normalised as Docker does; throws InvalidReferenceError with the reason. */
export function parseReference(input: string): ImageReference {
  const s = input.trim();
  if (!s) throw new InvalidReferenceError('an image reference is empty');
  let rest = s;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) {
      throw new InvalidReferenceError(`"${input}": the digest must be sha256: and 64 lowercase hex digits`);
    }
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw new InvalidReferenceError(`"${input}": "${tag}" is not a valid tag`);
  }
  const parts = rest.split('/');
  let registry = DOCKER_HUB;
  const first = parts[0]!;
  if (
    parts.length > 1 &&
    (first.includes('.') || first.includes(':') || first === 'localhost' || /[A-Z]/.test(first))
  ) {
    if (!DOMAIN.test(first)) throw new InvalidReferenceError(`"${input}": "${first}" is not a valid registry host`);
    registry = first;
    parts.shift();
  }
  if (registry === 'index.docker.io' || registry === 'registry-1.docker.io') registry = DOCKER_HUB;
  if (registry === DOCKER_HUB && parts.length === 1) parts.unshift('library');
  for (const p of parts) {
    if (!COMPONENT.test(p)) {
      throw new InvalidReferenceError(
        `"${input}": "${p}" is not a valid repository name component (lowercase letters, digits and separators)`,
      );
    }
  }
  const repository = parts.join('/');
  if (repository.length > 255) throw new InvalidReferenceError(`"${input}": the repository name is too long`);
  return { registry, repository, ...(tag || !digest ? { tag: tag ?? 'latest' } : {}), ...(digest ? { digest } : {}) };
}

/** The reference written out in full: `docker.io/library/python:3.13-slim`, `host/repo@sha256:…`. */
export function formatReference(ref: ImageReference): string {
  return `${ref.registry}/${ref.repository}${ref.tag ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`;
}

/** Where the registry's API is served: Docker Hub's lives on registry-1.docker.io. */
export function apiHost(registry: string): string {
  return registry === DOCKER_HUB ? 'registry-1.docker.io' : registry;
}

/** Loopback registries speak plain HTTP without being configured to, as Docker allows. */
export function isLoopback(registry: string): boolean {
  const host = registry.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  return host === 'localhost' || /^127\.\d+\.\d+\.\d+$/.test(host) || host === '::1';
}
