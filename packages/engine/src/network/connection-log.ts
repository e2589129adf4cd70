// Each connection a networked sandbox starts, allowed or refused by the firewall, as a line of the
// engine's log. The firewall writes a kernel log record per new connection (nft.ts: `log prefix
// "asb <table> <sandbox index> <verdict> "`, rate-limited per sandbox), and this reads them back
// through `dmesg --follow-new` (a read of /dev/kmsg from node would hold one of libuv's few
// threads for good, blocked until the next record). Where the kernel log cannot be read (a
// container without it), connections are still counted, not logged; said once.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Logger } from 'pino';

export interface FirewallRecord {
  index: number;
  verdict: 'allowed' | 'refused';
  destination: string;
  port?: number;
  protocol: string;
}

/** Pure: one kernel log message, when it is one of `table`'s. */
export function parseRecord(msg: string, table: string): FirewallRecord | undefined {
  const m = new RegExp(`^asb ${table} (\\d+) (allowed|refused) `).exec(msg);
  if (!m) return undefined;
  const field = (name: string) => new RegExp(`\\b${name}=(\\S+)`).exec(msg)?.[1];
  const dst = field('DST');
  if (!dst) return undefined;
  const port = field('DPT');
  return {
    index: Number(m[1]),
    verdict: m[2] as 'allowed' | 'refused',
    destination: dst,
    port: port ? Number(port) : undefined,
    protocol: (field('PROTO') ?? '?').toLowerCase(),
  };
}

export class ConnectionLog {
  private child?: ChildProcess;

  constructor(
    private readonly table: string,
    private readonly onRecord: (r: FirewallRecord) => void,
    private readonly log: Logger,
  ) {}

  start(): void {
    const child = spawn('dmesg', ['--follow-new', '--notime', '--nopager'], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.unref();
    (child.stdout as NodeJS.ReadableStream & { unref?: () => void }).unref?.();
    createInterface({ input: child.stdout }).on('line', (line) => {
      const r = parseRecord(line.trim(), this.table);
      if (r) this.onRecord(r);
    });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', (err) => this.unreadable(err.message));
    child.on('exit', (code) => {
      if (this.child === child && code !== null) this.unreadable(stderr.trim() || `dmesg exited ${code}`);
    });
    this.child = child;
  }

  private unreadable(why: string): void {
    this.log.warn({ reason: why }, 'the kernel log cannot be read: sandbox connections are counted, not logged');
  }

  close(): void {
    const child = this.child;
    this.child = undefined;
    child?.kill();
  }
}
