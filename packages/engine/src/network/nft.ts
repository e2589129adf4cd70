// Pure: the engine's nftables table, as text for `nft -f -`. Everything a sandbox sends enters the
// host on its veth (its host end is named after the engine: Slot.hostLinkPattern), and these rules
// decide, in the kernel, before anything of the engine sees a byte:
//   - to the host itself (its loopback, the engine's API, any of its addresses): nothing but the
//     engine's DNS;
//   - to another sandbox (the whole pool, every engine's): never;
//   - elsewhere: the sandbox's own chain, its template's egress rules (policy.ts), else refused;
//   - into a sandbox: only replies to what it started (exposed ports go through the engine's
//     tunnel, not the network).
// Each sandbox has named counters of allowed and refused connections (metrics), and each of its
// connections a line in the kernel log (`asb <table> <sandbox index> allowed|refused`), which the
// engine reads back into its own (connection-log.ts).
import type { EgressRule, IpBlock, PortMatch } from './policy.ts';
import type { Slot } from './addresses.ts';

export interface TableOptions {
  /** The whole pool: no sandbox reaches another, of this engine or another. */
  pool: string;
  /** The engine's DNS port on slot.engineAddress (the sandbox asks port 53; it is redirected). */
  dnsPort: number;
  /** The egress proxy's ports there: a proxied sandbox's ports 80 and 443 go to them. */
  proxyPorts: { http: number; tls: number };
}

/**
 * A refused packet is answered (ICMP administratively prohibited), not dropped: the sandbox's
 * connect fails at once instead of after its retries, and one attempt is one count, not one per
 * retransmitted SYN.
 */
const REFUSE = 'reject with icmpx admin-prohibited';

/** Connections a sandbox may have open at once through the firewall (LIMITS.md). */
export const MAX_CONNECTIONS = 1024;

/** Log lines a sandbox's connections may write to the kernel log, per verdict (connection-log.ts
 *  reads them back): past it they are counted, not logged. */
const LOG_RATE = '50/second burst 100 packets';

/** The table, fresh (delete-and-create in one transaction), with no sandbox in it. */
export function tableScript(slot: Slot, o: TableOptions): string {
  const t = `inet ${slot.table}`;
  const links = `"${slot.hostLinkPattern}"`;
  const dns = slot.engineAddress;
  return `table ${t}
delete table ${t}
table ${t} {
  map sandboxes { type ifname : verdict; }
  set proxied { type ifname; }
  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;
    iifname ${links} ip daddr ${dns} udp dport 53 dnat ip to ${dns}:${o.dnsPort}
    iifname ${links} ip daddr ${dns} tcp dport 53 dnat ip to ${dns}:${o.dnsPort}
    iifname @proxied tcp dport 80 dnat ip to ${dns}:${o.proxyPorts.http}
    iifname @proxied tcp dport 443 dnat ip to ${dns}:${o.proxyPorts.tls}
  }
  chain input {
    type filter hook input priority filter - 5; policy accept;
    iifname ${links} jump to_host
  }
  chain to_host {
    ct state established,related accept
    ip daddr ${dns} meta l4proto { tcp, udp } th dport ${o.dnsPort} accept
    iifname @proxied ip daddr ${dns} tcp dport { ${o.proxyPorts.http}, ${o.proxyPorts.tls} } accept
    ${REFUSE}
  }
  chain forward {
    type filter hook forward priority filter - 5; policy accept;
    iifname ${links} jump egress
    oifname ${links} ct state established,related accept
    oifname ${links} drop
  }
  chain egress {
    ct state invalid drop
    ct state established,related accept
    ip daddr ${o.pool} ${REFUSE}
    ip daddr { 0.0.0.0/8, 127.0.0.0/8, 224.0.0.0/3 } ${REFUSE}
    meta nfproto ipv6 ${REFUSE}
    iifname vmap @sandboxes
    ${REFUSE}
  }
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    ip saddr ${slot.cidr} oifname != ${links} masquerade
  }
}
`;
}

