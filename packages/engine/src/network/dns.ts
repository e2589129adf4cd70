// The DNS server networked sandboxes use (their /etc/resolv.conf names the engine's address; the
// firewall sends port 53 there to this server). It answers from the engine's upstream resolvers
// (ASB_DNS_SERVERS, else the host's /etc/resolv.conf), so a sandbox needs no route to any resolver,
// and every name a sandbox asks for is seen here: logged, counted, and refused when a policy says
// so (`allow`, the domain allow-list's hook).
import dgram from 'node:dgram';
import net from 'node:net';
import { readFileSync } from 'node:fs';
import dnsPacket from 'dns-packet';
import type { Logger } from 'pino';

export interface Upstream {
  host: string;
  port: number;
}

export interface DnsQuery {
  /** The asking sandbox's address. */
  from: string;
  name: string;
  type: string;
}

export interface DnsOptions {
  /** Where to listen (the engine's address in its slot). */
  address: string;
  upstream: Upstream[];
  /** Whether the asker may have an answer for this name (undefined: every name). A refused name
   *  is answered NXDOMAIN, as if it did not exist. */
  allow?: (q: DnsQuery) => boolean;
  /** Told of every query and its verdict (logs, metrics). */
  onQuery?: (q: DnsQuery, verdict: 'answered' | 'refused' | 'failed') => void;
  log: Logger;
}

/** How long one upstream has to answer before the next is asked. */
const UPSTREAM_TIMEOUT_MS = 2000;
/** Questions one sandbox may have waiting on upstreams at once (LIMITS.md): past it, SERVFAIL at
 *  once, so a flood costs the engine no sockets and the upstreams nothing. */
export const MAX_INFLIGHT_PER_ASKER = 64;
/** A DNS message over TCP is at most this long (its 2-byte length prefix). */
const MAX_TCP_MESSAGE = 65535;

/** ASB_DNS_SERVERS ("1.1.1.1,10.0.0.53:5353"), else the nameservers of /etc/resolv.conf. */
export function upstreamServers(env: string | undefined, resolvConf = '/etc/resolv.conf'): Upstream[] {
  const list = env?.trim()
    ? env.split(',').map((s) => s.trim())
    : readIfThere(resolvConf)
        .split('\n')
        .map((l) => /^\s*nameserver\s+(\S+)/.exec(l)?.[1])
        .filter((s): s is string => !!s && !s.includes(':'));
  return list.filter(Boolean).map((s) => {
    const [host, port] = s.split(':');
    return { host: host!, port: port ? Number(port) : 53 };
  });
}

export class EngineDns {
  private udp?: dgram.Socket;
  private tcp?: net.Server;
  private readonly inflight = new Map<string, number>();
  port = 0;

  constructor(private readonly o: DnsOptions) {}

  /** Listens on UDP and TCP, on one port chosen by the system; returns it. */
  async listen(): Promise<number> {
    for (let attempt = 0; ; attempt++) {
      const udp = dgram.createSocket('udp4');
      await new Promise<void>((resolve, reject) => {
        udp.once('error', reject);
        udp.bind(0, this.o.address, () => resolve());
      });
      const port = udp.address().port;
      const tcp = net.createServer((s) => this.serveTcp(s));
      const ok = await new Promise<boolean>((resolve) => {
        tcp.once('error', () => resolve(false));
        tcp.listen(port, this.o.address, () => resolve(true));
      });
      if (!ok) {
        udp.close();
        if (attempt < 5) continue;
        throw new Error(`DNS: no port free for both UDP and TCP on ${this.o.address}`);
      }
      udp.on('message', (msg, rinfo) => {
        void this.answer(msg, rinfo.address, 'udp').then(
          (reply) => reply && udp.send(reply, rinfo.port, rinfo.address),
        );
      });
      udp.on('error', (err) => this.o.log.warn({ err: err.message }, 'DNS socket error'));
      this.udp = udp;
      this.tcp = tcp;
      this.port = port;
      return port;
    }
  }

  close(): void {
    this.udp?.close();
    this.tcp?.close();
  }

