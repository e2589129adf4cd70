// Real registries for the tests: Debian's `docker-registry` (CNCF distribution) on loopback, open
// or behind htpasswd, and images made here as OCI layouts (tar, gzip or zstd) and pushed to it
// with skopeo, as a user's client would.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { X509Certificate, createHash, createPrivateKey, randomUUID, sign } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { Header } from 'tar';

const run = promisify(execFile);

export interface TestRegistry {
  /** host:port, as references name it. */
  host: string;
  /** Where the registry keeps its blobs (to tamper with one). */
  dataDir: string;
  credentials?: { username: string; password: string };
  /** The PEM of its TLS certificate, when it serves HTTPS. */
  ca?: string;
  /** With token auth: what the token service was asked (username or `anonymous`, and scope). */
  tokenRequests?: string[];
  stop(): Promise<void>;
}

/** A self-signed certificate and key as NAME.crt and NAME.key in dir; returns the PEM. */
async function selfSigned(dir: string, name: string, san: string[]): Promise<string> {
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '2',
    '-subj',
    `/CN=${name}`,
    '-addext',
    `subjectAltName=${san.join(',')}`,
    '-keyout',
    join(dir, `${name}.key`),
    '-out',
    join(dir, `${name}.crt`),
  ]);
  return readFileSync(join(dir, `${name}.crt`), 'utf8');
}

interface TokenService {
  realm: string;
  requests: string[];
  stop(): Promise<void>;
}

/**
 * Distribution's token protocol, served here: a GET with the service and scope (Basic
 * credentials or none) answers a JWT signed by the key whose certificate the registry trusts
 * (`x5c`), granting pull of `public/*` to anyone and everything to the one user.
 */
async function startTokenService(dir: string, user: { username: string; password: string }): Promise<TokenService> {
  await selfSigned(dir, 'token', ['DNS:token']);
  const key = createPrivateKey(readFileSync(join(dir, 'token.key')));
  const der = new X509Certificate(readFileSync(join(dir, 'token.crt'))).raw.toString('base64');
  const requests: string[] = [];
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://token');
    const basic = /^Basic (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    const [name, password] = basic ? Buffer.from(basic, 'base64').toString().split(':') : [];
    const scope = url.searchParams.get('scope') ?? '';
    requests.push(`${name ?? 'anonymous'} ${scope}`);
    if (basic && (name !== user.username || password !== user.password)) {
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'invalid username or password' }] }));
      return;
    }
    const [type, repo, actions] = scope.split(':');
    const granted = basic || repo?.startsWith('public/') ? (actions ?? '').split(',') : [];
    const now = Math.floor(Date.now() / 1000);
    const header = b64({ typ: 'JWT', alg: 'RS256', x5c: [der] });
    const claims = b64({
      iss: 'test-issuer',
      sub: name ?? '',
      aud: url.searchParams.get('service'),
      exp: now + 300,
      nbf: now - 10,
      iat: now,
      jti: randomUUID(),
      access: granted.length ? [{ type, name: repo, actions: granted }] : [],
    });
    const signature = sign('sha256', Buffer.from(`${header}.${claims}`), key).toString('base64url');
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ token: `${header}.${claims}.${signature}`, expires_in: 300 }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as net.AddressInfo;
  return {
    realm: `http://127.0.0.1:${port}/token`,
    requests,
    stop: () => new Promise((r) => server.close(() => r())),
  };
}

async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise((r) => srv.close(r));
  return port;
}

/**
 * A registry on loopback. `auth`: htpasswd (bcrypt) with one user, or distribution's token auth
 * with a token service of our own (below): anonymous tokens may pull `public/*`, the user's
 * anything. `tls`: HTTPS with a certificate of its own (its PEM in `ca`).
 */
