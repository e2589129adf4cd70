// What the engine and its workloads see of networking: whether a Sandbox is networked (its
// template's policy, policy.ts), its attachment while it runs (host-network.ts), who each address
// is (for the DNS server and the egress proxy, which judge by the asker's policy), and the logs
// and metrics of what sandboxes reach. Without host networking (ASB_NETWORK=off, or a host that
// cannot), a Sandbox whose template allows egress does not start: it would otherwise run offline
// while its template says online.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Sandbox } from '@asb/api';
import { EngineError } from '../errors.ts';
import { resolvConf } from '../image-root.ts';
import { AGENT_MOUNT, type SandboxNetworkSpec } from '../drivers/runtime-spec.ts';
import type { EngineConfig } from '../config.ts';
import type { EngineMetrics } from '../metrics.ts';
import type { SqliteStore } from '../store/sqlite-store.ts';
import { HostNetwork, type NetworkAttachment } from './host-network.ts';
import { ConnectionLog, type FirewallRecord } from './connection-log.ts';
import { upstreamServers, type DnsQuery } from './dns.ts';
import { EgressProxy, type ProxiedSandbox, type ProxyVerdict } from './egress-proxy.ts';
import { EngineCa, caEnv } from './engine-ca.ts';
import { describePolicy, egressPolicyOf, nameAllowed, PolicyError, type EgressPolicy } from './policy.ts';

/** The CA bundle sandboxes with credentials trust, in the agent's directory (public certificates). */
const CA_BUNDLE = 'egress-ca.pem';

export interface NetworkingDeps {
  config: EngineConfig;
  store: Pick<SqliteStore, 'listSync'>;
  log: Logger;
  metrics: EngineMetrics;
  /** The agent's directory on the host (mounted at AGENT_MOUNT in every sandbox). */
  agentDir: string;
  /** Whether the driver runs networked sandboxes on gVisor's own stack (else said in the log). */
  netstack: boolean;
}

export interface Attached {
  attachment: NetworkAttachment;
  spec: SandboxNetworkSpec;
  /** Environment the sandbox needs (the CA bundle's variables, with credentials). */
  env: Record<string, string>;
}

interface Owner {
  namespace: string;
  name: string;
  policy: EgressPolicy;
}

export class SandboxNetworking {
  /** The sandbox and policy of each attachment index. */
  private readonly owners = new Map<number, Owner>();
  private host?: HostNetwork;
  private unavailable?: string;
  private caLoaded?: Promise<EngineCa>;
  private connections?: ConnectionLog;

  private constructor(private readonly d: NetworkingDeps) {}

  /**
   * Brings host networking up as ASB_NETWORK says. `auto` goes on without it where the host
   * cannot (not root, no nft): such sandboxes then fail to start with the reason.
   */
  static async start(d: NetworkingDeps): Promise<SandboxNetworking> {
    const n = new SandboxNetworking(d);
    const { config, log } = d;
    if (config.network === 'off') {
      n.unavailable = 'ASB_NETWORK=off';
      return n;
    }
    const upstream = upstreamServers(config.dnsServers);
    try {
      n.host = await HostNetwork.start({
        home: config.home,
        pool: config.networkPool,
        upstream,
        log,
        dnsAllow: (q) => n.dnsAllows(q),
        onDnsQuery: (q, verdict) => n.dnsQueried(q, verdict),
        proxy: (address) =>
          new EgressProxy({
            address,
            upstream,
            sandboxAt: (a) => n.proxiedAt(a),
            ca: () => n.ca(),
            home: config.home,
            upstreamCa: config.egressCaFile ? readFileSync(config.egressCaFile, 'utf8') : undefined,
            onConnection: (v) => n.proxied(v),
            log,
          }),
      });
      n.connections = new ConnectionLog(n.host.slot.table, (r) => n.firewalled(r), log);
      n.connections.start();
      if (!d.netstack)
        log.warn(
          "this runsc's own network stack refuses this kernel: networked sandboxes use the host kernel's, in their own namespace",
        );
    } catch (err) {
      if (config.network === 'on')
        throw new Error(`sandbox networking (ASB_NETWORK=on): ${(err as Error).message}`, { cause: err });
      const why = (err as Error).message.split('\n').filter(Boolean).slice(0, 3).join(': ');
      n.unavailable = `the host's networking could not be set up (${why})`;
      log.warn({ reason: n.unavailable }, 'sandbox networking off: templates that allow egress will not start');
    }
    return n;
  }

