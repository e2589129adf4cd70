// Pure parts of sandbox networking: which template governs a Sandbox and what its policy lets
// through (policy.ts), the firewall's rules for it (nft.ts), the engine's addresses
// (addresses.ts) and its DNS upstreams (dns.ts). The rules themselves are proven against the real
// kernel by test/e2e/network.test.ts.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nameHash, type Sandbox, type SandboxTemplate } from '@asb/api';
import { egressPolicyOf, MANAGED_DEFAULT_EXCEPT } from '../src/network/policy.ts';
import { ruleLines, sandboxScript } from '../src/network/nft.ts';
import { Slot, inCidr, slotsOf } from '../src/network/addresses.ts';
import { upstreamServers } from '../src/network/dns.ts';

function template(name: string, spec: Partial<SandboxTemplate['spec']> = {}): SandboxTemplate {
  return {
    apiVersion: 'extensions.agents.x-k8s.io/v1beta1',
    kind: 'SandboxTemplate',
    metadata: { name, namespace: 'default' },
    spec: { podTemplate: { spec: { containers: [] } }, networkPolicyManagement: 'Managed', ...spec },
  } as unknown as SandboxTemplate;
}
function sandbox(templateName?: string, namespace = 'default'): Sandbox {
  const labels = templateName ? { 'agents.x-k8s.io/sandbox-template-ref-hash': nameHash(templateName) } : {};
  return {
    metadata: { name: 'sb', namespace },
    spec: { podTemplate: { metadata: { labels }, spec: { containers: [] } } },
  } as unknown as Sandbox;
}

describe('egressPolicyOf', () => {
  it("gives a Managed template without rules upstream's default: anywhere but private ranges and link-local", () => {
    const p = egressPolicyOf(sandbox('t'), [template('t')]);
    assert.equal(p.kind, 'egress');
    if (p.kind !== 'egress') return;
    assert.equal(p.source, 'managed-default');
    assert.deepEqual(p.rules, [{ to: [{ cidr: '0.0.0.0/0', except: [...MANAGED_DEFAULT_EXCEPT] }] }]);
  });

  it('keeps offline what no template governs, an Unmanaged template, an empty egress list, another namespace', () => {
    assert.equal(egressPolicyOf(sandbox(), [template('t')]).kind, 'offline');
    assert.equal(
      egressPolicyOf(sandbox('t'), [template('t', { networkPolicyManagement: 'Unmanaged' })]).kind,
      'offline',
    );
    assert.equal(egressPolicyOf(sandbox('t'), [template('t', { networkPolicy: { egress: [] } })]).kind, 'offline');
    assert.equal(egressPolicyOf(sandbox('t'), [template('t', { networkPolicy: {} })]).kind, 'offline');
    assert.equal(egressPolicyOf(sandbox('t', 'other'), [template('t')]).kind, 'offline');
  });

  it('takes custom rules as they are, and says what cannot match on one machine instead of widening it', () => {
    const p = egressPolicyOf(sandbox('t'), [
      template('t', {
        networkPolicy: {
          egress: [
            {
              to: [{ ipBlock: { cidr: '203.0.113.0/24', except: ['203.0.113.20/32'] } }, { podSelector: {} }],
              ports: [
                { port: 443 },
                { protocol: 'UDP', port: 53 },
                { port: 'http' },
                { protocol: 'TCP', port: 8000, endPort: 8100 },
              ],
            },
            { to: [{ namespaceSelector: {} }] },
            { to: [{ ipBlock: { cidr: '::/0' } }] },
          ],
        },
      }),
    ]);
    assert.equal(p.kind, 'egress');
    if (p.kind !== 'egress') return;
    assert.deepEqual(p.rules, [
      {
        to: [{ cidr: '203.0.113.0/24', except: ['203.0.113.20/32'] }],
        ports: [
          { protocol: 'tcp', port: 443, endPort: undefined },
          { protocol: 'udp', port: 53, endPort: undefined },
          { protocol: 'tcp', port: 8000, endPort: 8100 },
        ],
      },
    ]);
    assert.equal(p.ignored.length, 4, p.ignored.join('\n'));
  });

  it('denies all when every rule can match nothing here', () => {
    const p = egressPolicyOf(sandbox('t'), [
      template('t', { networkPolicy: { egress: [{ to: [{ podSelector: {} }] }] } }),
    ]);
    assert.equal(p.kind, 'offline');
  });
});

