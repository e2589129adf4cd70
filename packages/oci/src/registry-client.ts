// A client of the OCI distribution API (what `docker pull` speaks): manifests and blobs of one
// repository, behind the registry's authentication. Anonymous access, the Bearer token flow of a
// `WWW-Authenticate` challenge (Docker Hub, GHCR, registry.k8s.io, a distribution registry with
// token auth) with or without credentials, and Basic credentials where the registry asks for
// them. Manifests are checked against their digest; blobs are checked by whoever stores them
// (blob-store.ts), as they stream.
import { createHash } from 'node:crypto';
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { RegistryError, registryMessage } from './errors.ts';
import {
  INDEX_TYPES,
  MANIFEST_ACCEPT,
  MANIFEST_TYPES,
  OCI_INDEX,
  OCI_MANIFEST,
  type Descriptor,
  type ImageIndex,
  type ImageManifest,
} from './media-types.ts';
import { apiHost, formatReference, isLoopback, type ImageReference } from './reference.ts';

export interface Credentials {
  username: string;
  password: string;
}

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

export interface RegistryClientOptions {
  /** Credentials for a registry (its host as written in references), if any. */
  credentials?: (registry: string) => Credentials | undefined;
  /** Registries allowed over plain HTTP besides loopback ones (Docker's insecure-registries). */
  insecure?: (registry: string) => boolean;
  /** Extra CA certificates (PEM) to trust for a registry's TLS. */
  ca?: (registry: string) => string | undefined;
  /** The platform an index is resolved to; linux/amd64 by default. */
  platform?: Platform;
  /** Per request, until the answer's headers arrive and between chunks of its body. */
  timeoutMs?: number;
}

export interface ResolvedManifest {
  /** The digest of the image manifest (for a multi-platform image, the platform's manifest). */
  digest: string;
  mediaType: string;
  manifest: ImageManifest;
  /** Its bytes exactly as served (what the digest is of). */
  bytes: Buffer;
  /** The index it was chosen from, for a multi-platform image. */
  index?: { digest: string; mediaType: string; bytes: Buffer };
}

/** A manifest as served: its digest, type, bytes, and those bytes parsed. */
interface FetchedManifest {
  digest: string;
  mediaType: string;
  bytes: Buffer;
  json: unknown;
}

const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
const NOT_TLS = 'it does not speak TLS';
const MAX_REDIRECTS = 5;

export class RegistryClient {
  /** The Authorization that worked, by registry and scope (a token lasts as long as the registry says). */
  private readonly auth = new Map<string, { authorization: string; expires: number }>();
  /** How each registry that may speak plain HTTP is spoken to, once found out. */
  private readonly schemes = new Map<string, Promise<string>>();
  private readonly platform: Platform;
  private readonly timeoutMs: number;

  constructor(private readonly opts: RegistryClientOptions = {}) {
    this.platform = opts.platform ?? { os: 'linux', architecture: 'amd64' };
    this.timeoutMs = opts.timeoutMs ?? 30_000;
  }

  /**
   * A client like this one that tries `extra` first (a pod's imagePullSecrets), with an auth
   * cache of its own: a token those credentials earned is never used for anyone else's pull.
   */
  withCredentials(extra: Record<string, Credentials>): RegistryClient {
    return new RegistryClient({ ...this.opts, credentials: (r) => extra[r] ?? this.opts.credentials?.(r) });
  }

