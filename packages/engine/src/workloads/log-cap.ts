// Sandboxes' logs are outside their disk quota, and their code can write to them: they are
// measured every LOG_CHECK_INTERVAL_MS and cut to their end past MAX_SANDBOX_LOG_BYTES.
import { capLog } from '../sandbox-log.ts';
import type { WorkloadTable, WorkloadsDeps } from './workload.ts';

/** How often sandbox logs are measured (and cut past MAX_SANDBOX_LOG_BYTES): an fstat each. */
const LOG_CHECK_INTERVAL_MS = 250;

export type LogCapDeps = Pick<WorkloadsDeps, 'log' | 'metrics'> & { table: WorkloadTable };

export class LogCapper {
  private readonly timer: NodeJS.Timeout;
  /** A pass still under way: the next tick skips rather than measure the same files twice. */
  private capping = false;

  constructor(private readonly deps: LogCapDeps) {
    this.timer = setInterval(() => void this.capAll(), LOG_CHECK_INTERVAL_MS);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private async capAll(): Promise<void> {
    if (this.capping) return;
    this.capping = true;
    try {
      for (const w of this.deps.table.list()) {
        if (!w.logFile) continue;
        const dropped = await capLog(w.logFile);
        if (dropped === 0) continue;
        this.deps.metrics?.sandboxLogBytesDropped.inc(dropped);
        const about = { sandbox: w.name, namespace: w.namespace, dropped };
        this.deps.log.warn(about, 'sandbox log cut to its end: it passed its size limit');
      }
    } finally {
      this.capping = false;
    }
  }
}
