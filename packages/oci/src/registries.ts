// Where images come from, as the machine's configuration says: registry mirrors and plain-HTTP
// registries in the format of containers-registries.conf(5) (what podman, CRI-O and skopeo read),
// and credentials from Docker's config.json (what `docker login` writes). An air-gapped site
// serves `registry.k8s.io/...` from its own registry this way.
import { readFileSync } from 'node:fs';
import { parse as parseToml } from 'smol-toml';
import { RegistryError } from './errors.ts';
import { DOCKER_HUB, formatReference, parseReference, type ImageReference } from './reference.ts';
import type { Credentials } from './registry-client.ts';

export interface RegistryEntry {
  /** The references it applies to: a registry, or a registry and a repository path prefix. */
  prefix: string;
  /** Where they really are (the prefix itself unless given). */
  location: string;
  /** Plain HTTP (and only then) allowed for `location`. */
  insecure: boolean;
  /** Pulls of these references fail. */
  blocked: boolean;
  /** Tried in order before `location`. */
  mirrors: Array<{ location: string; insecure: boolean }>;
}

export class RegistryConfigError extends Error {
  override name = 'RegistryConfigError';
}

/** The `[[registry]]` tables of a registries.conf (version 2); a missing file is no entries. */
export function loadRegistriesConf(path: string): RegistryEntry[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  let doc: { registry?: unknown };
  try {
    doc = parseToml(text);
  } catch (err) {
    throw new RegistryConfigError(`${path}: not valid TOML: ${(err as Error).message}`);
  }
  const tables = Array.isArray(doc.registry) ? (doc.registry as Array<Record<string, unknown>>) : [];
  return tables.map((t, i) => {
    const where = `${path}: [[registry]] #${i + 1}`;
    const str = (v: unknown, name: string): string | undefined => {
      if (v === undefined) return undefined;
      if (typeof v !== 'string' || !v) throw new RegistryConfigError(`${where}: ${name} must be a non-empty string`);
      return v;
    };
    const prefix = str(t.prefix, 'prefix') ?? str(t.location, 'location');
    if (!prefix) throw new RegistryConfigError(`${where}: needs a prefix or a location`);
    const mirrors = Array.isArray(t.mirror) ? (t.mirror as Array<Record<string, unknown>>) : [];
    return {
      prefix: normalizePrefix(prefix),
      location: str(t.location, 'location') ?? prefix,
      insecure: t.insecure === true,
      blocked: t.blocked === true,
      mirrors: mirrors.map((m, j) => {
        const location = str(m.location, `mirror #${j + 1} location`);
        if (!location) throw new RegistryConfigError(`${where}: mirror #${j + 1} needs a location`);
        return { location, insecure: m.insecure === true };
      }),
    };
  });
}

/** Docker Hub's short forms and old URL keys as the registry name references use. */
function normalizePrefix(prefix: string): string {
  const p = prefix.replace(/^https?:\/\//, '').replace(/\/+$/, '');
  if (p === 'index.docker.io' || p === 'registry-1.docker.io' || p.startsWith('index.docker.io/v1')) return DOCKER_HUB;
  return p;
}

/**
 * Credentials by registry from a Docker config.json: `auths` entries with `auth` (base64 of
 * user:password) or `username` and `password`. Credential helpers are not run.
 */
export function loadDockerCredentials(path: string): Record<string, Credentials> {
  let doc: DockerConfig;
  try {
    doc = JSON.parse(readFileSync(path, 'utf8')) as DockerConfig;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new RegistryConfigError(`${path}: ${(err as Error).message}`);
  }
  return dockerConfigCredentials(doc);
}

/** A Docker config.json (or a Kubernetes `.dockerconfigjson`), as far as credentials go. */
export interface DockerConfig {
  auths?: Record<string, { auth?: string; username?: string; password?: string }>;
}

/** The credentials of a parsed Docker config, by registry. */
export function dockerConfigCredentials(doc: DockerConfig): Record<string, Credentials> {
  const out: Record<string, Credentials> = {};
  for (const [key, entry] of Object.entries(doc.auths ?? {})) {
    let username = entry.username;
    let password = entry.password;
    if (entry.auth) {
      const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon > 0) [username, password] = [decoded.slice(0, colon), decoded.slice(colon + 1)];
    }
    if (username && password !== undefined) out[normalizePrefix(key).split('/')[0]!] = { username, password };
  }
  return out;
}

/** The entry with the longest prefix that the reference falls under (at a path boundary). */
export function entryFor(ref: ImageReference, entries: RegistryEntry[]): RegistryEntry | undefined {
  const name = `${ref.registry}/${ref.repository}`;
  let best: RegistryEntry | undefined;
  for (const e of entries) {
    const under = name === e.prefix || name.startsWith(`${e.prefix}/`);
    if (under && (!best || e.prefix.length > best.prefix.length)) best = e;
  }
  return best;
}

/**
 * Where to pull a reference from, in order: its mirrors, then its location (itself when no
 * entry applies). The tag or digest goes with each.
 */
export function sourcesFor(ref: ImageReference, entries: RegistryEntry[]): ImageReference[] {
  const e = entryFor(ref, entries);
  if (!e) return [ref];
  if (e.blocked) throw new RegistryError('Unauthorized', `${formatReference(ref)}: registry "${e.prefix}" is blocked`);
  const rest = `${ref.registry}/${ref.repository}`.slice(e.prefix.length);
  const at = (location: string): ImageReference => {
    const pinned = ref.digest ? `@${ref.digest}` : `:${ref.tag ?? 'latest'}`;
    const moved = parseReference(`${location}${rest}${pinned}`);
    return { ...moved, ...(ref.tag ? { tag: ref.tag } : {}) };
  };
  return [...e.mirrors.map((m) => at(m.location)), at(e.location)];
}

/** Registries (host[:port]) the entries allow plain HTTP to. */
export function insecureHosts(entries: RegistryEntry[]): Set<string> {
  const hosts = new Set<string>();
  const host = (location: string) => location.split('/')[0]!;
  for (const e of entries) {
    if (e.insecure) hosts.add(host(e.location));
    for (const m of e.mirrors) if (m.insecure) hosts.add(host(m.location));
  }
  return hosts;
}
