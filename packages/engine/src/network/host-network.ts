// The host's side of sandbox networking: one network namespace per networked sandbox, joined to
// the host by a veth pair (the sandbox's end inside, its host end named after the engine), the
// engine's nftables table that decides what may pass (nft.ts), and the engine's DNS (dns.ts).
// gVisor's netstack takes the sandbox's end over (runsc --network=sandbox): the sandbox's packets
// leave its user-space kernel as frames on that veth, and only then meet the host's kernel, at
// the firewall. State survives the engine: a sandbox's namespace and addresses are in
// <sandbox dir>/network.json, and a restarted engine adopts them (or sweeps what nothing names).
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { runCommand as run, CommandError } from '../spawner.ts';
import { HOST_LINK_PREFIX, Slot, engineIdOf, inCidr, slotsOf } from './addresses.ts';
import { EngineDns, type DnsOptions, type Upstream } from './dns.ts';
import { counterNames, removeSandboxScript, removeTableScript, sandboxScript, tableScript } from './nft.ts';
import type { EgressPolicy } from './policy.ts';

/** What a networked sandbox was given; written beside it, read back after an engine restart. */
export interface NetworkAttachment {
  index: number;
  /** Named network namespace (/run/netns/<netns>). */
  netns: string;
  hostLink: string;
  /** The sandbox's address (/30), its gateway (the host's end), and its DNS server. */
  address: string;
  gateway: string;
  dns: string;
}

/** Something listening on the engine's address for proxied sandboxes (egress-proxy.ts). */
export interface ProxyServer {
  listen(): Promise<{ http: number; tls: number }>;
  close(): void;
}

export interface HostNetworkOptions {
  home: string;
  pool: string;
  upstream: Upstream[];
  log: Logger;
  dnsAllow?: DnsOptions['allow'];
  onDnsQuery?: DnsOptions['onQuery'];
  /** The egress proxy, made for the engine's address once it is known. */
  proxy: (address: string) => ProxyServer;
}

const ATTACHMENT_FILE = 'network.json';
const NETNS_DIR = '/run/netns';

export class HostNetwork {
  readonly slot: Slot;
  private readonly used = new Map<number, NetworkAttachment>();
  private dns?: EngineDns;
  private proxy?: ProxyServer;
  private lastIndex = 0;

  private constructor(
    private readonly o: HostNetworkOptions,
    slot: Slot,
  ) {
    this.slot = slot;
  }

  /**
   * Takes a slot of the pool (this engine's own from an earlier run, else the first that no link on
   * the host has an address in), brings up the engine's address, its DNS and its table (empty:
   * recovery adopts what still runs). Throws with what is missing when the host cannot do it.
   */
  static async start(o: HostNetworkOptions): Promise<HostNetwork> {
    const id = engineIdOf(o.home);
    scriptDir = join(o.home, 'net');
    mkdirSync(scriptDir, { recursive: true, mode: 0o700 });
    await reclaimAbandoned(id);
    const taken = await hostAddresses();
    const routes = await hostRoutes();
    const slots = slotsOf(o.pool, id);
    const dummy = new Slot(slots[0]!, id).dummyLink;
    const own = slots.find((c) => taken.some((a) => a.link === dummy && inCidr(a.address, c)));
    // A slot is free when no address is in it and no route as narrow as /16 covers part of it (a
    // wider one, a VPN's 10.0.0.0/8, is only shadowed by the sandboxes' own).
    const free = (c: string) =>
      !taken.some((a) => inCidr(a.address, c)) && !routes.some((r) => Number(r.split('/')[1]) >= 16 && overlaps(r, c));
    const cidr = own ?? slots.find(free);
    if (!cidr) throw new Error(`no free /20 left in ASB_NETWORK_POOL ${o.pool}: every one is in use on this host`);
    const net = new HostNetwork(o, new Slot(cidr, id));
    await net.up();
    return net;
  }

  private async up(): Promise<void> {
    const { slot, o } = this;
    await ipBatch(
      [
        // A veth pair, not a dummy link: not every kernel has the dummy driver, every one that
        // runs sandboxes here has veth. Only this end is used.
        `link add ${slot.dummyLink} type veth peer name ${slot.dummyPeer}`,
        `addr replace ${slot.engineAddress}/32 dev ${slot.dummyLink}`,
        // Whose slot this is: another engine reclaims it once this home is gone (reclaimAbandoned).
        `link set ${slot.dummyLink} alias "${o.home}"`,
        `link set ${slot.dummyLink} up`,
      ],
      { ignoreExists: true },
    );
    await ensureForwarding(o.log);
    this.dns = new EngineDns({
      address: slot.engineAddress,
      upstream: o.upstream,
      allow: o.dnsAllow,
      onQuery: o.onDnsQuery,
      log: o.log,
    });
    const dnsPort = await this.dns.listen();
    this.proxy = o.proxy(slot.engineAddress);
    const proxyPorts = await this.proxy.listen();
    await nft(tableScript(slot, { pool: o.pool, dnsPort, proxyPorts }));
    o.log.info(
      {
        slot: slot.cidr,
        dns: `${slot.engineAddress}:${dnsPort}`,
        upstream: o.upstream.map((u) => `${u.host}:${u.port}`),
      },
      'sandbox networking ready',
    );
  }

