// Our router beside upstream's v1.0.1 Go router (sandbox-router/cmd, built from the module), the
// same requests to both over real sockets, in front of the same header-echoing backend, and the
// answers compared: status, the headers a client acts on, body, and what the sandbox received.
// Upstream's router resolves <id>.<ns>.svc.cluster.local, so it runs in a mount namespace of its
// own whose /etc/hosts sends those names to loopback (root and unshare(1) needed); ours is told
// the same by ROUTER_BACKEND. Upstream's binary is the one test/k8s/build.ts builds
// (~/.cache/asb-k8s/bin/sandbox-router-v1.0.1, pinned in tools/k8s/upstream-v1), or
// ASB_UPSTREAM_ROUTER; skipped when neither exists.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { mintScopedToken } from '../src/router/session.ts';

const BINARY =
  process.env.ASB_UPSTREAM_ROUTER ??
  join(process.env.ASB_K8S_CACHE ?? join(homedir(), '.cache', 'asb-k8s'), 'bin', 'sandbox-router-v1.0.1');
const MAIN = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '../src/router/main.ts');
const SECRET = 'differential-test-secret-of-at-least-32-bytes';
const skip =
  !BINARY || !existsSync(BINARY)
    ? `upstream's v1.0.1 router is not built (${BINARY}): node --import tsx test/k8s/build.ts`
    : process.getuid?.() !== 0
      ? 'needs root (a mount namespace for its /etc/hosts)'
      : false;

const freePort = () =>
  new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });

