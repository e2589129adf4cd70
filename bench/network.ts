// npm run bench:network: what networking costs a sandbox, against a small internet in a network
// namespace made for the run (test/e2e/support/mini-internet.ts), all in one run:
//   cold create → first command result, an offline template against a networked one (the
//   namespace, veth pair and firewall rules a networked start adds);
//   an HTTP request's round trip from a sandbox to a server in the namespace (through gVisor's
//   netstack, the veth, the firewall and NAT), against the same request from the host (no
//   sandbox, no firewall: the floor), each a loop of kept-alive requests timed where it runs;
//   a 100 MB download through the same path (MB/s), against the host's;
//   both again through the egress proxy (a template with an allow-list of names): plain HTTP
//   (each request judged by its Host and forwarded) and HTTPS (passed through by its SNI).
// Needs root. BENCH_NET_N (default 10) cold creates each; BENCH_NET_REQUESTS (500) requests.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { ANNOTATION_ALLOWED_DOMAINS, Engine, applyObjects, unmountAll } from '@asb/engine';
import { Sandbox } from '@asb/sdk';
import type { NetworkPolicySpec } from '@asb/api';
import { percentile, table } from './stats.ts';
import { startMiniInternet, INTERNET } from '../test/e2e/support/mini-internet.ts';

const N = Number(process.env.BENCH_NET_N ?? 10);
const REQUESTS = Number(process.env.BENCH_NET_REQUESTS ?? 500);
const DOWNLOAD_MB = Number(process.env.BENCH_NET_DOWNLOAD_MB ?? 100);
const ms = (n: number) => `${n.toFixed(2)} ms`;

/** Run in the sandbox: REQUESTS kept-alive GETs (each one's ms), then the download's MB/s; over
 *  TLS when a CA file is given. */
const CLIENT = String.raw`
import http.client, json, ssl, sys, time
host, n, mb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
if len(sys.argv) > 4:
    c = http.client.HTTPSConnection(host, 443, timeout=10, context=ssl.create_default_context(cafile=sys.argv[4]))
else:
    c = http.client.HTTPConnection(host, 80, timeout=10)
times = []
for i in range(n):
    t0 = time.perf_counter()
    c.request('GET', '/small')
    c.getresponse().read()
    times.append((time.perf_counter() - t0) * 1000)
t0 = time.perf_counter()
c.request('GET', '/bytes/%d' % (mb << 20))
r = c.getresponse()
got = 0
while True:
    b = r.read(1 << 20)
    if not b: break
    got += len(b)
secs = time.perf_counter() - t0
print(json.dumps({'times': times, 'mbps': got / 1e6 / secs, 'bytes': got}))
`;

async function fromHost(): Promise<{ times: number[]; mbps: number }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const get = (path: string) =>
    new Promise<number>((resolve, reject) => {
      http
        .get({ host: INTERNET.web, port: 80, path, agent }, (res) => {
          let n = 0;
          res.on('data', (c: Buffer) => (n += c.length));
          res.on('end', () => resolve(n));
        })
        .on('error', reject);
    });
  const times: number[] = [];
  for (let i = 0; i < REQUESTS; i++) {
    const t0 = performance.now();
    await get('/small');
    times.push(performance.now() - t0);
  }
  const t0 = performance.now();
  const got = await get(`/bytes/${DOWNLOAD_MB << 20}`);
  const mbps = got / 1e6 / ((performance.now() - t0) / 1000);
  agent.destroy();
  return { times, mbps };
}