  /**
   * The image manifest the reference names, for this client's platform: an index (or a Docker
   * manifest list) is resolved to the platform's manifest. Each manifest fetched is checked
   * against the digest it was asked by (or the one the registry says it has).
   */
  async resolve(ref: ImageReference): Promise<ResolvedManifest> {
    const first = await this.fetchManifest(ref, ref.digest ?? ref.tag ?? 'latest');
    if (MANIFEST_TYPES.has(first.mediaType)) return this.asImage(ref, first);
    if (!INDEX_TYPES.has(first.mediaType)) {
      throw new RegistryError('Unsupported', `${formatReference(ref)}: unsupported manifest type "${first.mediaType}"`);
    }
    const index = first.json as ImageIndex;
    const chosen = choosePlatform(index.manifests ?? [], this.platform);
    if (!chosen) {
      const offered = (index.manifests ?? [])
        .map((m) => (m.platform ? platformName(m.platform) : 'unknown'))
        .join(', ');
      throw new RegistryError(
        'Unsupported',
        `${formatReference(ref)}: no image for ${platformName(this.platform)} (the index has: ${offered || 'nothing'})`,
      );
    }
    const child = await this.fetchManifest(ref, chosen.digest);
    if (!MANIFEST_TYPES.has(child.mediaType)) {
      throw new RegistryError(
        'Unsupported',
        `${formatReference(ref)}: the ${platformName(this.platform)} entry is a "${child.mediaType}", not an image manifest`,
      );
    }
    return {
      ...this.asImage(ref, child),
      index: { digest: first.digest, mediaType: first.mediaType, bytes: first.bytes },
    };
  }

  /** A blob of the repository, as a stream (its digest is checked by the caller as it reads). */
  async blob(ref: ImageReference, digest: string): Promise<IncomingMessage> {
    const res = await this.authorized(ref, `/blobs/${digest}`, {});
    if (res.statusCode === 200) return res;
    throw await failure(res, ref, `blob ${digest}`);
  }

  private asImage(ref: ImageReference, m: FetchedManifest): ResolvedManifest {
    const manifest = m.json as ImageManifest;
    if (!manifest.config?.digest || !Array.isArray(manifest.layers)) {
      throw new RegistryError('Unsupported', `${formatReference(ref)}: the manifest has no config or no layers`);
    }
    return { digest: m.digest, mediaType: m.mediaType, manifest, bytes: m.bytes };
  }

  private async fetchManifest(ref: ImageReference, tagOrDigest: string): Promise<FetchedManifest> {
    const res = await this.authorized(ref, `/manifests/${tagOrDigest}`, { accept: MANIFEST_ACCEPT });
    if (res.statusCode !== 200) throw await failure(res, ref, `manifest ${tagOrDigest}`);
    const bytes = await readAll(res, MAX_MANIFEST_BYTES, `${formatReference(ref)}: the manifest`);
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    const expected = tagOrDigest.startsWith('sha256:') ? tagOrDigest : header(res, 'docker-content-digest');
    if (expected && expected.startsWith('sha256:') && expected !== digest) {
      throw new RegistryError(
        'BadDigest',
        `${formatReference(ref)}: the manifest served as ${expected} has digest ${digest}: refused`,
      );
    }
    // Some registries answer a generic JSON type: then the document says what it is.
    const served = (header(res, 'content-type') ?? '').split(';')[0]!.trim();
    const json = parseJson<{ mediaType?: string; manifests?: unknown }>(bytes, ref);
    const mediaType =
      MANIFEST_TYPES.has(served) || INDEX_TYPES.has(served)
        ? served
        : (json.mediaType ?? (json.manifests ? OCI_INDEX : OCI_MANIFEST));
    return { digest, mediaType, bytes, json };
  }

