// A small internet for networking tests, in a network namespace of the test's own: nothing leaves
// the machine. The namespace holds the documentation addresses of "the internet" (203.0.113.0/24),
// a private-range server (192.168.213.10) and a link-local one (169.254.213.213), each serving
// HTTP (internet-servers.ts), and a DNS server for the test names; the host routes those addresses
// to it. A sandbox's engine is pointed at its DNS (ASB_DNS_SERVERS).
import { spawn, type ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { createInterface } from 'node:readline';
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
  /** Host-visible addresses served over HTTP (port 80; the web server also on 8080). */
  addresses: typeof INTERNET;
  stop(): Promise<void>;
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

  const config = {
    dns: INTERNET.dns,
    zone: ZONE,
    http: [
      ...[INTERNET.web, INTERNET.pypi, INTERNET.api, INTERNET.private, INTERNET.linkLocal].map((address) => ({
        address,
        port: 80,
      })),
      { address: INTERNET.web, port: 8080 },
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
    async stop() {
      child.kill('SIGKILL');
      stopNetns();
    },
  };
}
