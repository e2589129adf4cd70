// A small internet for networking tests, in a network namespace of the test's own: nothing leaves
// the machine. The namespace holds the documentation addresses of "the internet" (203.0.113.0/24),
// a private-range server (192.168.213.10) and a link-local one (169.254.213.213), each serving
// HTTP (internet-servers.ts), and a DNS server for the test names; the host routes those addresses
// to it. A sandbox's engine is pointed at its DNS (ASB_DNS_SERVERS).
import { spawn, type ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { createInterface } from 'node:readline';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const INTERNET = {
  dns: '203.0.113.53',
  web: '203.0.113.10',
  pypi: '203.0.113.20',
  api: '203.0.113.30',
  private: '192.168.213.10',
  linkLocal: '169.254.213.213',
} as const;

/** Test names, as the mini internet's DNS answers them. */
export const ZONE: Record<string, string> = {
  'web.test': INTERNET.web,
  'other.test': INTERNET.web,
  'pypi.test': INTERNET.pypi,
  'files.pypi.test': INTERNET.pypi,
  'api.test': INTERNET.api,
  'private.test': INTERNET.private,
};

const NETNS = 'asb-test-internet';
const HOST_LINK = 'asbtinet0';
const HOST_END = '198.51.100.1';
const NS_END = '198.51.100.2';
const ROUTED = ['203.0.113.0/24', '192.168.213.0/24', `${INTERNET.linkLocal}/32`];

export interface MiniInternet {
  /** Host-visible addresses served over HTTP (port 80; the web server also on 8080), and HTTPS
   *  (443) on web, pypi and api. */
  addresses: typeof INTERNET;
  /** The CA that signed the servers' certificate (PEM file), for whoever must trust them. */
  caFile: string;
  /** The package in the index at https://pypi.test/simple/ (pip install asbdemo). */
  packageName: string;
  stop(): Promise<void>;
}

/** A CA and one certificate for every test name, by openssl. */
function makeCertificates(dir: string): { ca: string; cert: string; key: string } {
  const f = (n: string) => join(dir, n);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  execFileSync('openssl', ['req', '-x509', '-new', ...ec, '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', '2',
    '-subj', '/CN=mini internet CA', '-addext', 'basicConstraints=critical,CA:TRUE'], { stdio: 'ignore' }); // prettier-ignore
  const san = Object.keys(ZONE)
    .map((n) => `DNS:${n}`)
    .join(',');
  execFileSync('openssl', ['req', '-x509', '-new', ...ec, '-keyout', f('server.key'), '-out', f('server.pem'), '-days', '2',
    '-subj', '/CN=mini internet', '-addext', `subjectAltName=${san}`, '-addext', 'extendedKeyUsage=serverAuth',
    '-CA', f('ca.pem'), '-CAkey', f('ca.key')], { stdio: 'ignore' }); // prettier-ignore
  return { ca: f('ca.pem'), cert: f('server.pem'), key: f('server.key') };
}

/** A PyPI simple index with one pure-Python wheel (built by the host's python3). */
function makeIndex(dir: string, name: string): void {
  const script = String.raw`
import base64, hashlib, os, sys, zipfile
root, name = sys.argv[1], sys.argv[2]
whl = '%s-1.0-py3-none-any.whl' % name
os.makedirs(os.path.join(root, 'packages'), exist_ok=True)
files = {
  name + '/__init__.py': 'GREETING = "hello from the mini index"\n',
  name + '-1.0.dist-info/METADATA': 'Metadata-Version: 2.1\nName: %s\nVersion: 1.0\n' % name,
  name + '-1.0.dist-info/WHEEL': 'Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n',
}
record = []
path = os.path.join(root, 'packages', whl)
with zipfile.ZipFile(path, 'w') as z:
  for n, body in files.items():
    z.writestr(n, body)
    digest = base64.urlsafe_b64encode(hashlib.sha256(body.encode()).digest()).rstrip(b'=').decode()
    record.append('%s,sha256=%s,%d' % (n, digest, len(body)))
  record.append(name + '-1.0.dist-info/RECORD,,')
  z.writestr(name + '-1.0.dist-info/RECORD', '\n'.join(record) + '\n')
sha = hashlib.sha256(open(path, 'rb').read()).hexdigest()
os.makedirs(os.path.join(root, 'simple', name), exist_ok=True)
open(os.path.join(root, 'simple', 'index.html'), 'w').write('<a href="%s/">%s</a>\n' % (name, name))
open(os.path.join(root, 'simple', name, 'index.html'), 'w').write('<a href="../../packages/%s#sha256=%s">%s</a>\n' % (whl, sha, whl))
`;
  execFileSync('python3', ['-c', script, dir, name]);
}

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}
function quietly(fn: () => void): void {
  try {
    fn();
  } catch {
    /* not there */
  }
}

/** Takes down what a previous run left (a killed test), then builds the namespace and servers. */
export async function startMiniInternet(): Promise<MiniInternet> {
  const stopNetns = () => {
    for (const r of ROUTED) quietly(() => ip('route', 'del', r));
    quietly(() => ip('netns', 'del', NETNS));
    quietly(() => ip('link', 'del', HOST_LINK));
  };
  stopNetns();
  ip('netns', 'add', NETNS);
  ip('link', 'add', HOST_LINK, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', NETNS);
  ip('addr', 'add', `${HOST_END}/30`, 'dev', HOST_LINK);
  ip('link', 'set', HOST_LINK, 'up');
  ip('-n', NETNS, 'addr', 'add', `${NS_END}/30`, 'dev', 'eth0');
  ip('-n', NETNS, 'link', 'set', 'eth0', 'up');
  ip('-n', NETNS, 'link', 'set', 'lo', 'up');
  for (const a of Object.values(INTERNET)) ip('-n', NETNS, 'addr', 'add', `${a}/32`, 'dev', 'lo');
  ip('-n', NETNS, 'route', 'add', 'default', 'via', HOST_END);
  for (const r of ROUTED) ip('route', 'add', r, 'via', NS_END);

  const dir = mkdtempSync(join(tmpdir(), 'asb-internet-'));
  const certs = makeCertificates(dir);
  const packageName = 'asbdemo';
  makeIndex(join(dir, 'index'), packageName);
  const config = {
    dns: INTERNET.dns,
    zone: ZONE,
    cert: certs.cert,
    key: certs.key,
    index: join(dir, 'index'),
    http: [
      ...[INTERNET.web, INTERNET.pypi, INTERNET.api, INTERNET.private, INTERNET.linkLocal].map((address) => ({
        address,
        port: 80,
      })),
      { address: INTERNET.web, port: 8080 },
      ...[INTERNET.web, INTERNET.pypi, INTERNET.api, INTERNET.private].map((address) => ({
        address,
        port: 443,
        tls: true,
      })),
    ],
  };
  const script = join(import.meta.dirname, 'internet-servers.ts');
  const child: ChildProcess = spawn(
    'nsenter',
    [`--net=/run/netns/${NETNS}`, '--', process.execPath, '--import', 'tsx', script],
    { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, MINI_INTERNET: JSON.stringify(config) } },
  );
  await new Promise<void>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.once('line', (l) => (l === 'ready' ? resolve() : reject(new Error(`mini internet: ${l}`))));
    child.once('exit', (code) => reject(new Error(`mini internet's servers exited (${code})`)));
  });
  return {
    addresses: INTERNET,
    caFile: certs.ca,
    packageName,
    async stop() {
      child.kill('SIGKILL');
      stopNetns();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