describe('the firewall rules of a sandbox', () => {
  it('lets any block with any of the ports through: one line per pair, excepts on their own block', () => {
    assert.deepEqual(
      ruleLines({
        to: [
          { cidr: '0.0.0.0/0', except: ['10.0.0.0/8'] },
          { cidr: '10.1.0.0/16', except: [] },
        ],
        ports: [{ protocol: 'tcp', port: 80 }, { protocol: 'udp' }],
      }),
      [
        'ip daddr 0.0.0.0/0 ip daddr != { 10.0.0.0/8 } tcp dport 80',
        'ip daddr 0.0.0.0/0 ip daddr != { 10.0.0.0/8 } meta l4proto udp',
        'ip daddr 10.1.0.0/16 tcp dport 80',
        'ip daddr 10.1.0.0/16 meta l4proto udp',
      ],
    );
    assert.deepEqual(ruleLines({}), ['meta nfproto ipv4']);
    assert.deepEqual(ruleLines({ ports: [{ protocol: 'tcp', port: 8000, endPort: 8100 }] }), [
      'meta nfproto ipv4 tcp dport 8000-8100',
    ]);
  });

  it("ends each sandbox's chain in a counted refusal, and maps its link to it", () => {
    const script = sandboxScript(new Slot('10.213.16.0/20', 'beef'), 3, [{ ports: [{ protocol: 'tcp', port: 443 }] }]);
    const lines = script.trim().split('\n');
    assert.match(
      lines.find((l) => l.includes('dport 443'))!,
      /counter name sb_3_allowed accept$/,
    );
    assert.match(lines.at(-2)!, /counter name sb_3_refused reject/);
    assert.equal(lines.at(-1), 'add element inet asb_beef sandboxes { "asbvbeef3" : jump sb_3 }');
  });
});

describe("the engine's addresses", () => {
  it('gives each engine a /20 of the pool, its own first, and each sandbox a /30 in it', () => {
    const slots = slotsOf('10.213.0.0/16', 'beef');
    assert.equal(slots.length, 16);
    assert.equal(new Set(slots).size, 16);
    const slot = new Slot(slots[0]!, 'beef');
    assert.ok(inCidr(slot.engineAddress, slot.cidr));
    assert.equal(
      slot.hostEnd(1),
      slot.sandboxEnd(1).replace(/\d+$/, (n) => String(Number(n) - 1)),
    );
    assert.ok(inCidr(slot.sandboxEnd(slot.capacity), slot.cidr));
    assert.ok(slot.hostLink(slot.capacity).length <= 15, 'a link name fits the kernel');
    assert.throws(() => slotsOf('10.213.0.0/24', 'beef'), /smaller than one/);
  });
});

describe('DNS upstreams', () => {
  it('takes ASB_DNS_SERVERS, else the IPv4 nameservers of resolv.conf', () => {
    assert.deepEqual(upstreamServers('203.0.113.53, 10.0.0.1:5353'), [
      { host: '203.0.113.53', port: 53 },
      { host: '10.0.0.1', port: 5353 },
    ]);
    const dir = mkdtempSync(join(tmpdir(), 'asb-resolv-'));
    writeFileSync(join(dir, 'resolv.conf'), '# x\nnameserver 127.0.0.53\nnameserver ::1\nsearch lan\n');
    assert.deepEqual(upstreamServers(undefined, join(dir, 'resolv.conf')), [{ host: '127.0.0.53', port: 53 }]);
  });
});