/** The table gone (made first, so that one already gone is no error). */
export function removeTableScript(table: string): string {
  return `table inet ${table}\ndelete table inet ${table}\n`;
}

const chainOf = (index: number) => `sb_${index}`;
export const counterNames = (index: number) => ({ allowed: `sb_${index}_allowed`, refused: `sb_${index}_refused` });

/**
 * Sandbox `index`'s chain and its place in the map: added (or replaced) in one transaction.
 * `proxied`: its ports 80 and 443 go to the egress proxy, and nothing else leaves (its `rules`
 * are then the proxy's to apply, to the addresses names resolve to).
 */
export function sandboxScript(slot: Slot, index: number, rules: readonly EgressRule[], proxied = false): string {
  const t = `inet ${slot.table}`;
  const chain = chainOf(index);
  const c = counterNames(index);
  const link = slot.hostLink(index);
  const lines = [
    `add counter ${t} ${c.allowed}`,
    `add counter ${t} ${c.refused}`,
    `add chain ${t} ${chain}`,
    `flush chain ${t} ${chain}`,
    // Only from its own address: nothing spoofed, and nothing of another's connections (a fork
    // restored with the original's sockets sends from the original's address: refused here).
    `add rule ${t} ${chain} ip saddr != ${slot.sandboxEnd(index)} counter name ${c.refused} drop`,
    // Connections open at once to the outside: past it, refused (a sandbox cannot fill the host's
    // connection tracking table, which every other connection of the host needs).
    `add rule ${t} ${chain} ct count over ${MAX_CONNECTIONS} counter name ${c.refused} ${REFUSE}`,
    // Each allowed connection is logged (at most LOG_RATE a second), then counted and let through.
    ...(proxied ? [] : rules)
      .flatMap((r) => ruleLines(r))
      .flatMap((m) => [
        `add rule ${t} ${chain} ${m} limit rate ${LOG_RATE} log prefix "asb ${slot.table} ${index} allowed " level info`,
        `add rule ${t} ${chain} ${m} counter name ${c.allowed} accept`,
      ]),
    `add rule ${t} ${chain} limit rate ${LOG_RATE} log prefix "asb ${slot.table} ${index} refused " level info`,
    `add rule ${t} ${chain} counter name ${c.refused} ${REFUSE}`,
    // (Replaced, not added: an element left by an engine that died is overwritten.)
    `add element ${t} sandboxes { "${link}" : jump ${chain} }`,
    // (A sandbox that stops being proxied leaves the set: added first, so the delete finds it.)
    `add element ${t} proxied { "${link}" }`,
    ...(proxied ? [] : [`delete element ${t} proxied { "${link}" }`]),
  ];
  return `${lines.join('\n')}\n`;
}

/** The element goes first: the chain cannot be deleted while the map jumps to it. */
export function removeSandboxScript(slot: Slot, index: number): string {
  const t = `inet ${slot.table}`;
  const c = counterNames(index);
  return (
    [
      `delete element ${t} sandboxes { "${slot.hostLink(index)}" }`,
      `delete chain ${t} ${chainOf(index)}`,
      `delete counter ${t} ${c.allowed}`,
      `delete counter ${t} ${c.refused}`,
    ].join('\n') + '\n'
  );
}

/** A rule's matches: one line per destination block and port match (any of them lets through). */
export function ruleLines(r: EgressRule): string[] {
  const to = r.to ? r.to.map(block) : ['meta nfproto ipv4'];
  const ports = r.ports ? r.ports.map(portMatch) : [''];
  return to.flatMap((d) => ports.map((p) => [d, p].filter(Boolean).join(' ')));
}

function block(b: IpBlock): string {
  const inBlock = `ip daddr ${b.cidr}`;
  return b.except.length ? `${inBlock} ip daddr != { ${b.except.join(', ')} }` : inBlock;
}

function portMatch(p: PortMatch): string {
  if (p.port === undefined) return `meta l4proto ${p.protocol}`;
  const range = p.endPort !== undefined && p.endPort > p.port ? `${p.port}-${p.endPort}` : `${p.port}`;
  return `${p.protocol} dport ${range}`;
}