  /**
   * A request to the repository's path (or to `req.url`, an upload's location), authenticated as
   * the registry's challenge asks: GET (or HEAD) for pulls, with `push` the scope of a push.
   */
  private async authorized(
    ref: ImageReference,
    path: string,
    headers: Record<string, string>,
    req: { method?: string; body?: Buffer; push?: boolean; url?: string } = {},
  ): Promise<IncomingMessage> {
    const scope = `repository:${ref.repository}:${req.push ? 'pull,push' : 'pull'}`;
    const key = `${ref.registry}\u0000${scope}`;
    const url = req.url ?? `${await this.baseUrl(ref.registry)}/v2/${ref.repository}${path}`;
    const method = req.method ?? 'GET';
    // What worked last for this registry and scope goes with the first request (a token until
    // it expires, Basic credentials for good): no 401 round trip per manifest and blob.
    const cached = this.auth.get(key);
    const sent: Record<string, string> =
      cached && cached.expires > Date.now() ? { authorization: cached.authorization } : {};
    const res = await this.get(ref.registry, url, { ...headers, ...sent }, method, req.body);
    if (res.statusCode !== 401) return res;
    this.auth.delete(key);
    const challenge = header(res, 'www-authenticate') ?? '';
    const body = await readAll(res, 64 * 1024, 'the error').catch(() => Buffer.alloc(0));
    const creds = this.opts.credentials?.(ref.registry);
    const parsed = parseChallenge(challenge);
    let auth: { authorization: string; expires: number };
    if (parsed?.scheme === 'bearer' && parsed.params.realm) {
      const token = await this.fetchToken(ref, parsed.params, scope, creds);
      auth = { authorization: `Bearer ${token.token}`, expires: token.expires };
    } else if (parsed?.scheme === 'basic' && creds) {
      const basic = Buffer.from(`${creds.username}:${creds.password}`).toString('base64');
      auth = { authorization: `Basic ${basic}`, expires: Infinity };
    } else {
      throw unauthorized(ref, body.toString('utf8'), creds !== undefined);
    }
    const again = await this.get(
      ref.registry,
      url,
      { ...headers, authorization: auth.authorization },
      method,
      req.body,
    );
    if (again.statusCode === 401 || again.statusCode === 403) {
      const text = (await readAll(again, 64 * 1024, 'the error').catch(() => Buffer.alloc(0))).toString('utf8');
      throw unauthorized(ref, text, creds !== undefined);
    }
    this.auth.set(key, auth);
    return again;
  }

  private async fetchToken(
    ref: ImageReference,
    params: Record<string, string>,
    scope: string,
    creds: Credentials | undefined,
  ): Promise<{ token: string; expires: number }> {
    const realm = new URL(params.realm!);
    if (realm.protocol !== 'https:' && !(realm.protocol === 'http:' && this.plainHttpAllowed(realm.host))) {
      throw new RegistryError('Unauthorized', `${formatReference(ref)}: the token service ${realm.href} is not HTTPS`);
    }
    if (params.service) realm.searchParams.set('service', params.service);
    realm.searchParams.set('scope', params.scope ?? scope);
    const headers: Record<string, string> = {};
    if (creds) headers.authorization = `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}`;
    const res = await this.get(realm.host, realm.toString(), headers);
    const body = (await readAll(res, 1024 * 1024, 'the token')).toString('utf8');
    if (res.statusCode !== 200) {
      throw unauthorized(ref, body, creds !== undefined, `the token service answered ${res.statusCode}`);
    }
    let answer: { token?: string; access_token?: string; expires_in?: number };
    try {
      answer = JSON.parse(body) as typeof answer;
    } catch {
      throw new RegistryError('Unauthorized', `${formatReference(ref)}: the token service answered no JSON`);
    }
    const token = answer.token ?? answer.access_token;
    if (!token) throw new RegistryError('Unauthorized', `${formatReference(ref)}: the token service gave no token`);
    // Tokens last 60 s unless the service says otherwise; renewed a little before that.
    const seconds = Math.max(60, answer.expires_in ?? 60);
    return { token, expires: Date.now() + (seconds - 10) * 1000 };
  }