async function waitFor(port: number) {
  for (let i = 0; i < 200; i++) {
    const ok = await new Promise<boolean>((r) => {
      const c = net.connect(port, '127.0.0.1', () => {
        c.destroy();
        r(true);
      });
      c.on('error', () => r(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing listens on ${port}`);
}

interface Answer {
  status: number;
  headers: Record<string, string | undefined>;
  body: unknown;
}

/** A raw request: the path goes on the wire exactly as written. */
function raw(port: number, method: string, path: string, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1', () => {
      const lines = [`${method} ${path} HTTP/1.1`, `Host: 127.0.0.1:${port}`, 'Connection: close'];
      for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
      sock.write(`${lines.join('\r\n')}\r\n\r\n`);
    });
    const chunks: Buffer[] = [];
    sock.on('data', (d) => chunks.push(d));
    sock.on('error', reject);
    sock.on('close', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const [head = '', ...rest] = text.split('\r\n\r\n');
      const [statusLine = '', ...headerLines] = head.split('\r\n');
      const h: Record<string, string> = {};
      for (const l of headerLines) {
        const i = l.indexOf(':');
        const k = l.slice(0, i).toLowerCase();
        h[k] = h[k] !== undefined ? `${h[k]}, ${l.slice(i + 1).trim()}` : l.slice(i + 1).trim();
      }
      let body: unknown = rest.join('\r\n\r\n');
      if (h['transfer-encoding'] === 'chunked') body = dechunk(body as string);
      try {
        body = JSON.parse(body as string);
      } catch {
        /* text */
      }
      resolve({
        status: Number(statusLine.split(' ')[1]),
        headers: {
          'content-type': h['content-type'],
          location: h.location?.replace(/:\d+\//, ':PORT/'),
          'set-cookie': h['set-cookie'],
          'cache-control': h['cache-control'],
          upgrade: h.upgrade,
        },
        body: normalize(body, port),
      });
    });
  });
}

function dechunk(s: string): string {
  let out = '';
  let rest = s;
  for (;;) {
    const i = rest.indexOf('\r\n');
    const n = parseInt(rest.slice(0, i), 16);
    if (!n) return out;
    out += rest.slice(i + 2, i + 2 + n);
    rest = rest.slice(i + 4 + n);
  }
}

/** What differs between the two by construction: the router's own port, the backend's Host. */
function normalize(body: unknown, routerPort: number): unknown {
  if (!body || typeof body !== 'object') return body;
  const b = body as { headers?: Record<string, string> };
  if (b.headers) {
    const h = { ...b.headers };
    delete h.host; // upstream: <id>.<ns>.svc.cluster.local:<port>; ours: the backend's address
    delete h['user-agent'];
    delete h['accept-encoding']; // Go's transport asks for gzip when the client did not
    delete h.connection; // keep-alive to the backend or not: each client's own business
    // Upstream passes the routing headers on to the sandbox; ours (as its Python router) does not.
    for (const k of Object.keys(h)) if (k.startsWith('x-sandbox-')) delete h[k];
    if (h['x-forwarded-host']) h['x-forwarded-host'] = h['x-forwarded-host'].replace(String(routerPort), 'PORT');
    b.headers = h;
  }
  return body;
}

describe('our router against upstream v1.0.1 Go router, request by request', { skip }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'asb-router-diff-'));
  const procs: ChildProcess[] = [];
  let backend: http.Server;
  let bport = 0;
  const ports = { ours: 0, upstream: 0, oursScoped: 0, upstreamScoped: 0 };

  before(async () => {
    backend = http.createServer((req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ url: req.url, method: req.method, headers: req.headers }));
    });
    backend.on('upgrade', (req, socket: net.Socket) => {
      const text = JSON.stringify({ url: req.url, headers: req.headers });
      socket.end(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n${text}`);
    });
    await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
    bport = (backend.address() as net.AddressInfo).port;
    const hosts = join(dir, 'hosts');
    writeFileSync(
      hosts,
      [
        '127.0.0.1 localhost',
        ...['sb.default', 'sb.team', 'other.team'].map((n) => `127.0.0.1 ${n}.svc.cluster.local`),
      ].join('\n') + '\n',
    );
    const secretFile = join(dir, 'secret');
    writeFileSync(secretFile, `${SECRET}\n`);
    const common = ['--path-routing-prefix=/router', '--allow-loopback-pod-ip', '--upstream-max-retries=0'];
    const scoped = [
      '--authz-mode=scoped-token',
      `--authz-scoped-token-secret-file=${secretFile}`,
      '--authz-cookie-name=sid',
      '--authz-cookie-query-param=token',
      '--authz-cookie-insecure',
      '--authz-cookie-allowed-origins=https://ok.example',
    ];
    for (const [key, extra] of [
      ['', ['--authz-mode=allow-all']],
      ['Scoped', scoped],
    ] as const) {
      const up = await freePort();
      const probe = await freePort();
      procs.push(
        spawn(
          'unshare',
          [
            '--mount',
            'sh',
            '-c',
            `mount --bind ${hosts} /etc/hosts && exec "$0" "$@"`,
            BINARY,
            `--http-bind-address=127.0.0.1:${up}`,
            '--metrics-bind-address=127.0.0.1:0',
            `--health-probe-bind-address=127.0.0.1:${probe}`,
            '--access-log=false',
            ...common,
            ...extra,
          ],
          { stdio: 'ignore' },
        ),
      );
      const ours = await freePort();
      procs.push(
        spawn(
          process.execPath,
          ['--import', 'tsx', MAIN, `--http-bind-address=127.0.0.1:${ours}`, ...common, ...extra],
          {
            env: { PATH: process.env.PATH, ROUTER_BACKEND: '127.0.0.1' },
            stdio: 'ignore',
          },
        ),
      );
      await waitFor(up);
      await waitFor(ours);
      if (key) [ports.upstreamScoped, ports.oursScoped] = [up, ours];
      else [ports.upstream, ports.ours] = [up, ours];
    }
  });
  after(() => {
    for (const p of procs) p.kill('SIGTERM');
    backend?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const same = async (scoped: boolean, method: string, path: string, headers: Record<string, string> = {}) => {
    const [u, o] = scoped ? [ports.upstreamScoped, ports.oursScoped] : [ports.upstream, ports.ours];
    // SELF: the router's own origin, as a same-origin page would send it.
    const p = (s: string, port: number) =>
      s.replaceAll('BPORT', String(bport)).replaceAll('SELF', `http://127.0.0.1:${port}`);
    const hs = (port: number) => Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, p(v, port)]));
    const [a, b] = [await raw(u, method, p(path, u), hs(u)), await raw(o, method, p(path, o), hs(o))];
    for (const x of [a, b]) {
      const body = x.body as { headers?: Record<string, string> };
      if (body?.headers?.origin?.startsWith('http://127.0.0.1:')) body.headers.origin = 'SELF';
    }
    assert.deepEqual(b, a, `${method} ${p(path, u)} ${JSON.stringify(hs(u))}`);
    return a;
  };

  it('routes by path as upstream does, and refuses malformed routes with its messages', async () => {
    for (const path of [
      '/router/default/sb/BPORT/a%2Fb/c?x=1&y=%20',
      '/router/default/sb/BPORT',
      '/router/default/sb/BPORT/',
      '/router/team/sb/BPORT/deep/er?',
      '/router/default/sb/+BPORT/x',

      '/router/default/s%62/BPORT/x',
      '/router/default/sb',
      '/router/Default/sb/BPORT/',
      '/router/default/Sb/BPORT/',
      '/router/default/-sb/BPORT/',
      '/router/default/sb/0/',
      '/router/default/sb/65536/',
      '/router/default/sb/8a/',
      '/router/',
      '/router',
      '/routerish/default/sb/BPORT/',
    ])
      await same(false, 'GET', path);
    // Path-routed: the X-Sandbox-* headers do not route.
    await same(false, 'POST', '/router/team/sb/BPORT/x', { 'X-Sandbox-ID': 'Bad_ID', 'X-Sandbox-Port': '1' });
  });

  it('routes by headers as upstream does', async () => {
    const cases: Array<Record<string, string>> = [
      { 'X-Sandbox-ID': 'sb', 'X-Sandbox-Port': 'BPORT' },
      { 'X-Sandbox-ID': 'sb', 'X-Sandbox-Namespace': 'team', 'X-Sandbox-Port': 'BPORT' },
      {},
      { 'X-Sandbox-ID': 'Sb' },
      { 'X-Sandbox-ID': 'sb', 'X-Sandbox-Namespace': 'Team' },
      { 'X-Sandbox-ID': 'sb', 'X-Sandbox-Namespace': 'a.b' },
      { 'X-Sandbox-ID': 'sb', 'X-Sandbox-Port': '0' },
      { 'X-Sandbox-ID': 'sb', 'X-Sandbox-Port': 'x' },
      { 'X-Sandbox-ID': 'sb', 'X-Sandbox-Port': 'BPORT', 'X-Sandbox-Pod-IP': '169.254.169.254' },
      { 'X-Sandbox-ID': 'sb', 'X-Sandbox-Port': 'BPORT', 'X-Sandbox-Pod-IP': 'nope' },
      { 'X-Sandbox-ID': 'sb', 'X-Sandbox-Port': 'BPORT', 'X-Sandbox-Pod-IP': '127.0.0.1' },
    ];
    for (const headers of cases) await same(false, 'GET', '/some/path?q=1', headers);
  });

  it('forwards the same headers: no credentials, its own X-Forwarded-*, Origin dropped on upgrades only', async () => {
    const h = {
      Authorization: 'Bearer secret',
      'X-Forwarded-For': '6.6.6.6',
      'X-Forwarded-Host': 'evil',
      'X-Forwarded-Proto': 'https',
      Origin: 'https://page.example',
      Cookie: 'app=1; other=2',
      'X-Custom': 'kept',
    };
    await same(false, 'GET', '/router/default/sb/BPORT/h', h);
    const up = {
      ...h,
      Connection: 'Upgrade',
      Upgrade: 'websocket',
      'Sec-WebSocket-Version': '13',
      'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==',
    };
    const a = await same(false, 'GET', '/router/default/sb/BPORT/ws?x=1', up);
    assert.equal(a.status, 101);
  });

  it('answers /healthz', async () => {
    await same(false, 'GET', '/healthz');
  });

  it('bootstraps a browser session as upstream does: cookie, redirect, then the cookie alone', async () => {
    const token = mintScopedToken(SECRET, 'team', 'sb', 600);
    const other = mintScopedToken(SECRET, 'team', 'other', 600);
    const boot = await same(true, 'GET', `/router/team/sb/BPORT/app/?a=1&token=${token}&b=%2F`);
    assert.equal(boot.status, 302);
    assert.equal(
      boot.headers['set-cookie'],
      `sid=${token}; Path=/router/team/sb/BPORT/; HttpOnly; SameSite=Lax`.replace('BPORT', String(bport)),
    );
    await same(true, 'HEAD', `/router/team/sb/BPORT/?token=${token}`);
    await same(true, 'POST', `/router/team/sb/BPORT/?token=${token}&z=1`);
    await same(true, 'GET', `/router/team/sb/BPORT/?token=${token}`, { Connection: 'Upgrade', Upgrade: 'websocket' });
    await same(true, 'GET', `/router/team/sb/BPORT/?token=${other}`);
    await same(true, 'GET', `/router/team/sb/BPORT/?token=garbage`);
    await same(true, 'GET', '/router/team/sb/BPORT/');
    for (const origin of [
      undefined,
      'https://ok.example',
      'https://ok.example:443',
      'https://evil.example',
      'SELF',
      'null',
    ])
      await same(true, 'GET', '/router/team/sb/BPORT/page', {
        Cookie: `app=1; sid=${token}; other=2`,
        ...(origin ? { Origin: origin } : {}),
      });
    await same(true, 'GET', '/router/team/sb/BPORT/page', { Cookie: `sid=${other}` });
    const ws = {
      Connection: 'Upgrade',
      Upgrade: 'websocket',
      'Sec-WebSocket-Version': '13',
      'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==',
    };
    for (const origin of ['https://ok.example', 'https://evil.example'])
      await same(true, 'GET', '/router/team/sb/BPORT/term', { ...ws, Cookie: `sid=${token}`, Origin: origin });
    await same(true, 'GET', '/router/team/sb/BPORT/page', { Authorization: `Bearer ${token}` });
    await same(true, 'GET', '/x?token=' + token, {
      'X-Sandbox-ID': 'sb',
      'X-Sandbox-Namespace': 'team',
      'X-Sandbox-Port': 'BPORT',
    });
    await same(true, 'GET', '/x', {
      Authorization: `Bearer ${token}`,
      'X-Sandbox-ID': 'sb',
      'X-Sandbox-Namespace': 'team',
      'X-Sandbox-Port': 'BPORT',
      'X-Sandbox-Pod-IP': '127.0.0.1',
    });
    await same(true, 'GET', '/x', {
      Authorization: `Bearer ${token}`,
      'X-Sandbox-ID': 'sb',
      'X-Sandbox-Namespace': 'team',
      'X-Sandbox-Port': 'BPORT',
      'X-Sandbox-UID': 'u',
    });
  });
});
