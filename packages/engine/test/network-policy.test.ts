// Pure parts of sandbox networking: which template governs a Sandbox and what its policy lets
// through (policy.ts), the firewall's rules for it (nft.ts), the engine's addresses
// (addresses.ts) and its DNS upstreams (dns.ts). The rules themselves are proven against the real
// kernel by test/e2e/network.test.ts.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nameHash, type Sandbox, type SandboxTemplate } from '@asb/api';
import {
  ANNOTATION_ALLOWED_DOMAINS,
  ANNOTATION_CREDENTIALS,
  addressAllowed,
  egressPolicyOf,
  MANAGED_DEFAULT_EXCEPT,
  nameAllowed,
  PolicyError,
  proxyPolicyOf,
} from '../src/network/policy.ts';
import { parseClientHello } from '../src/network/tls-hello.ts';
import { parseRecord } from '../src/network/connection-log.ts';
import { parseApplyBody } from '../src/apply.ts';
import type { EngineError } from '../src/errors.ts';
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
    const slot = new Slot('10.213.16.0/20', 'beef');
    const lines = sandboxScript(slot, 3, [{ ports: [{ protocol: 'tcp', port: 443 }] }])
      .trim()
      .split('\n');
    const rules = lines.filter((l) => l.startsWith('add rule'));
    assert.equal(
      rules[0],
      `add rule inet asb_beef sb_3 ip saddr != ${slot.sandboxEnd(3)} counter name sb_3_refused drop`,
    );
    assert.match(rules[1]!, /ct count over 1024 counter name sb_3_refused reject/, 'a cap on open connections');
    assert.match(rules[2]!, /tcp dport 443 limit rate .* log prefix "asb asb_beef 3 allowed "/);
    assert.match(rules[3]!, /tcp dport 443 counter name sb_3_allowed accept$/);
    assert.match(rules.at(-1)!, /counter name sb_3_refused reject/);
    assert.ok(lines.includes('add element inet asb_beef sandboxes { "asbvbeef3" : jump sb_3 }'));
    assert.ok(lines.includes('delete element inet asb_beef proxied { "asbvbeef3" }'), 'not proxied');
    // Proxied: nothing leaves by the kernel's rules; its ports 80 and 443 go to the proxy.
    const proxied = sandboxScript(slot, 3, [{ ports: [{ protocol: 'tcp', port: 443 }] }], true)
      .trim()
      .split('\n');
    assert.ok(!proxied.some((l) => l.includes(' accept')), proxied.join('\n'));
    assert.ok(proxied.includes('add element inet asb_beef proxied { "asbvbeef3" }'));
    assert.ok(!proxied.some((l) => l.startsWith('delete element')));
  });
});

describe('allow-lists of names and credentials (template annotations)', () => {
  const withAnnotations = (annotations: Record<string, string>) =>
    ({ ...template('t'), metadata: { name: 't', namespace: 'default', annotations } }) as SandboxTemplate;

  it('reads the names, and judges a name by them: exact, *.domain (not its apex), *', () => {
    const p = proxyPolicyOf(
      withAnnotations({ [ANNOTATION_ALLOWED_DOMAINS]: 'pypi.org, *.pythonhosted.org\nGitHub.com.' }),
    )!;
    assert.deepEqual(p.domains, ['pypi.org', '*.pythonhosted.org', 'github.com']);
    assert.ok(nameAllowed(p, 'pypi.org'));
    assert.ok(nameAllowed(p, 'files.pythonhosted.org'));
    assert.ok(nameAllowed(p, 'a.b.pythonhosted.org'));
    assert.ok(!nameAllowed(p, 'pythonhosted.org'));
    assert.ok(!nameAllowed(p, 'evilpypi.org'));
    assert.ok(!nameAllowed(p, 'pypi.org.evil.com'));
    assert.ok(nameAllowed(p, 'GITHUB.COM.'));
    assert.equal(proxyPolicyOf(template('t')), undefined);
    assert.throws(() => proxyPolicyOf(withAnnotations({ [ANNOTATION_ALLOWED_DOMAINS]: 'bad_name.com' })), PolicyError);
  });

  it("reads credentials with their defaults; their host is allowed; bad ones are refused with the field's name", () => {
    const p = proxyPolicyOf(
      withAnnotations({ [ANNOTATION_CREDENTIALS]: '[{"host":"api.test","secret":"api-token"}]' }),
    )!;
    assert.deepEqual(p.domains, ['*'], 'credentials alone allow any name');
    assert.deepEqual(p.credentials, [
      { host: 'api.test', secret: 'api-token', key: 'token', header: 'Authorization', format: 'Bearer {value}' },
    ]);
    const q = proxyPolicyOf(
      withAnnotations({
        [ANNOTATION_ALLOWED_DOMAINS]: 'pypi.test',
        [ANNOTATION_CREDENTIALS]: '[{"host":"api.test","secret":"s"}]',
      }),
    )!;
    assert.ok(nameAllowed(q, 'api.test') && nameAllowed(q, 'pypi.test') && !nameAllowed(q, 'web.test'));
    for (const bad of [
      '{}',
      'nope',
      '[{"secret":"s"}]',
      '[{"host":"a.test","secret":"s","format":"x"}]',
      '[{"host":"a.test","secret":"s","header":"a b"}]',
    ])
      assert.throws(() => proxyPolicyOf(withAnnotations({ [ANNOTATION_CREDENTIALS]: bad })), PolicyError, bad);
  });

  it('checks where a name leads against the rules: blocks, excepts, ports', () => {
    const rules = [{ to: [{ cidr: '0.0.0.0/0', except: ['10.0.0.0/8', '192.168.0.0/16'] }] }];
    assert.ok(addressAllowed(rules, '203.0.113.10', 443));
    assert.ok(!addressAllowed(rules, '192.168.1.1', 443));
    assert.ok(!addressAllowed([{ ports: [{ protocol: 'tcp', port: 80 }] }], '203.0.113.10', 443));
    assert.ok(addressAllowed([{ ports: [{ protocol: 'tcp', port: 400, endPort: 500 }] }], '203.0.113.10', 443));
    assert.ok(!addressAllowed([{ ports: [{ protocol: 'udp', port: 443 }] }], '203.0.113.10', 443));
  });
});

