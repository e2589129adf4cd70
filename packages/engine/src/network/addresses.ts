// Pure: the engine's slice of the address pool and the names of what it makes on the host. Each
// engine takes one slot of ASB_NETWORK_POOL (several engines can share a host: tests do); in its
// slot, the first address is the engine's own (its DNS, on a dummy link), and sandbox i gets the
// point-to-point /30 at 4·i: the host's end .1, the sandbox's .2.
import { createHash } from 'node:crypto';
import { isIPv4 } from 'node:net';

export const DEFAULT_POOL = '10.213.0.0/16';
/** Each engine's slot: /20, 1023 networked sandboxes. */
export const SLOT_PREFIX = 20;

export function ipToInt(ip: string): number {
  const parts = ip.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255))
    throw new Error(`not an IPv4 address: ${ip}`);
  return ((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0;
}
export function intToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}
export function parseCidr(cidr: string): { base: number; prefix: number } {
  const [ip, bits] = cidr.split('/');
  const prefix = Number(bits);
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > 32) throw new Error(`not an IPv4 CIDR: ${cidr}`);
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return { base: (ipToInt(ip!) & mask) >>> 0, prefix };
}
export function inCidr(ip: string, cidr: string): boolean {
  const { base, prefix } = parseCidr(cidr);
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return (ipToInt(ip) & mask) >>> 0 === base;
}

/** This engine's short id: from its home directory, so a restarted engine finds its own things. */
export function engineIdOf(home: string): string {
  return createHash('sha256').update(home).digest('hex').slice(0, 4);
}

/** The slots of `pool`, the one `engineId` prefers first. */
export function slotsOf(pool: string, engineId: string): string[] {
  const { base, prefix } = parseCidr(pool);
  if (prefix > SLOT_PREFIX) throw new Error(`ASB_NETWORK_POOL ${pool} is smaller than one /${SLOT_PREFIX}`);
  const n = 2 ** (SLOT_PREFIX - prefix);
  const first = parseInt(engineId, 16) % n;
  return Array.from(
    { length: n },
    (_, i) => `${intToIp(base + ((first + i) % n) * 2 ** (32 - SLOT_PREFIX))}/${SLOT_PREFIX}`,
  );
}

export class Slot {
  readonly base: number;
  constructor(
    readonly cidr: string,
    readonly engineId: string,
  ) {
    this.base = parseCidr(cidr).base;
  }
  /** The engine's own address: its DNS listens there. */
  get engineAddress(): string {
    return intToIp(this.base + 1);
  }
  /** How many sandboxes fit (index 0 is the engine's). */
  get capacity(): number {
    return 2 ** (32 - SLOT_PREFIX) / 4 - 1;
  }
  hostEnd(index: number): string {
    return intToIp(this.base + 4 * index + 1);
  }
  sandboxEnd(index: number): string {
    return intToIp(this.base + 4 * index + 2);
  }
  /** The index whose sandboxEnd this address is, if it is one. */
  indexOfSandbox(address: string): number | undefined {
    if (!isIPv4(address)) return undefined;
    const offset = ipToInt(address) - this.base - 2;
    const index = offset / 4;
    return Number.isInteger(index) && index >= 1 && index <= this.capacity ? index : undefined;
  }
  /** The host's end of sandbox `index`'s veth pair (≤ 15 characters, as link names must be). */
  hostLink(index: number): string {
    return `${HOST_LINK_PREFIX}${this.engineId}${index.toString(16)}`;
  }
  get hostLinkPattern(): string {
    return `${HOST_LINK_PREFIX}${this.engineId}*`;
  }
  /** The link holding engineAddress (one end of a veth pair whose other end is dummyPeer). */
  get dummyLink(): string {
    return `asbd${this.engineId}`;
  }
  get dummyPeer(): string {
    return `asbe${this.engineId}`;
  }
  netns(index: number): string {
    return `asb-${this.engineId}-${index}`;
  }
  get table(): string {
    return `asb_${this.engineId}`;
  }
}

/** Every engine's sandbox links start so: one pattern matches them all (the forward guard). */
export const HOST_LINK_PREFIX = 'asbv';