  /**
   * HTTPS, always verified (with the registry's CA when one is configured). A registry that may
   * speak plain HTTP (loopback, or configured so) is asked over HTTPS first, as Docker does, and
   * spoken to over HTTP only when it does not speak TLS at all; unlike Docker, a certificate that
   * does not verify is an error there too, not a reason to skip the check.
   */
  private baseUrl(registry: string): Promise<string> {
    const host = apiHost(registry);
    if (!this.plainHttpAllowed(registry)) return Promise.resolve(`https://${host}`);
    let known = this.schemes.get(registry);
    if (!known) {
      known = this.send(registry, new URL(`https://${host}/v2/`), {}).then(
        (res) => {
          res.resume();
          return `https://${host}`;
        },
        (err: unknown) => {
          this.schemes.delete(registry);
          if (err instanceof RegistryError && err.message.includes(NOT_TLS)) return `http://${host}`;
          throw err;
        },
      );
      this.schemes.set(registry, known);
    }
    return known;
  }

  private plainHttpAllowed(host: string): boolean {
    return isLoopback(host) || this.opts.insecure?.(host) === true;
  }

  /** One request; a GET's redirects followed (a blob often lives elsewhere: credentials stay behind). */
  private async get(
    registry: string,
    url: string,
    headers: Record<string, string>,
    method = 'GET',
    body?: Buffer,
  ): Promise<IncomingMessage> {
    let target = new URL(url);
    let sent = headers;
    for (let hop = 0; ; hop++) {
      const res = await this.send(registry, target, sent, method, body);
      const location = header(res, 'location');
      if (method !== 'GET' || !location || ![301, 302, 303, 307, 308].includes(res.statusCode ?? 0)) return res;
      res.resume();
      if (hop >= MAX_REDIRECTS) {
        throw new RegistryError('RegistryError', `${registry}: more than ${MAX_REDIRECTS} redirects for ${url}`);
      }
      const next = new URL(location, target);
      if (next.protocol === 'http:' && target.protocol === 'https:' && !this.plainHttpAllowed(next.host)) {
        throw new RegistryError(
          'RegistryError',
          `${registry}: a redirect from HTTPS to plain HTTP (${next.host}) refused`,
        );
      }
      if (next.host !== target.host) {
        const { authorization: _dropped, ...rest } = sent;
        sent = rest;
      }
      target = next;
    }
  }

  private send(
    registry: string,
    url: URL,
    headers: Record<string, string>,
    method = 'GET',
    body?: Buffer,
  ): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => {
      const ca = this.opts.ca?.(registry);
      const options = {
        method,
        headers: {
          'user-agent': 'asb (agent-sandbox-ts)',
          ...(body ? { 'content-length': String(body.length) } : {}),
          ...headers,
        },
        timeout: this.timeoutMs,
        ...(ca ? { ca } : {}),
      };
      const req = (url.protocol === 'https:' ? https : http).request(url, options, (res) => {
        res.setTimeout(this.timeoutMs, () =>
          res.destroy(
            new RegistryError('Unreachable', `${registry}: no data for ${this.timeoutMs} ms from ${url.host}`),
          ),
        );
        resolve(res);
      });
      req.on('timeout', () =>
        req.destroy(
          new RegistryError('Unreachable', `${registry}: no answer within ${this.timeoutMs} ms from ${url.host}`),
        ),
      );
      req.on('error', (err) => {
        if (err instanceof RegistryError) return reject(err);
        // A server that answers a TLS handshake in plain HTTP: OpenSSL's "wrong version number".
        const plain = url.protocol === 'https:' && /wrong version number|packet length too long/i.test(err.message);
        reject(
          new RegistryError('Unreachable', `${registry}: cannot reach ${url.host}: ${plain ? NOT_TLS : err.message}`),
        );
      });
      req.end(body);
    });
  }

  /**
   * Pushes an image: each blob the repository lacks (asked by HEAD first) in one monolithic
   * upload, then the manifest under the reference's tag. `read` gives a blob's bytes by digest.
   */
  async push(
    ref: ImageReference,
    blobs: Descriptor[],
    read: (digest: string) => Promise<Buffer>,
    manifest: { bytes: Buffer; mediaType: string },
  ): Promise<void> {
    for (const b of blobs) {
      const head = await this.authorized(ref, `/blobs/${b.digest}`, {}, { method: 'HEAD', push: true });
      head.resume();
      if (head.statusCode === 200) continue;
      const start = await this.authorized(
        ref,
        '/blobs/uploads/',
        {},
        { method: 'POST', body: Buffer.alloc(0), push: true },
      );
      if (start.statusCode !== 202) throw await failure(start, ref, `an upload of ${b.digest}`);
      start.resume();
      const location = new URL(header(start, 'location') ?? '', `${await this.baseUrl(ref.registry)}/`);
      location.searchParams.set('digest', b.digest);
      const put = await this.authorized(
        ref,
        '',
        { 'content-type': 'application/octet-stream' },
        { method: 'PUT', body: await read(b.digest), push: true, url: location.toString() },
      );
      if (put.statusCode !== 201) throw await failure(put, ref, `blob ${b.digest}`);
      put.resume();
    }
    const tag = ref.tag ?? 'latest';
    const res = await this.authorized(
      ref,
      `/manifests/${tag}`,
      { 'content-type': manifest.mediaType },
      { method: 'PUT', body: manifest.bytes, push: true },
    );
    if (res.statusCode !== 201) throw await failure(res, ref, `manifest ${tag}`);
    res.resume();
  }
}