  /** A namespace and addresses for a sandbox that is about to start, under `policy`. */
  async attach(dir: string, policy: Extract<EgressPolicy, { kind: 'egress' }>): Promise<NetworkAttachment> {
    if (this.used.size >= this.slot.capacity)
      throw new Error(`no address left for another networked sandbox (${this.slot.capacity} in use)`);
    // Round the slot, not the lowest free: an address (and link name) just given back is taken
    // last, so nothing of its previous sandbox (a connection's late packets) meets the next.
    let index = this.lastIndex;
    do index = (index % this.slot.capacity) + 1;
    while (this.used.has(index));
    this.lastIndex = index;
    const a: NetworkAttachment = {
      index,
      netns: this.slot.netns(index),
      hostLink: this.slot.hostLink(index),
      address: this.slot.sandboxEnd(index),
      gateway: this.slot.hostEnd(index),
      dns: this.slot.engineAddress,
    };
    this.used.set(index, a);
    try {
      // Left by an engine that died mid-way: gone first.
      if (existsSync(join(NETNS_DIR, a.netns))) await run('ip', ['netns', 'del', a.netns]).catch(() => undefined);
      if (existsSync(`/sys/class/net/${a.hostLink}`))
        await run('ip', ['link', 'del', a.hostLink]).catch(() => undefined);
      await ipBatch([
        `netns add ${a.netns}`,
        `link add ${a.hostLink} type veth peer name eth0 netns ${a.netns}`,
        `addr add ${a.gateway}/30 dev ${a.hostLink}`,
        `link set ${a.hostLink} up`,
      ]);
      // No IPv6 on the host's end: not even a link-local address the sandbox could reach it at.
      writeFileSync(`/proc/sys/net/ipv6/conf/${a.hostLink}/disable_ipv6`, '1');
      await this.prepare(a);
      await this.enforce(index, policy);
      writeFileSync(join(dir, ATTACHMENT_FILE), JSON.stringify(a) + '\n');
      return a;
    } catch (err) {
      await this.detach(dir, a).catch(() => undefined);
      throw err;
    }
  }

  /**
   * Gives the sandbox's end its address and route again. gVisor's netstack takes them off the
   * namespace when it takes the link over, so every start and restore needs them anew.
   */
  private async prepare(a: NetworkAttachment): Promise<void> {
    await ipBatch(
      [
        'link set lo up',
        'addr flush dev eth0',
        `addr add ${a.address}/30 dev eth0`,
        'link set eth0 up',
        `route replace default via ${a.gateway}`,
      ],
      { netns: a.netns },
    );
  }

  /** The policy of a running sandbox, replaced (its template changed). */
  async update(a: NetworkAttachment, policy: EgressPolicy): Promise<void> {
    await this.enforce(a.index, policy);
  }

  /** Sandbox `index`'s chain as `policy` says (offline: nothing leaves). */
  private async enforce(index: number, policy: EgressPolicy): Promise<void> {
    const egress = policy.kind === 'egress' ? policy : undefined;
    await nft(sandboxScript(this.slot, index, egress?.rules ?? [], egress?.proxy !== undefined));
  }

  attachmentAt(index: number): NetworkAttachment | undefined {
    return this.used.get(index);
  }

  /** A sandbox of a previous engine, still running: its place is kept and its rules put back. */
  async adopt(dir: string, policy: EgressPolicy): Promise<NetworkAttachment | undefined> {
    const a = readAttachment(dir);
    if (!a || a.hostLink !== this.slot.hostLink(a.index)) return undefined;
    this.used.set(a.index, a);
    // (Offline now, its template changed while the engine was down: nothing lets it out.)
    await this.enforce(a.index, policy);
    return a;
  }

  async detach(dir: string, a: NetworkAttachment): Promise<void> {
    await nft(removeSandboxScript(this.slot, a.index)).catch(() => undefined);
    // The pair is deleted first, at once: the namespace's own end goes with the namespace only
    // when the kernel gets to it, after `ip netns del` has returned.
    await run('ip', ['link', 'del', a.hostLink]).catch(() => undefined);
    await run('ip', ['netns', 'del', a.netns]).catch(() => undefined);
    rmSync(join(dir, ATTACHMENT_FILE), { force: true });
    this.used.delete(a.index);
  }

