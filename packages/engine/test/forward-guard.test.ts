// The forward guard (host-network.ts, table inet asb_guard) against the real kernel, in network
// namespaces of its own so the host's forwarding is never touched: a "host" namespace that routes
// between three others, the guard loaded there with two of its links as the ones it had before.
// Between those two nothing is forwarded; a link made later (a kubelet's bridge, a sandbox's veth)
// is forwarded to and from either.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { guardScript } from '../src/network/host-network.ts';

const tool = (name: string) => spawnSync('sh', ['-c', `command -v ${name}`]).status === 0;
const skip =
  process.getuid?.() !== 0
    ? 'needs root (network namespaces, nftables)'
    : !tool('nft') || !tool('ip') || !tool('busybox')
      ? 'needs nft, ip and busybox'
      : undefined;

describe('the forward guard drops only between the links the host had', { skip }, () => {
  const id = randomBytes(2).toString('hex');
  const ns = (n: string) => `fg${id}${n}`;
  const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const inNs = (n: string, cmd: string[], input?: string) =>
    execFileSync('ip', ['netns', 'exec', ns(n), ...cmd], { input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
  /** One ping from namespace `from` to `to`'s address: did an answer come back? */
  const reaches = (from: string, to: string) =>
    spawnSync('ip', ['netns', 'exec', ns(from), 'busybox', 'ping', '-c', '1', '-W', '1', addr[to]!]).status === 0;
  // Three peers of the host namespace, each on a /24 of its own: a and b the host's old links, c new.
  const addr: Record<string, string> = { a: '10.251.1.2', b: '10.251.2.2', c: '10.251.3.2' };

  before(() => {
    ip('netns', 'add', ns('h'));
    for (const [n, i] of [
      ['a', 1],
      ['b', 2],
      ['c', 3],
    ] as const) {
      ip('netns', 'add', ns(n));
      ip('link', 'add', `${ns(n)}h`, 'netns', ns('h'), 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns(n));
      inNs('h', ['ip', 'addr', 'add', `10.251.${i}.1/24`, 'dev', `${ns(n)}h`]);
      inNs('h', ['ip', 'link', 'set', `${ns(n)}h`, 'up']);
      inNs(n, ['ip', 'addr', 'add', `10.251.${i}.2/24`, 'dev', 'eth0']);
      inNs(n, ['ip', 'link', 'set', 'eth0', 'up']);
      inNs(n, ['ip', 'route', 'add', 'default', 'via', `10.251.${i}.1`]);
    }
    inNs('h', ['sysctl', '-qw', 'net.ipv4.ip_forward=1']);
    inNs('h', ['nft', '-f', '-'], guardScript([`${ns('a')}h`, `${ns('b')}h`, 'lo']));
  });

  after(() => {
    for (const n of ['h', 'a', 'b', 'c']) spawnSync('ip', ['netns', 'del', ns(n)]);
  });

  it('forwards nothing between two guarded links, either way', () => {
    assert.equal(reaches('a', 'b'), false);
    assert.equal(reaches('b', 'a'), false);
  });

  it('forwards between a later link and each guarded one', () => {
    assert.equal(reaches('c', 'a'), true);
    assert.equal(reaches('a', 'c'), true);
    assert.equal(reaches('b', 'c'), true);
  });

  it("turns forwarding on guarding the links there were, and replaces an earlier engine's guard", () => {
    // ensureForwarding in a namespace of its own (/proc/sys/net is the reader's namespace's).
    inNs('h', ['sysctl', '-qw', 'net.ipv4.ip_forward=0']);
    inNs('h', ['nft', 'delete', 'table', 'inet', 'asb_guard']);
    const ensure = () =>
      inNs('h', [
        process.execPath,
        '--import',
        'tsx',
        '--input-type=module',
        '-e',
        `import pino from 'pino';
         import { ensureForwarding } from ${JSON.stringify(new URL('../src/network/host-network.ts', import.meta.url).pathname)};
         await ensureForwarding(pino({ level: 'silent' }));`,
      ]);
    const guarded = () =>
      (
        JSON.parse(inNs('h', ['nft', '-j', 'list', 'set', 'inet', 'asb_guard', 'host_links'])) as {
          nftables: Array<{ set?: { elem?: string[] } }>;
        }
      ).nftables.find((o) => o.set)!.set!.elem ?? [];
    ensure();
    assert.equal(inNs('h', ['sysctl', '-n', 'net.ipv4.ip_forward']).trim(), '1');
    assert.deepEqual(guarded().sort(), [`${ns('a')}h`, `${ns('b')}h`, `${ns('c')}h`, 'lo'].sort());
    // The form before: everything but sandboxes' links (asbv*) guarded.
    inNs('h', ['nft', 'delete', 'table', 'inet', 'asb_guard']);
    inNs(
      'h',
      ['nft', '-f', '-'],
      'table inet asb_guard {\n chain forward {\n type filter hook forward priority filter - 10; policy accept;\n' +
        ' iifname != "asbv*" oifname != "asbv*" drop\n }\n}\n',
    );
    ensure();
    assert.deepEqual(guarded().sort(), [`${ns('a')}h`, `${ns('b')}h`, `${ns('c')}h`, 'lo'].sort());
    assert.doesNotMatch(inNs('h', ['nft', 'list', 'table', 'inet', 'asb_guard']), /asbv/);
    // Run again, it changes nothing (forwarding on, the guard current).
    const before = inNs('h', ['nft', 'list', 'table', 'inet', 'asb_guard']);
    ensure();
    assert.equal(inNs('h', ['nft', 'list', 'table', 'inet', 'asb_guard']), before);
  });

  it('is what made a and b unreachable: without it the host routes between them', () => {
    inNs('h', ['nft', 'delete', 'table', 'inet', 'asb_guard']);
    assert.equal(reaches('a', 'b'), true);
  });
});