function unauthorized(ref: ImageReference, body: string, hadCredentials: boolean, why?: string): RegistryError {
  const said = registryMessage(body);
  const hint = hadCredentials ? 'the credentials were refused' : 'no credentials for this registry';
  return new RegistryError(
    'Unauthorized',
    `${formatReference(ref)}: unauthorized (${[why, said, hint].filter(Boolean).join('; ')})`,
    401,
  );
}

async function failure(res: IncomingMessage, ref: ImageReference, what: string): Promise<RegistryError> {
  const body = (await readAll(res, 64 * 1024, 'the error').catch(() => Buffer.alloc(0))).toString('utf8');
  const said = registryMessage(body) ?? (body.trim().slice(0, 200) || `HTTP ${res.statusCode}`);
  const status = res.statusCode ?? 0;
  if (status === 404) return new RegistryError('NotFound', `${formatReference(ref)}: ${what} not found (${said})`, 404);
  if (status === 401 || status === 403) return unauthorized(ref, body, false);
  return new RegistryError('RegistryError', `${formatReference(ref)}: ${what}: HTTP ${status} (${said})`, status);
}

/** The first entry for the platform: os and architecture equal, and the variant when asked for. */
function choosePlatform(manifests: Descriptor[], want: Platform): Descriptor | undefined {
  return manifests.find(
    (m) =>
      m.platform?.os === want.os &&
      m.platform.architecture === want.architecture &&
      (!want.variant || m.platform.variant === want.variant),
  );
}

const platformName = (p: Platform) => `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;

/** `Bearer realm="…",service="…"` → scheme and parameters. */
export function parseChallenge(value: string): { scheme: string; params: Record<string, string> } | undefined {
  const m = /^\s*(\w+)\s*(.*)$/s.exec(value);
  if (!m) return undefined;
  const params: Record<string, string> = {};
  for (const p of m[2]!.matchAll(/([\w-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))/g)) {
    params[p[1]!.toLowerCase()] = (p[2] ?? p[3] ?? '').replace(/\\(.)/g, '$1');
  }
  return { scheme: m[1]!.toLowerCase(), params };
}

function header(res: IncomingMessage, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function parseJson<T>(bytes: Buffer, ref: ImageReference): T {
  try {
    return JSON.parse(bytes.toString('utf8')) as T;
  } catch {
    throw new RegistryError('Unsupported', `${formatReference(ref)}: the registry's manifest is not JSON`);
  }
}

async function readAll(res: IncomingMessage, max: number, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res) {
    size += (chunk as Buffer).length;
    if (size > max) {
      res.destroy();
      throw new RegistryError('Unsupported', `${what} is larger than ${max} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}