  /** Namespaces and links of this engine that no sandbox holds (an engine died with them). */
  async sweep(): Promise<number> {
    let swept = 0;
    const prefix = `asb-${this.slot.engineId}-`;
    for (const ns of existsSync(NETNS_DIR) ? readdirSync(NETNS_DIR) : []) {
      const index = ns.startsWith(prefix) ? Number(ns.slice(prefix.length)) : NaN;
      if (Number.isInteger(index) && !this.used.has(index)) {
        await run('ip', ['netns', 'del', ns]).catch(() => undefined);
        swept++;
      }
    }
    for (const link of await hostLinks()) {
      if (
        link.startsWith(`${HOST_LINK_PREFIX}${this.slot.engineId}`) &&
        ![...this.used.values()].some((a) => a.hostLink === link)
      ) {
        await run('ip', ['link', 'del', link]).catch(() => undefined);
        swept++;
      }
    }
    return swept;
  }

  /** Connections each sandbox made (allowed) and was refused, by index, from the table's counters. */
  async counters(): Promise<Map<number, { allowed: number; refused: number }>> {
    const out = new Map<number, { allowed: number; refused: number }>();
    const { stdout } = await run('nft', ['-j', 'list', 'counters', 'table', 'inet', this.slot.table]);
    const items = (JSON.parse(stdout) as { nftables: Array<{ counter?: { name: string; packets: number } }> }).nftables;
    const packets = new Map(items.flatMap((i) => (i.counter ? [[i.counter.name, i.counter.packets] as const] : [])));
    for (const index of this.used.keys()) {
      const c = counterNames(index);
      out.set(index, { allowed: packets.get(c.allowed) ?? 0, refused: packets.get(c.refused) ?? 0 });
    }
    return out;
  }

  /** Which sandbox has this address (the DNS server's asker, the proxy's client). */
  indexOf(address: string): number | undefined {
    const index = this.slot.indexOfSandbox(address);
    return index !== undefined && this.used.has(index) ? index : undefined;
  }

  /** Everything of this engine's off the host (its sandboxes have stopped). */
  async close(): Promise<void> {
    this.dns?.close();
    this.proxy?.close();
    for (const a of [...this.used.values()]) await run('ip', ['netns', 'del', a.netns]).catch(() => undefined);
    this.used.clear();
    await this.sweep().catch(() => undefined);
    await nft(removeTableScript(this.slot.table)).catch(() => undefined);
    await run('ip', ['link', 'del', this.slot.dummyLink]).catch(() => undefined);
  }
}

function readAttachment(dir: string): NetworkAttachment | undefined {
  try {
    return JSON.parse(readFileSync(join(dir, ATTACHMENT_FILE), 'utf8')) as NetworkAttachment;
  } catch {
    return undefined;
  }
}

async function nft(script: string): Promise<void> {
  await withScript(script, (file) => run('nft', ['-f', file]));
}

async function ipBatch(lines: string[], o: { netns?: string; ignoreExists?: boolean } = {}): Promise<void> {
  const opts = [...(o.netns ? ['-n', o.netns] : []), ...(o.ignoreExists ? ['-force'] : [])];
  try {
    await withScript(lines.join('\n') + '\n', (file) => run('ip', [...opts, '-batch', file]));
  } catch (err) {
    if (o.ignoreExists && err instanceof CommandError && /File exists/.test(err.stderr)) return;
    throw err;
  }
}

let scriptSeq = 0;
let scriptDir = '/run';
/** Scripts for nft and ip are files (the spawner gives commands no stdin), in $ASB_HOME/net. */
async function withScript<T>(script: string, use: (file: string) => Promise<T>): Promise<T> {
  const file = join(scriptDir, `${process.pid}-${scriptSeq++}.script`);
  writeFileSync(file, script, { mode: 0o600 });
  try {
    return await use(file);
  } finally {
    rmSync(file, { force: true });
  }
}

/** Every IPv4 address on the host, with its link. */
async function hostAddresses(): Promise<Array<{ link: string; address: string }>> {
  const { stdout } = await run('ip', ['-j', '-4', 'addr', 'show']);
  const links = JSON.parse(stdout) as Array<{ ifname: string; addr_info?: Array<{ local: string }> }>;
  return links.flatMap((l) => (l.addr_info ?? []).map((a) => ({ link: l.ifname, address: a.local })));
}

async function hostLinks(): Promise<string[]> {
  return (await linksWithAlias()).map((l) => l.ifname);
}

async function linksWithAlias(): Promise<Array<{ ifname: string; ifalias?: string }>> {
  const { stdout } = await run('ip', ['-j', 'link', 'show']);
  return JSON.parse(stdout) as Array<{ ifname: string; ifalias?: string }>;
}