describe('the server name of a TLS hello', () => {
  it("reads it from a real client's first bytes, and waits for more or refuses what is not TLS", async () => {
    const server = net.createServer();
    const first = new Promise<Buffer>((resolve) =>
      server.on('connection', (s) => {
        s.once('data', (b: Buffer) => {
          resolve(b);
          s.destroy();
        });
      }),
    );
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const client = tls.connect({
      port: (server.address() as net.AddressInfo).port,
      host: '127.0.0.1',
      servername: 'PyPI.test',
    });
    client.on('error', () => undefined);
    const hello = await first;
    server.close();
    assert.deepEqual(parseClientHello(hello), { kind: 'hello', serverName: 'pypi.test' });
    assert.deepEqual(parseClientHello(hello.subarray(0, 40)), { kind: 'incomplete' });
    assert.deepEqual(parseClientHello(Buffer.from('GET / HTTP/1.1\r\n')), { kind: 'not-tls' });
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
    assert.equal(slot.indexOfSandbox(slot.sandboxEnd(7)), 7);
    assert.equal(slot.indexOfSandbox(slot.hostEnd(7)), undefined, "the host's end is no sandbox");
    assert.equal(slot.indexOfSandbox(slot.engineAddress), undefined);
    assert.equal(slot.indexOfSandbox('::1'), undefined);
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

describe("the firewall's log lines", () => {
  it("reads a connection's sandbox, verdict and destination from a kernel log message of its table only", () => {
    const msg =
      'asb asb_beef 3 refused IN=asbvbeef3 OUT=eth0 SRC=10.213.16.14 DST=192.168.213.10 LEN=60 TOS=0x00 PROTO=TCP SPT=40000 DPT=80 SYN';
    assert.deepEqual(parseRecord(msg, 'asb_beef'), {
      index: 3,
      verdict: 'refused',
      destination: '192.168.213.10',
      port: 80,
      protocol: 'tcp',
    });
    assert.equal(parseRecord(msg, 'asb_cafe'), undefined, "another engine's");
    assert.equal(parseRecord('EXT4-fs (loop8): mounted filesystem', 'asb_beef'), undefined);
    assert.equal(
      parseRecord('asb asb_beef 1 allowed IN=x DST=203.0.113.10 PROTO=ICMP TYPE=8', 'asb_beef')?.port,
      undefined,
    );
  });
});

describe('applying a template with annotations of ours', () => {
  const yaml = (annotation: string) => `apiVersion: extensions.agents.x-k8s.io/v1alpha1
kind: SandboxTemplate
metadata:
  name: t
  annotations: { ${annotation} }
spec:
  podTemplate: { spec: { containers: [{ name: main, image: python:3.11 }] } }
`;

  it('refuses a bad one before anything changes, naming the annotation', () => {
    assert.throws(
      () => parseApplyBody(yaml(`sandbox.asb.dev/allowed-domains: "pypi.org, bad_name"`)),
      (err: EngineError) =>
        err.reason === 'Invalid' &&
        err.causes[0]?.field === 'metadata.annotations[sandbox.asb.dev/allowed-domains]' &&
        /"bad_name" is not a host name/.test(err.message),
    );
    assert.throws(
      () => parseApplyBody(yaml(`sandbox.asb.dev/credentials: '[{"host":"api.test"}]'`)),
      (err: EngineError) => err.causes[0]?.field === 'metadata.annotations[sandbox.asb.dev/credentials]',
    );
    assert.equal(parseApplyBody(yaml(`sandbox.asb.dev/allowed-domains: "pypi.org"`)).length, 1);
  });
});
