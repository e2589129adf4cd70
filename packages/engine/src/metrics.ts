// The engine's Prometheus metrics, served at /metrics (with the bearer token, as every route but
// /healthz): node's own (event-loop delay among them: nothing a sandbox does may stall the loop),
// the sandboxes by phase, and the events of the engine–agent connection and of sandbox logs.
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';

export class EngineMetrics {
  readonly registry = new Registry();
  readonly agentReconnects: Counter<'outcome'>;
  readonly sandboxLogBytesDropped: Counter<string>;
  readonly connectionsDropped: Counter<string>;

  constructor(phases: () => Iterable<string>) {
    // 10 ms: the event-loop delay histogram's resolution (prom-client's default).
    collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: 10 });
    this.agentReconnects = new Counter({
      name: 'asb_agent_reconnects_total',
      help:
        'Lost engine-agent connections, by what became of them: ' +
        'reconnected through the relay, or the sandbox marked Failed.',
      labelNames: ['outcome'],
      registers: [this.registry],
    });
    this.sandboxLogBytesDropped = new Counter({
      name: 'asb_sandbox_log_bytes_dropped_total',
      help: 'Bytes cut from sandbox logs that passed their size limit.',
      registers: [this.registry],
    });
    this.connectionsDropped = new Counter({
      name: 'asb_http_connections_dropped_total',
      help: 'Connections closed as accepted: the engine had ASB_MAX_CONNECTIONS open already.',
      registers: [this.registry],
    });
    new Gauge({
      name: 'asb_sandboxes',
      help: 'Sandboxes with a workload on this engine, by phase.',
      labelNames: ['phase'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const phase of phases()) this.inc({ phase });
      },
    });
  }
}