  policyOf(sb: Sandbox): EgressPolicy {
    try {
      return egressPolicyOf(sb, this.d.store.listSync('SandboxTemplate', { namespace: sb.metadata.namespace }));
    } catch (err) {
      if (err instanceof PolicyError) throw new EngineError('Invalid', err.message);
      throw err;
    }
  }

  /**
   * Networking for a sandbox about to start in `dir`: undefined when its policy is offline, else
   * its attachment and what the driver needs of it. Throws when its policy wants egress that this
   * engine cannot give.
   */
  async attach(sb: Sandbox, dir: string): Promise<Attached | undefined> {
    const policy = this.policyOf(sb);
    if (policy.kind === 'offline') return undefined;
    if (!this.host) {
      throw new EngineError(
        'Invalid',
        `template ${policy.template} allows egress, but this engine has no sandbox networking: ${this.unavailable}`,
      );
    }
    const at = { sandbox: sb.metadata.name, namespace: sb.metadata.namespace };
    if (policy.ignored.length)
      this.d.log.warn({ ...at, ignored: policy.ignored }, 'egress rules that match nothing here');
    const env = policy.proxy?.credentials.length ? await this.credentialEnv() : {};
    const attachment = await this.host.attach(dir, policy);
    this.owners.set(attachment.index, { namespace: sb.metadata.namespace, name: sb.metadata.name!, policy });
    const resolv = join(dir, 'resolv.conf');
    writeFileSync(resolv, resolvConf(attachment.dns));
    this.d.log.info({ ...at, address: attachment.address, policy: describePolicy(policy) }, 'sandbox networked');
    return { attachment, spec: { netnsPath: `/run/netns/${attachment.netns}`, resolvConf: resolv }, env };
  }

  /** The resolver a sandbox's /etc/resolv.conf names: the engine's DNS when it is networked. */
  nameserverFor(sb: Sandbox): string | undefined {
    return this.host && this.policyOf(sb).kind === 'egress' ? this.host.slot.engineAddress : undefined;
  }

  async detach(dir: string, a: NetworkAttachment): Promise<void> {
    this.owners.delete(a.index);
    await this.host?.detach(dir, a);
  }

  /** A sandbox left running by a previous engine: its attachment kept, its rules as its template
   *  says now. */
  async adopt(sb: Sandbox, dir: string): Promise<NetworkAttachment | undefined> {
    const policy = this.policyOf(sb);
    const a = await this.host?.adopt(dir, policy);
    if (a) this.owners.set(a.index, { namespace: sb.metadata.namespace, name: sb.metadata.name!, policy });
    return a;
  }

  /**
   * A template of `namespace` changed (or went): the running sandboxes it governs get its rules
   * now, as a NetworkPolicy's change applies to running pods. One that its template no longer
   * lets out loses its way out at once; one that was offline gets a network at its next start
   * (a namespace cannot be given to a running sandbox).
   */
  async refresh(namespace: string, sandboxOf: (name: string) => Sandbox | undefined): Promise<void> {
    if (!this.host) return;
    for (const [index, owner] of [...this.owners]) {
      if (owner.namespace !== namespace) continue;
      const sb = sandboxOf(owner.name);
      const a = this.host.attachmentAt(index);
      if (!sb || !a) continue;
      let policy: EgressPolicy;
      try {
        policy = this.policyOf(sb);
      } catch (err) {
        policy = { kind: 'offline', why: (err as Error).message };
      }
      if (JSON.stringify(policy) === JSON.stringify(owner.policy)) continue;
      owner.policy = policy;
      await this.host.update(a, policy);
      this.d.log.info(
        { sandbox: owner.name, namespace, policy: describePolicy(policy) },
        'sandbox egress policy changed',
      );
    }
  }