/** The host's IPv4 routes' destinations (CIDRs), but default routes. */
async function hostRoutes(): Promise<string[]> {
  const { stdout } = await run('ip', ['-j', '-4', 'route', 'show', 'table', 'all']);
  return (JSON.parse(stdout) as Array<{ dst: string }>)
    .map((r) => r.dst)
    .filter((d) => d && d !== 'default' && /^[0-9.]+(\/\d+)?$/.test(d))
    .map((d) => (d.includes('/') ? d : `${d}/32`));
}

function overlaps(a: string, b: string): boolean {
  return inCidr(a.split('/')[0]!, b) || inCidr(b.split('/')[0]!, a);
}

/**
 * Slots of engines whose home is gone (an engine killed, its directory removed: tests do it all
 * the time) are taken back: their table, namespaces, links and dummy. An engine that died with
 * its home in place keeps its slot: it may come back and adopt its sandboxes.
 */
async function reclaimAbandoned(ownId: string): Promise<void> {
  const links = await linksWithAlias();
  // A table whose engine's link is gone altogether (an engine killed in its teardown).
  const { stdout } = await run('nft', ['list', 'tables', 'inet']).catch(() => ({ stdout: '' }));
  for (const id of [...stdout.matchAll(/^table inet asb_([0-9a-f]{4})$/gm)].map((m) => m[1]!)) {
    if (id !== ownId && !links.some((l) => l.ifname === `asbd${id}`))
      await nft(removeTableScript(`asb_${id}`)).catch(() => undefined);
  }
  for (const l of links) {
    const id = /^asbd([0-9a-f]{4})$/.exec(l.ifname)?.[1];
    if (!id || id === ownId || !l.ifalias) continue;
    if (existsSync(l.ifalias)) continue;
    await nft(removeTableScript(`asb_${id}`)).catch(() => undefined);
    for (const ns of existsSync(NETNS_DIR) ? readdirSync(NETNS_DIR) : []) {
      if (ns.startsWith(`asb-${id}-`)) await run('ip', ['netns', 'del', ns]).catch(() => undefined);
    }
    for (const { ifname } of links) {
      if (ifname.startsWith(`${HOST_LINK_PREFIX}${id}`))
        await run('ip', ['link', 'del', ifname]).catch(() => undefined);
    }
    await run('ip', ['link', 'del', l.ifname]).catch(() => undefined);
  }
}

/**
 * Routing from the sandboxes' links out, and back. When the host did not forward before, it is
 * turned on with a guard (table inet asb_guard) so that the host does not start routing between
 * the links it already had because of us: it drops what would be forwarded from one of those links
 * to another. Links made later are not the guard's business: sandboxes' are made by the engine,
 * and others (a kubelet's bridge, docker0, a VPN) by software that wants forwarding for them. The
 * guard stays after the engine stops (as the setting does).
 */
export async function ensureForwarding(log: Logger): Promise<void> {
  const file = '/proc/sys/net/ipv4/ip_forward';
  const on = readFileSync(file, 'utf8').trim() === '1';
  const guard = await run('nft', ['list', 'table', 'inet', GUARD_TABLE]).then(
    (r) => r.stdout,
    () => undefined,
  );
  // An engine before this one guarded with a rule on names instead (every link but sandboxes'),
  // which also dropped what a kubelet's bridge forwards between its pods: replaced once, with the
  // links it meant to guard (the host's own: all but the ones of engines and of the test nodes).
  const stale = guard !== undefined && !guard.includes(`@${GUARD_SET}`);
  if (on && !stale) return;
  // (Replaced whole, not added to: a guard left from when forwarding was on before is redone.)
  await nft(`${removeTableScript(GUARD_TABLE)}${guardScript(await linksToGuard())}`);
  if (on) {
    log.info({ table: GUARD_TABLE }, "an earlier engine's forward guard replaced: it guards the host's links only");
    return;
  }
  writeFileSync(file, '1');
  log.info(
    `IPv4 forwarding turned on for sandboxes (table inet ${GUARD_TABLE} forwards nothing between the host's links)`,
  );
}

const GUARD_TABLE = 'asb_guard';
const GUARD_SET = 'host_links';

/** The host's links now, but the ones engines and the test nodes made (theirs, their sandboxes'). */
async function linksToGuard(): Promise<string[]> {
  return (await hostLinks()).filter((n) => !n.startsWith('asb'));
}

/** The guard: a set of the links it guards, and a forward rule that drops between two of them. */
export function guardScript(links: string[]): string {
  const elements = links.length ? `elements = { ${links.map((l) => JSON.stringify(l)).join(', ')} }` : '';
  return `table inet ${GUARD_TABLE} {
  set ${GUARD_SET} {
    type ifname
    ${elements}
  }
  chain forward {
    type filter hook forward priority filter - 10; policy accept;
    iifname @${GUARD_SET} oifname @${GUARD_SET} drop
  }
}
`;
}