async function main(): Promise<void> {
  const net = await startMiniInternet();
  process.env.ASB_DNS_SERVERS = INTERNET.dns;
  process.env.ASB_HOST_IMAGES ??= '1';
  const home = mkdtempSync(join(tmpdir(), 'asb-bench-net-'));
  const engine = new Engine({ home, port: 0, driver: 'gvisor', hostImages: true }, pino({ level: 'warn' }));
  await engine.start();
  const conn = { url: engine.url, token: engine.bearerToken };
  try {
    const template = (name: string, networkPolicy?: NetworkPolicySpec) => ({
      apiVersion: 'extensions.agents.x-k8s.io/v1beta1' as const,
      kind: 'SandboxTemplate' as const,
      metadata: { name, namespace: 'default' },
      spec: {
        podTemplate: { spec: { containers: [{ name: 'main', image: 'python:3.11' }] } },
        networkPolicyManagement: 'Managed' as const,
        envVarsInjectionPolicy: 'Disallowed' as const,
        volumeClaimTemplatesPolicy: 'Disallowed' as const,
        ...(networkPolicy ? { networkPolicy } : {}),
      },
    });
    await applyObjects(engine.store, [
      template('offline', { egress: [] }),
      template('networked'),
      {
        ...template('proxied'),
        metadata: { name: 'proxied', namespace: 'default', annotations: { [ANNOTATION_ALLOWED_DOMAINS]: 'web.test' } },
      },
    ]);

    // Cold starts, alternating so that neither gets the quieter moments.
    const cold: Record<string, number[]> = { offline: [], networked: [] };
    for (let i = 0; i < N; i++) {
      for (const name of ['offline', 'networked']) {
        const t0 = performance.now();
        const sb = await Sandbox.create({ ...conn, template: name });
        await sb.run('true');
        cold[name]!.push(performance.now() - t0);
        await sb.kill();
      }
    }

    const client = async (template: string, tls: boolean) => {
      const sb = await Sandbox.create({ ...conn, template });
      await sb.files.write('client.py', CLIENT);
      await sb.files.write('ca.pem', readFileSync(net.caFile));
      const r = await sb.run(`python3 client.py web.test ${REQUESTS} ${DOWNLOAD_MB}${tls ? ' ca.pem' : ''}`, {
        timeoutMs: 300_000,
      });
      await sb.kill();
      if (r.exitCode !== 0) throw new Error(`the client in the sandbox failed: ${r.stderr}`);
      return JSON.parse(r.stdout) as { times: number[]; mbps: number };
    };
    const direct = await client('networked', false);
    const directTls = await client('networked', true);
    const proxiedHttp = await client('proxied', false);
    const proxiedTls = await client('proxied', true);
    const host = await fromHost();

    console.log(`\nnpm run bench:network — ${new Date().toISOString()}; runsc ${engine.config.runscPath}`);
    console.log(`  cold creates: ${N} each; requests: ${REQUESTS} kept alive; download: ${DOWNLOAD_MB} MiB`);
    const p = (v: number[]) => `${ms(percentile(v, 50))} (p95 ${ms(percentile(v, 95))})`;
    console.log(
      table(
        ['measure', 'result', 'floor / reference'],
        [
          [
            'cold create → first command, networked template',
            p(cold.networked!),
            `offline template: ${p(cold.offline!)}`,
          ],
          [
            'HTTP request round trip, sandbox → server in a namespace (firewall, NAT)',
            p(direct.times),
            `the same from the host: ${p(host.times)}`,
          ],
          ['the same through the egress proxy (allow-list; judged by Host)', p(proxiedHttp.times), ''],
          [
            'HTTPS request through the egress proxy (passed through by SNI)',
            p(proxiedTls.times),
            `HTTPS without the proxy: ${p(directTls.times)}`,
          ],
          [
            `${DOWNLOAD_MB} MiB download, sandbox ← server (firewall, NAT)`,
            `${direct.mbps.toFixed(1)} MB/s`,
            `the same to the host: ${host.mbps.toFixed(1)} MB/s`,
          ],
          [`the same through the egress proxy, HTTP`, `${proxiedHttp.mbps.toFixed(1)} MB/s`, ''],
          [
            `the same through the egress proxy, HTTPS`,
            `${proxiedTls.mbps.toFixed(1)} MB/s`,
            `HTTPS without the proxy: ${directTls.mbps.toFixed(1)} MB/s`,
          ],
        ],
      ),
    );
  } finally {
    await engine.stop({ deleteAll: true });
    await unmountAll(home);
    rmSync(home, { recursive: true, force: true });
    await net.stop();
  }
}

await main();