  private serveTcp(s: net.Socket): void {
    let buf = Buffer.alloc(0);
    s.setTimeout(10_000, () => s.destroy());
    s.on('error', () => undefined);
    s.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 2) {
        const len = buf.readUInt16BE(0);
        if (buf.length < 2 + len) break;
        const msg = buf.subarray(2, 2 + len);
        buf = buf.subarray(2 + len);
        void this.answer(msg, s.remoteAddress ?? '', 'tcp').then((reply) => {
          if (!reply || s.destroyed) return;
          const head = Buffer.alloc(2);
          head.writeUInt16BE(reply.length);
          s.write(Buffer.concat([head, reply]));
        });
      }
      if (buf.length > MAX_TCP_MESSAGE + 2) s.destroy();
    });
  }

  /** The reply to one query (undefined: none, for what is not a query at all). */
  private async answer(msg: Buffer, from: string, transport: 'udp' | 'tcp'): Promise<Buffer | undefined> {
    let packet: dnsPacket.Packet;
    try {
      packet = dnsPacket.decode(msg);
    } catch {
      return undefined;
    }
    const question = packet.questions?.[0];
    if (packet.type !== 'query' || !question) return undefined;
    const q: DnsQuery = { from, name: question.name.toLowerCase().replace(/\.$/, ''), type: String(question.type) };
    if (this.o.allow && !this.o.allow(q)) {
      this.o.onQuery?.(q, 'refused');
      return reply(packet, 'NXDOMAIN');
    }
    const waiting = this.inflight.get(from) ?? 0;
    if (waiting >= MAX_INFLIGHT_PER_ASKER) {
      this.o.onQuery?.(q, 'failed');
      return reply(packet, 'SERVFAIL');
    }
    this.inflight.set(from, waiting + 1);
    try {
      for (const server of this.o.upstream) {
        const ask = transport === 'udp' ? askUdp(msg, server) : askTcp(msg, server);
        const answer = await ask.catch(() => undefined);
        if (answer) {
          this.o.onQuery?.(q, 'answered');
          return answer;
        }
      }
      this.o.onQuery?.(q, 'failed');
      return reply(packet, 'SERVFAIL');
    } finally {
      const left = (this.inflight.get(from) ?? 1) - 1;
      if (left > 0) this.inflight.set(from, left);
      else this.inflight.delete(from);
    }
  }
}

function reply(query: dnsPacket.Packet, rcode: 'NXDOMAIN' | 'SERVFAIL'): Buffer {
  return dnsPacket.encode({
    type: 'response',
    id: query.id,
    // QR set by type; RD copied; RA: we recurse. rcode in the low bits.
    flags: ((query.flags ?? 0) & dnsPacket.RECURSION_DESIRED) | dnsPacket.RECURSION_AVAILABLE | RCODES[rcode],
    questions: query.questions,
  });
}
const RCODES = { SERVFAIL: 2, NXDOMAIN: 3 } as const;

function askUdp(msg: Buffer, server: Upstream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket('udp4');
    const timer = setTimeout(() => done(new Error('timeout')), UPSTREAM_TIMEOUT_MS);
    const done = (err?: Error, answer?: Buffer) => {
      clearTimeout(timer);
      s.close();
      if (err) reject(err);
      else resolve(answer!);
    };
    s.on('error', (err) => done(err));
    s.on('message', (answer) => {
      // The same id as asked: anything else on this socket is not our answer.
      if (answer.length >= 2 && answer.readUInt16BE(0) === msg.readUInt16BE(0)) done(undefined, answer);
    });
    s.send(msg, server.port, server.host);
  });
}

function askTcp(msg: Buffer, server: Upstream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const s = net.connect(server.port, server.host);
    let buf = Buffer.alloc(0);
    s.setTimeout(UPSTREAM_TIMEOUT_MS, () => s.destroy(new Error('timeout')));
    s.on('error', reject);
    s.on('connect', () => {
      const head = Buffer.alloc(2);
      head.writeUInt16BE(msg.length);
      s.write(Buffer.concat([head, msg]));
    });
    s.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        s.end();
        resolve(buf.subarray(2, 2 + buf.readUInt16BE(0)));
      }
    });
    s.on('close', () => reject(new Error('closed before an answer')));
  });
}

function readIfThere(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}