export async function startRegistry(opts: { auth?: 'htpasswd' | 'token'; tls?: boolean } = {}): Promise<TestRegistry> {
  const dir = mkdtempSync(join(tmpdir(), 'asb-registry-'));
  const port = await freePort();
  const credentials = opts.auth ? { username: 'alice', password: 'wonder-land' } : undefined;
  let authBlock = '';
  let tlsBlock = '';
  let ca: string | undefined;
  let tokens: TokenService | undefined;
  if (opts.tls) {
    ca = await selfSigned(dir, 'registry', ['IP:127.0.0.1', 'DNS:localhost']);
    tlsBlock = `  tls: { certificate: ${join(dir, 'registry.crt')}, key: ${join(dir, 'registry.key')} }\n`;
  }
  if (opts.auth === 'token') {
    tokens = await startTokenService(dir, credentials!);
    authBlock = `auth:\n  token: { realm: "${tokens.realm}", service: test-registry, issuer: test-issuer, rootcertbundle: ${join(dir, 'token.crt')} }\n`;
  } else if (credentials) {
    // bcrypt, which htpasswd auth requires: glibc's crypt(3) (libxcrypt) makes it.
    const { stdout } = await run('python3', [
      '-W',
      'ignore',
      '-c',
      `import crypt; print(crypt.crypt(${JSON.stringify(credentials.password)}, crypt.mksalt(crypt.METHOD_BLOWFISH)))`,
    ]);
    writeFileSync(join(dir, 'htpasswd'), `${credentials.username}:${stdout.trim()}\n`);
    authBlock = `auth:\n  htpasswd: { realm: test, path: ${join(dir, 'htpasswd')} }\n`;
  }
  writeFileSync(
    join(dir, 'config.yml'),
    `version: 0.1
log: { level: error, accesslog: { disabled: true } }
storage:
  filesystem: { rootdirectory: ${join(dir, 'data')} }
  delete: { enabled: true }
http:
  addr: 127.0.0.1:${port}
  secret: test-secret
${tlsBlock}${authBlock}`,
  );
  const child: ChildProcess = spawn('docker-registry', ['serve', join(dir, 'config.yml')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const host = `127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    const up = await new Promise<boolean>((resolve) => {
      const req = (opts.tls ? https : http).get(`${opts.tls ? 'https' : 'http'}://${host}/v2/`, { ca }, (res) => {
        res.resume();
        resolve(res.statusCode === 200 || res.statusCode === 401);
      });
      req.on('error', () => resolve(false));
    });
    if (up) break;
    if (i > 100 || child.exitCode !== null) {
      child.kill('SIGKILL');
      throw new Error(`docker-registry did not start: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    host,
    dataDir: join(dir, 'data'),
    ...(credentials ? { credentials } : {}),
    ...(ca ? { ca } : {}),
    ...(tokens ? { tokenRequests: tokens.requests } : {}),
    async stop() {
      await tokens?.stop();
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A tar of the entries as given, names and link targets unchecked (a hostile layer's). */
export function rawTar(
  entries: Array<{
    path: string;
    type?: 'File' | 'Link' | 'SymbolicLink' | 'Directory';
    body?: string;
    linkpath?: string;
  }>,
): Buffer {
  const blocks: Buffer[] = [];
  for (const e of entries) {
    const body = Buffer.from(e.body ?? '');
    const header = new Header({
      path: e.path,
      type: e.type ?? 'File',
      mode: e.type === 'Directory' ? 0o755 : 0o644,
      size: e.type === 'File' || !e.type ? body.length : 0,
      linkpath: e.linkpath,
      mtime: new Date(0),
      uid: 0,
      gid: 0,
    });
    header.encode();
    blocks.push(header.block!);
    if (body.length) blocks.push(body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

export interface LayerSpec {
  /** Path in the image → content; a name `.wh.NAME` is a whiteout of NAME in lower layers. */
  files?: Record<string, string | Buffer>;
  /** Instead of `files`: these paths of the host's own tree (relative to /), as they are there. */
  fromHost?: string[];
  /** Instead of `files`: everything under this directory (a root filesystem), owners as they are. */
  fromDir?: string;
  /** Path → target. */
  symlinks?: Record<string, string>;
  /** Path → mode, for files above. */
  modes?: Record<string, number>;
  /** The uid and gid of every entry (0 unless given). */
  owner?: number;
  compression?: 'gzip' | 'zstd';
  /** Only the entries named above, no entries for their directories (as a hostile layer may be). */
  entriesOnly?: boolean;
  /** Instead of all the above: the layer's tar as given (entries no directory can make: `..` in a
   *  name, a hard link out of the root). */
  tar?: Buffer;
}

export interface ImageSpec {
  layers: LayerSpec[];
  architecture?: string;
  config?: { Env?: string[]; Cmd?: string[]; Entrypoint?: string[]; WorkingDir?: string; User?: string };
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** An OCI image layout with one tag: one image, or (with several) an index of them. */
export async function ociLayout(images: ImageSpec[], tag: string): Promise<{ dir: string; remove(): void }> {
  const dir = mkdtempSync(join(tmpdir(), 'asb-oci-layout-'));
  mkdirSync(join(dir, 'blobs', 'sha256'), { recursive: true });
  const blob = (bytes: Buffer, mediaType: string, extra: Record<string, unknown> = {}) => {
    const hex = sha(bytes);
    writeFileSync(join(dir, 'blobs', 'sha256', hex), bytes);
    return { mediaType, digest: `sha256:${hex}`, size: bytes.length, ...extra };
  };
  const manifests = [];
  for (const img of images) {
    const layers = [];
    const diffIds = [];
    for (const layer of img.layers) {
      if (layer.tar) {
        diffIds.push(`sha256:${sha(layer.tar)}`);
        layers.push(blob(gzipSync(layer.tar), 'application/vnd.oci.image.layer.v1.tar+gzip'));
        continue;
      }
      const root = mkdtempSync(join(tmpdir(), 'asb-layer-'));
      for (const [path, content] of Object.entries(layer.files ?? {})) {
        mkdirSync(dirname(join(root, path)), { recursive: true });
        writeFileSync(join(root, path), content);
      }
      for (const [path, target] of Object.entries(layer.symlinks ?? {})) {
        mkdirSync(dirname(join(root, path)), { recursive: true });
        symlinkSync(target, join(root, path));
      }
      for (const [path, mode] of Object.entries(layer.modes ?? {})) chmodSync(join(root, path), mode);
      const owner = String(layer.owner ?? 0);
      const tarPath = join(root, '..', `${root.split('/').pop()}.tar`);
      await run(
        'tar',
        [
          '-C',
          layer.fromDir ?? root,
          '--sort=name',
          ...(layer.fromDir ? [] : [`--owner=${owner}`, `--group=${owner}`]),
          '--numeric-owner',
          '-cf',
          tarPath,
          ...(layer.fromHost
            ? ['-C', '/', ...layer.fromHost]
            : layer.entriesOnly
              ? ['--no-recursion', ...[...Object.keys(layer.files ?? {}), ...Object.keys(layer.symlinks ?? {})].sort()]
              : ['.']),
        ],
        { maxBuffer: 16 * 1024 * 1024 },
      );
      const tar = readFileSync(tarPath);
      rmSync(root, { recursive: true, force: true });
      rmSync(tarPath, { force: true });
      diffIds.push(`sha256:${sha(tar)}`);
      if (layer.compression === 'zstd') {
        const { stdout } = await zstd(tar);
        layers.push(blob(stdout, 'application/vnd.oci.image.layer.v1.tar+zstd'));
      } else {
        layers.push(blob(gzipSync(tar), 'application/vnd.oci.image.layer.v1.tar+gzip'));
      }
    }
    const architecture = img.architecture ?? 'amd64';
    const config = blob(
      Buffer.from(
        JSON.stringify({
          architecture,
          os: 'linux',
          config: img.config ?? {},
          rootfs: { type: 'layers', diff_ids: diffIds },
        }),
      ),
      'application/vnd.oci.image.config.v1+json',
    );
    const manifest = { schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config, layers };
    manifests.push(
      blob(Buffer.from(JSON.stringify(manifest)), 'application/vnd.oci.image.manifest.v1+json', {
        platform: { os: 'linux', architecture },
      }),
    );
  }
  let top = manifests[0]!;
  if (images.length > 1) {
    const index = { schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests };
    top = blob(Buffer.from(JSON.stringify(index)), 'application/vnd.oci.image.index.v1+json');
  }
  const { platform: _p, ...entry } = top as typeof top & { platform?: unknown };
  writeFileSync(
    join(dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [{ ...entry, annotations: { 'org.opencontainers.image.ref.name': tag } }],
    }),
  );
  writeFileSync(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

function zstd(input: Buffer): Promise<{ stdout: Buffer }> {
  return new Promise((resolve, reject) => {
    const child = spawn('zstd', ['-q', '-c', '-3'], { stdio: ['pipe', 'pipe', 'inherit'] });
    const out: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0 ? resolve({ stdout: Buffer.concat(out) }) : reject(new Error(`zstd exited ${code}`)),
    );
    child.stdin.end(input);
  });
}

/** Pushes images (an index when several) to registry/repo:tag with skopeo, as a user would. */
export async function pushImage(reg: TestRegistry, repo: string, tag: string, images: ImageSpec[]): Promise<void> {
  const layout = await ociLayout(images, tag);
  try {
    const creds = reg.credentials ? ['--dest-creds', `${reg.credentials.username}:${reg.credentials.password}`] : [];
    await run('skopeo', [
      'copy',
      '--quiet',
      '--all',
      '--preserve-digests',
      '--dest-tls-verify=false',
      ...creds,
      `oci:${layout.dir}:${tag}`,
      `docker://${reg.host}/${repo}:${tag}`,
    ]);
  } finally {
    layout.remove();
  }
}
