// What v1.0.1's router added, over real sockets: path routing (<prefix>/<namespace>/<id>/<port>/),
// scoped tokens, the browser session (a URL parameter bootstraps an HttpOnly cookie scoped to one
// sandbox's path, then a redirect drops it from the URL), the Origin check a cookie must pass
// (plain requests and WebSocket handshakes), dial retries, and the flags. Cases from upstream's
// proxy/pathroute_test.go, browsersession_test.go, authz_test.go and retry_integration_test.go.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, WebSocket } from 'ws';
import { createRouter, type RouterOptions } from '../src/router/router.ts';
import { mintScopedToken, parsePathRoute, verifyScopedToken, scopedSecret } from '../src/router/session.ts';
import { parseDuration, parseFlags, routerConfig } from '../src/router/main.ts';

const SECRET = 'a-scoped-token-secret-that-is-32-bytes-or-more';
const ROUTER_TOKEN = 'browser-test-router-token';
const listen = (s: http.Server, port = 0) =>
  new Promise<number>((r) => s.listen(port, '127.0.0.1', () => r((s.address() as AddressInfo).port)));

interface Seen {
  url: string;
  headers: http.IncomingHttpHeaders;
}

describe('sandbox router: path routing and browser sessions (v1.0.1)', () => {
  let backendPort: number;
  const closers: Array<() => void> = [];
  const routers: Record<string, number> = {};

  const start = async (name: string, o: RouterOptions) => {
    const router = createRouter({ resolve: () => '127.0.0.1', ...o });
    routers[name] = await listen(router);
    closers.push(() => {
      router.closeAllConnections();
      router.close();
    });
  };

  before(async () => {
    // The sandbox: says what it was asked, and speaks WebSocket.
    const backend = http.createServer((req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ url: req.url, headers: req.headers }));
    });
    const wss = new WebSocketServer({ server: backend });
    wss.on('connection', (ws, req) => ws.send(JSON.stringify({ url: req.url, headers: req.headers })));
    backendPort = await listen(backend);
    closers.push(() => {
      wss.close();
      backend.closeAllConnections();
      backend.close();
    });
    await start('open', { allowUnauthenticated: true, pathRoutingPrefix: '/router' });
    await start('scoped', {
      scopedTokenSecret: SECRET,
      pathRoutingPrefix: '/router',
      cookie: { name: 'sid', queryParam: 'token', allowedOrigins: ['https://ide.example'] },
    });
    await start('token', {
      token: ROUTER_TOKEN,
      pathRoutingPrefix: '/sandboxes',
      cookie: { name: 'asb', queryParam: 'key', insecure: true, sameSite: 'strict' },
    });
  });
  after(() => closers.forEach((c) => c()));

  /** A request as a browser (or curl) sends it: the path exactly as written, no redirects followed. */
  const get = (
    router: string,
    path: string,
    headers: Record<string, string> = {},
    method = 'GET',
  ): Promise<{ status: number; headers: http.IncomingHttpHeaders; text: string; json?: unknown }> =>
    new Promise((resolve, reject) => {
      const req = http.request(
        {
          host: '127.0.0.1',
          port: routers[router],
          path: path.replaceAll('BPORT', String(backendPort)),
          method,
          headers,
        },
        (res) => {
          let text = '';
          res.on('data', (d: Buffer) => (text += d.toString()));
          res.on('end', () => {
            let json: unknown;
            try {
              json = JSON.parse(text);
            } catch {
              /* text */
            }
            resolve({ status: res.statusCode!, headers: res.headers, text, json });
          });
        },
      );
      req.on('error', reject);
      req.end();
    });
  const seen = (r: { json?: unknown }) => r.json as Seen;

  it('routes <prefix>/<namespace>/<id>/<port>/<rest> to that sandbox, the rest byte for byte', async () => {
    const r = await get('open', '/router/team/sb/BPORT/files/a%2Fb.txt?x=1&y=%20', {
      'x-sandbox-id': 'Not_Used',
      'x-sandbox-port': '1',
    });
    assert.equal(r.status, 200, r.text);
    assert.equal(seen(r).url, '/files/a%2Fb.txt?x=1&y=%20');
    assert.equal(seen(r).headers['x-sandbox-id'], undefined);
    for (const [path, url] of [
      ['/router/team/sb/BPORT', '/'],
      ['/router/team/sb/BPORT/', '/'],
      ['/router/team/sb/BPORT/?q', '/?q'],
    ] as const)
      assert.equal(seen(await get('open', path)).url, url, path);
    // Not the prefix as a path segment: the headers route it.
    assert.deepEqual((await get('open', '/routerish/team/sb/BPORT/')).json, {
      detail: 'X-Sandbox-ID header is required.',
    });
  });

  it("refuses malformed path routes with upstream's messages, never falling back to the headers", async () => {
    const headers = { 'x-sandbox-id': 'sb', 'x-sandbox-port': String(backendPort) };
    for (const [path, detail] of [
      ['/router/team/sb', 'Path-routed request must have the form <prefix>/<namespace>/<id>/<port>/...'],
      ['/router/', 'Path-routed request must have the form <prefix>/<namespace>/<id>/<port>/...'],
      ['/router/Team/sb/BPORT/', 'Invalid namespace format.'],
      ['/router/a.b/sb/BPORT/', 'Invalid namespace format.'],
      ['/router/team/sb.evil.com/BPORT/', 'Invalid sandbox ID format.'],
      ['/router/team/%2e%2e/BPORT/', 'Invalid sandbox ID format.'],
      ['/router/team/sb/0/', 'Invalid port format.'],
      ['/router/team/sb/65536/', 'Invalid port format.'],
      ['/router/team/sb/80a/', 'Invalid port format.'],
      ['/router/te%ZZ/sb/BPORT/', 'Invalid percent-encoding in path.'],
      ['/router/team/sb/BPORT/%ZZ', 'Invalid percent-encoding in path.'],
    ] as const) {
      const r = await get('open', path, headers);
      assert.deepEqual([r.status, r.json], [400, { detail }], path);
    }
    // Escaped but valid: decoded before the checks, as upstream does.
    assert.equal((await get('open', '/router/te%61m/s%62/BPORT/')).status, 200);
    assert.throws(() => createRouter({ allowUnauthenticated: true, pathRoutingPrefix: 'router' }), /must start/);
    assert.throws(() => createRouter({ allowUnauthenticated: true, pathRoutingPrefix: '/router/' }), /must not end/);
    assert.throws(() => createRouter({ allowUnauthenticated: true, pathRoutingPrefix: '/a;b' }), /printable/);
    assert.deepEqual(parsePathRoute('/r', '/rx/a/b/1', undefined), { matched: false });
  });

  it('scoped tokens open their one sandbox: 401 without a valid one, 403 for another sandbox', async () => {
    const token = mintScopedToken(SECRET, 'team', 'sb', 600);
    const bearer = { authorization: `Bearer ${token}` };
    assert.equal((await get('scoped', '/router/team/sb/BPORT/', bearer)).status, 200);
    const headerRouted = {
      ...bearer,
      'x-sandbox-id': 'sb',
      'x-sandbox-namespace': 'team',
      'x-sandbox-port': String(backendPort),
    };
    const ok = await get('scoped', '/x', headerRouted);
    assert.equal(ok.status, 200);
    assert.equal(seen(ok).headers.authorization, undefined, 'the credential never reaches the sandbox');
    for (const [path, headers, status, detail] of [
      ['/router/team/sb/BPORT/', {}, 401, 'unauthenticated'],
      ['/router/team/sb/BPORT/', { authorization: 'Bearer v1.x.y' }, 401, 'unauthenticated'],
      [
        '/router/team/sb/BPORT/',
        { authorization: `Bearer ${mintScopedToken('another-secret-that-is-32-bytes-long!!', 'team', 'sb', 600)}` },
        401,
        'unauthenticated',
      ],
      ['/router/team/other/BPORT/', bearer, 403, 'forbidden'],
      ['/router/other/sb/BPORT/', bearer, 403, 'forbidden'],
      // A pod IP or UID would pick the pod after the token was checked against the name.
      ['/x', { ...headerRouted, 'x-sandbox-pod-ip': '10.0.0.1' }, 403, 'forbidden'],
      ['/x', { ...headerRouted, 'x-sandbox-uid': 'abc' }, 403, 'forbidden'],
    ] as const) {
      const r = await get('scoped', path, headers);
      assert.deepEqual([r.status, r.json], [status, { detail }], `${path} ${JSON.stringify(headers)}`);
    }
    assert.equal(
      verifyScopedToken(scopedSecret(SECRET), mintScopedToken(SECRET, 'a', 'b', 1), Date.now() / 1000 + 5),
      undefined,
      'expired',
    );
    assert.throws(() => scopedSecret('short\n'), /at least 32 bytes/);
  });

  it('bootstraps a session: an HttpOnly cookie for this sandbox only, and a redirect without the token', async () => {
    const token = mintScopedToken(SECRET, 'team', 'sb', 600);
    const boot = await get('scoped', `/router/team/sb/BPORT/app/?a=1&token=${token}&b=%2F`);
    assert.equal(boot.status, 302);
    assert.equal(boot.headers.location, `/router/team/sb/${backendPort}/app/?a=1&b=%2F`);
    assert.deepEqual(boot.headers['set-cookie'], [
      `sid=${token}; Path=/router/team/sb/${backendPort}/; HttpOnly; Secure; SameSite=Lax`,
    ]);
    assert.equal(boot.headers['cache-control'], 'no-store');
    // The only parameter: no "?" left.
    assert.equal(
      (await get('scoped', `/router/team/sb/BPORT/?token=${token}`)).headers.location,
      `/router/team/sb/${backendPort}/`,
    );
    // HEAD too; not a POST (its body would be lost), nor a WebSocket (it cannot follow a redirect):
    // those go through, the token taken out of the URL the sandbox sees.
    assert.equal((await get('scoped', `/router/team/sb/BPORT/?token=${token}`, {}, 'HEAD')).status, 302);
    const post = await get('scoped', `/router/team/sb/BPORT/p?token=${token}&z=1`, {}, 'POST');
    assert.deepEqual([post.status, seen(post).url], [200, '/p?z=1']);
    // A bad token sets nothing.
    const bad = await get('scoped', '/router/team/sb/BPORT/?token=v1.nope.nope');
    assert.deepEqual([bad.status, bad.headers['set-cookie']], [401, undefined]);
    // Header-routed requests are authorized by the parameter but never bootstrapped: no cookie path fits them.
    const hdr = await get('scoped', `/q?token=${token}&k=v`, {
      'x-sandbox-id': 'sb',
      'x-sandbox-namespace': 'team',
      'x-sandbox-port': String(backendPort),
    });
    assert.deepEqual([hdr.status, seen(hdr).url], [200, '/q?k=v']);
  });

  it('the redirect stays on this router, whatever the path (no open redirect)', async () => {
    const token = mintScopedToken(SECRET, 'team', 'sb', 600);
    for (const rest of [
      '../../../../\\evil.com',
      '..//..//..//..//evil.com',
      '%2F%2Fevil.com',
      '../../../..//evil.com/',
    ]) {
      const r = await get('scoped', `/router/team/sb/BPORT/${rest}?token=${token}`);
      const loc = r.headers.location ?? '';
      assert.equal(r.status, 302, rest);
      assert.ok(loc.startsWith('/') && !loc.startsWith('//') && !loc.startsWith('/\\'), `${rest} → ${loc}`);
      assert.ok(!loc.includes(token), loc);
      assert.doesNotMatch(new URL(loc, 'https://router.example').host, /evil/);
    }
  });

  it('serves the cookie, strips it before the sandbox, and checks the Origin of a cookie-borne credential', async () => {
    const token = mintScopedToken(SECRET, 'team', 'sb', 600);
    const cookie = `app=1; sid=${token}; theme=dark`;
    const self = `http://127.0.0.1:${routers.scoped}`;
    for (const origin of [undefined, self, 'https://ide.example', 'https://ide.example:443']) {
      const r = await get('scoped', '/router/team/sb/BPORT/page', { cookie, ...(origin ? { origin } : {}) });
      assert.equal(r.status, 200, `${origin}: ${r.text}`);
      assert.equal(seen(r).headers.cookie, 'app=1; theme=dark', 'the app keeps its cookies, not ours');
    }
    for (const origin of ['https://evil.example', 'null', 'https://127.0.0.1:' + routers.scoped]) {
      const r = await get('scoped', '/router/team/sb/BPORT/page', { cookie, origin });
      assert.deepEqual(
        [r.status, r.json],
        [403, { detail: 'origin not allowed for cookie-authenticated request' }],
        origin,
      );
    }
    // A header credential is not ambient: no Origin check.
    const h = await get('scoped', '/router/team/sb/BPORT/page', {
      authorization: `Bearer ${token}`,
      origin: 'https://evil.example',
    });
    assert.equal(h.status, 200);
    // sandbox A's cookie at sandbox B's path (a browser would not send it; a script could): 403.
    assert.equal((await get('scoped', '/router/team/other/BPORT/', { cookie })).status, 403);
  });

  it('carries a WebSocket on the cookie alone, without Origin to the sandbox; refuses a foreign page', async () => {
    const token = mintScopedToken(SECRET, 'team', 'sb', 600);
    const open = (origin: string) =>
      new Promise<{ status: number; first?: Seen }>((resolve, reject) => {
        const ws = new WebSocket(`ws://127.0.0.1:${routers.scoped}/router/team/sb/${backendPort}/term?cols=80`, {
          headers: { cookie: `sid=${token}`, origin },
        });
        ws.on('message', (m) => {
          resolve({ status: 101, first: JSON.parse((m as Buffer).toString()) as Seen });
          ws.close();
        });
        ws.on('unexpected-response', (_q, res) => resolve({ status: res.statusCode! }));
        ws.on('error', reject);
      });
    const ok = await open('https://ide.example');
    assert.equal(ok.status, 101);
    assert.equal(ok.first!.url, '/term?cols=80');
    assert.equal(ok.first!.headers.origin, undefined);
    assert.equal(ok.first!.headers.cookie, undefined);
    assert.equal((await open('https://evil.example')).status, 403);
  });

  it('the router token works as a session too (ours), with the SameSite and Secure chosen', async () => {
    const boot = await get('token', `/sandboxes/team/sb/BPORT/?key=${ROUTER_TOKEN}`);
    assert.deepEqual(boot.headers['set-cookie'], [
      `asb=${ROUTER_TOKEN}; Path=/sandboxes/team/sb/${backendPort}/; HttpOnly; SameSite=Strict`,
    ]);
    const r = await get('token', '/sandboxes/team/sb/BPORT/x', { cookie: `asb=${ROUTER_TOKEN}` });
    assert.equal(r.status, 200);
    assert.equal((await get('token', '/sandboxes/team/sb/BPORT/x', { cookie: 'asb=wrong' })).status, 401);
  });

  it('refuses session settings that would be unsafe or do nothing, as upstream does', () => {
    const base = { token: 't', pathRoutingPrefix: '/r' };
    assert.throws(() => createRouter({ token: 't', cookie: { name: 'sid' } }), /requires --path-routing-prefix/);
    assert.throws(
      () => createRouter({ allowUnauthenticated: true, pathRoutingPrefix: '/r', cookie: { name: 'sid' } }),
      /no effect without authentication/,
    );
    assert.throws(() => createRouter({ ...base, cookie: { name: 'a b' } }), /cookie-name/);
    assert.throws(
      () => createRouter({ ...base, cookie: { name: 'sid', sameSite: 'none', insecure: true } }),
      /incompatible/,
    );
    assert.throws(
      () => createRouter({ ...base, cookie: { name: 'sid', allowedOrigins: ['https://x.example/path'] } }),
      /scheme:\/\/host/,
    );
  });

  it('retries a dial that fails until the sandbox listens, and says 502 when it never does', async () => {
    const late = http.createServer((_q, s) => s.end('late but here'));
    const probe = http.createServer();
    const port = await listen(probe);
    await new Promise((r) => probe.close(r));
    const router = createRouter({ allowUnauthenticated: true, resolve: () => '127.0.0.1', pathRoutingPrefix: '/r' });
    const noRetry = createRouter({ allowUnauthenticated: true, resolve: () => '127.0.0.1', retries: { max: 0 } });
    const [rp, np] = [await listen(router), await listen(noRetry)];
    try {
      setTimeout(() => void listen(late, port), 300);
      const t0 = Date.now();
      const r = await fetch(`http://127.0.0.1:${rp}/r/default/sb/${port}/`);
      assert.deepEqual([r.status, await r.text()], [200, 'late but here']);
      assert.ok(Date.now() - t0 >= 300);
      // WebSocket dials are retried the same way; with no retries, a closed port is 502 at once.
      await new Promise((r) => late.close(r));
      const dead = await fetch(`http://127.0.0.1:${np}/`, {
        headers: { 'x-sandbox-id': 'sb', 'x-sandbox-port': String(port) },
      });
      assert.deepEqual(
        [dead.status, await dead.json()],
        [502, { detail: 'Could not connect to the backend sandbox: sb' }],
      );
    } finally {
      for (const s of [router, noRetry, late]) {
        s.closeAllConnections();
        s.close();
      }
    }
  });

  it("takes upstream's flags, and refuses those it cannot honour", () => {
    assert.deepEqual(
      [...parseFlags(['--path-routing-prefix', '/r', '-authz-cookie-insecure', '--cache-enabled=true', 'rest'])],
      [
        ['path-routing-prefix', '/r'],
        ['authz-cookie-insecure', 'true'],
        ['cache-enabled', 'true'],
      ],
    );
    assert.equal(parseDuration('1m30s'), 90_000);
    assert.equal(parseDuration('200ms'), 200);
    const c = routerConfig(
      [
        '--http-bind-address=:9000',
        '--health-probe-bind-address=127.0.0.1:9001',
        '--proxy-timeout=2m',
        '--upstream-max-retries=5',
        '--upstream-retry-initial-delay=100ms',
        '--path-routing-prefix=/router',
        '--authz-cookie-name=sid',
        '--authz-cookie-query-param=token',
        '--authz-cookie-allowed-origins=https://a.example, https://b.example',
        '--metrics-bind-address=:9090',
        '--cache-enabled=true',
      ],
      { ROUTER_AUTH_TOKEN: 't' },
    );
    assert.deepEqual(c.listen, { host: '0.0.0.0', port: 9000 });
    assert.deepEqual(c.probes, { host: '127.0.0.1', port: 9001 });
    assert.equal(c.options.proxyTimeoutS, 120);
    assert.deepEqual(c.options.retries, { max: 5, initialDelayMs: 100 });
    assert.deepEqual(c.options.cookie?.allowedOrigins, ['https://a.example', 'https://b.example']);
    assert.deepEqual(c.ignored, ['metrics-bind-address', 'cache-enabled']);
    for (const [args, err] of [
      [['--https-bind-address=:8443'], /TLS/],
      [['--authz-mode=tokenreview'], /tokenreview/],
      [['--authz-mode=scoped-token'], /secret-file is required/],
      [['--authz-cookie-query-param=t'], /requires --authz-cookie-name/],
      [['--max-request-body-bytes=10'], /not supported/],
      [['--no-such-flag'], /not defined/],
    ] as const)
      assert.throws(() => routerConfig([...args], { ROUTER_AUTH_TOKEN: 't' }), err, args.join(' '));
    assert.equal(routerConfig(['--authz-mode=allow-all'], {}).options.allowUnauthenticated, true);
    // With a token set it is enforced all the same, as upstream's Python router does.
    assert.equal(routerConfig([], { ALLOW_UNAUTHENTICATED_ROUTER: 'true' }).options.allowUnauthenticated, true);
    for (const [args, env] of [
      [[], { ALLOW_UNAUTHENTICATED_ROUTER: 'true', ROUTER_AUTH_TOKEN: 't' }],
      [['--authz-mode=allow-all'], { ROUTER_AUTH_TOKEN: 't' }],
    ] as const)
      assert.equal(routerConfig([...args], env).options.allowUnauthenticated, false, JSON.stringify(env));
  });
});