  /** After recovery: what no running sandbox holds goes. */
  async sweep(): Promise<number> {
    return (await this.host?.sweep()) ?? 0;
  }

  /** Whose address this is, and its policy (the DNS server's asker, the proxy's client). */
  private ownerAt(address: string): Owner | undefined {
    const index = this.host?.indexOf(address);
    return index === undefined ? undefined : this.owners.get(index);
  }

  /** Connections allowed and refused per sandbox, from the firewall's counters. */
  async connectionCounts(): Promise<Array<{ namespace: string; name: string; allowed: number; refused: number }>> {
    if (!this.host) return [];
    const counts = await this.host.counters().catch(() => new Map<number, { allowed: number; refused: number }>());
    return [...counts].flatMap(([index, c]) => {
      const owner = this.owners.get(index);
      return owner ? [{ namespace: owner.namespace, name: owner.name, ...c }] : [];
    });
  }

  async close(): Promise<void> {
    this.connections?.close();
    await this.host?.close();
  }

  /** A connection the firewall let through or refused (connection-log.ts). */
  private firewalled(r: FirewallRecord): void {
    const owner = this.owners.get(r.index);
    const destination = r.port === undefined ? r.destination : `${r.destination}:${r.port}`;
    this.d.log.info(
      { sandbox: owner?.name, namespace: owner?.namespace, destination, protocol: r.protocol, verdict: r.verdict },
      r.verdict === 'allowed' ? 'sandbox connection allowed' : 'sandbox connection refused',
    );
  }

  /** Names a sandbox may resolve: all, unless its template lists them. Nothing for a stranger. */
  private dnsAllows(q: DnsQuery): boolean {
    const policy = this.ownerAt(q.from)?.policy;
    if (policy?.kind !== 'egress') return false;
    return !policy.proxy || nameAllowed(policy.proxy, q.name);
  }

  private dnsQueried(q: DnsQuery, verdict: 'answered' | 'refused' | 'failed'): void {
    const owner = this.ownerAt(q.from);
    this.d.metrics.dnsQueries.inc({ verdict });
    const line = { sandbox: owner?.name, namespace: owner?.namespace, query: q.name, type: q.type, verdict };
    if (verdict === 'answered') this.d.log.debug(line, 'sandbox DNS query');
    else this.d.log.info(line, 'sandbox DNS query');
  }

  private proxiedAt(address: string): ProxiedSandbox | undefined {
    const owner = this.ownerAt(address);
    if (owner?.policy.kind !== 'egress' || !owner.policy.proxy) return undefined;
    return { namespace: owner.namespace, name: owner.name, policy: owner.policy };
  }

  private proxied(v: ProxyVerdict): void {
    this.d.metrics.egressProxied.inc({ verdict: v.verdict, via: v.via });
    this.d.log.info(v, v.verdict === 'allowed' ? 'sandbox egress allowed' : 'sandbox egress refused');
  }

  private ca(): Promise<EngineCa> {
    this.caLoaded ??= EngineCa.load(join(this.d.config.home, 'net')).then((ca) => {
      ca.writeBundle(join(this.d.agentDir, CA_BUNDLE));
      return ca;
    });
    return this.caLoaded;
  }

  /** A sandbox that gets credentials trusts the engine's CA (for those destinations only: every
   *  other name's TLS passes the proxy untouched, checked against the real roots in the bundle). */
  private async credentialEnv(): Promise<Record<string, string>> {
    await this.ca();
    return caEnv(`${AGENT_MOUNT}/${CA_BUNDLE}`);
  }
}
