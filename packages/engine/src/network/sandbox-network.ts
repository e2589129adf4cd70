// What the workloads see of networking: whether a Sandbox is networked (its template's policy,
// policy.ts), its attachment while it runs (host-network.ts), and the sandbox each address is.
// Without host networking (ASB_NETWORK=off, or a host that cannot), a Sandbox whose template
// allows egress does not start: it would otherwise run offline while its template says online.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Sandbox } from '@asb/api';
import { EngineError } from '../errors.ts';
import { resolvConf } from '../image-root.ts';
import type { SandboxNetworkSpec } from '../drivers/runtime-spec.ts';
import type { SqliteStore } from '../store/sqlite-store.ts';
import type { HostNetwork, NetworkAttachment } from './host-network.ts';
import { describePolicy, egressPolicyOf, type EgressPolicy } from './policy.ts';

export class SandboxNetworking {
  /** The sandbox (namespace/name) of each attachment index. */
  private readonly owners = new Map<number, { namespace: string; name: string }>();

  constructor(
    private readonly host: HostNetwork | undefined,
    /** Why there is no host networking, when there is none. */
    private readonly unavailable: string | undefined,
    private readonly store: Pick<SqliteStore, 'listSync'>,
    private readonly log: Logger,
  ) {}

  get enabled(): boolean {
    return this.host !== undefined;
  }

  policyOf(sb: Sandbox): EgressPolicy {
    return egressPolicyOf(sb, this.store.listSync('SandboxTemplate', { namespace: sb.metadata.namespace }));
  }

  /**
   * Networking for a sandbox about to start in `dir`: undefined when its policy is offline, else
   * its attachment and what the driver needs of it. Throws when its policy wants egress that this
   * engine cannot give.
   */
  async attach(
    sb: Sandbox,
    dir: string,
  ): Promise<{ attachment: NetworkAttachment; spec: SandboxNetworkSpec } | undefined> {
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
      this.log.warn({ ...at, ignored: policy.ignored }, 'egress rules that match nothing here');
    const attachment = await this.host.attach(dir, policy);
    this.owners.set(attachment.index, { namespace: sb.metadata.namespace, name: sb.metadata.name! });
    const resolv = join(dir, 'resolv.conf');
    writeFileSync(resolv, resolvConf(attachment.dns));
    this.log.info({ ...at, address: attachment.address, policy: describePolicy(policy) }, 'sandbox networked');
    return { attachment, spec: { netnsPath: `/run/netns/${attachment.netns}`, resolvConf: resolv } };
  }

  async detach(dir: string, a: NetworkAttachment): Promise<void> {
    this.owners.delete(a.index);
    await this.host?.detach(dir, a);
  }

  /** A sandbox left running by a previous engine: its attachment kept, its rules as its template
   *  says now. */
  async adopt(sb: Sandbox, dir: string): Promise<NetworkAttachment | undefined> {
    const a = await this.host?.adopt(dir, this.policyOf(sb));
    if (a) this.owners.set(a.index, { namespace: sb.metadata.namespace, name: sb.metadata.name! });
    return a;
  }

  /** After recovery: what no running sandbox holds goes. */
  async sweep(): Promise<number> {
    return (await this.host?.sweep()) ?? 0;
  }

  /** Whose address this is (the DNS server's asker, the logs). */
  ownerOf(address: string): { namespace: string; name: string } | undefined {
    const index = this.host?.indexOf(address);
    return index === undefined ? undefined : this.owners.get(index);
  }

  /** Connections allowed and refused per sandbox, from the firewall's counters. */
  async connectionCounts(): Promise<Array<{ namespace: string; name: string; allowed: number; refused: number }>> {
    if (!this.host) return [];
    const counts = await this.host.counters().catch(() => new Map<number, { allowed: number; refused: number }>());
    return [...counts].flatMap(([index, c]) => {
      const owner = this.owners.get(index);
      return owner ? [{ ...owner, ...c }] : [];
    });
  }

  async close(): Promise<void> {
    await this.host?.close();
  }
}
