// The engine's Prometheus metrics, served at /metrics (with the bearer token, as every route but
// /healthz): node's own (event-loop delay among them: nothing a sandbox does may stall the loop),
// the sandboxes by phase, and the events of the engine–agent connection and of sandbox logs.
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';

export class EngineMetrics {
  readonly registry = new Registry();
  readonly agentReconnects: Counter<'outcome'>;
  readonly sandboxLogBytesDropped: Counter<string>;
  readonly connectionsDropped: Counter<string>;
  readonly dnsQueries: Counter<'verdict'>;
  readonly egressProxied: Counter<'verdict' | 'via'>;

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
    this.dnsQueries = new Counter({
      name: 'asb_sandbox_dns_queries_total',
      help: "Names sandboxes asked the engine's DNS for, by verdict: answered, refused (by policy), failed (upstream).",
      labelNames: ['verdict'],
      registers: [this.registry],
    });
    this.egressProxied = new Counter({
      name: 'asb_sandbox_egress_proxy_connections_total',
      help:
        'Connections and requests through the egress proxy (templates with an allow-list of names or credentials), ' +
        'by verdict and by how they came: tls (passed through by SNI), http (by Host), credential (terminated, header added).',
      labelNames: ['verdict', 'via'],
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

  /** Egress connections per running sandbox, read from the firewall's counters at each scrape. */
  watchNetworking(networking: { connectionCounts(): Promise<Array<ConnectionCount>> }): void {
    new Gauge({
      name: 'asb_sandbox_egress_connections',
      help:
        "Connections a running sandbox started to the outside, by the firewall's verdict (allowed, refused); " +
        'counted from its start.',
      labelNames: ['namespace', 'sandbox', 'verdict'],
      registers: [this.registry],
      async collect() {
        this.reset();
        for (const c of await networking.connectionCounts()) {
          this.set({ namespace: c.namespace, sandbox: c.name, verdict: 'allowed' }, c.allowed);
          this.set({ namespace: c.namespace, sandbox: c.name, verdict: 'refused' }, c.refused);
        }
      },
    });
  }
}

interface ConnectionCount {
  namespace: string;
  name: string;
  allowed: number;
  refused: number;
}
