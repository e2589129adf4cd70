// Upstream's Prometheus metrics, by their names and labels (internal/metrics/metrics.go of
// v0.5.6), derived from the store's watch events rather than from inside the reconcilers: a
// claim's or Sandbox's move to Ready is seen once, here, whichever code path caused it.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import {
  ANNOTATION_CLIENT_FIRST_REQUESTED_AT,
  ANNOTATION_SANDBOX_TEMPLATE_REF,
  LABEL_CREATED_BY,
  LABEL_LAUNCH_TYPE,
  findCondition,
  normalizeCreatedBy,
  type Condition,
} from '@asb/api';
import type { AnyHub, WatchEvent } from '@asb/lifecycle';

const CLAIM_BUCKETS = [100, 250, 500, 750, 1000, 1250, 1500, 2000, 2500, 5000, 10000, 30000, 60000, 120000, 240000];
const SANDBOX_BUCKETS = [50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 120000, 240000, 300000, 600000];

const conditionsOf = (o: AnyHub | undefined) => (o?.status as { conditions?: Condition[] } | undefined)?.conditions;
const isReady = (o: AnyHub | undefined) => findCondition(conditionsOf(o), 'Ready')?.status === 'True';
const createdBy = (v: string | undefined) => normalizeCreatedBy(v ?? '');
const templateOf = (o: AnyHub | undefined) => o?.metadata.annotations?.[ANNOTATION_SANDBOX_TEMPLATE_REF];
const key = (o: AnyHub) => `${o.metadata.namespace}/${o.metadata.name}`;

export class ControllerMetrics {
  private readonly claimStartup: Histogram<string>;
  private readonly claimControllerStartup: Histogram<string>;
  private readonly clientClaimStartup: Histogram<string>;
  private readonly sandboxCreation: Histogram<string>;
  private readonly claimCreation: Counter<string>;
  /** Claims' first sighting by this process (upstream's controller-first-observed-at, in memory). */
  private readonly firstSeen = new Map<string, number>();
  private readonly sandboxes = new Map<string, AnyHub>();
  /** Sandboxes (by uid) already seen Ready: a warm member adopted later is not timed again. */
  private readonly readySeen = new Set<string>();

  constructor(
    registry: Registry,
    private readonly now: () => number = Date.now,
  ) {
    this.claimStartup = new Histogram({
      name: 'agent_sandbox_claim_startup_latency_ms',
      help: 'End-to-end latency from SandboxClaim creation to Sandbox Ready state in milliseconds.',
      labelNames: ['launch_type', 'sandbox_template'],
      buckets: CLAIM_BUCKETS,
      registers: [registry],
    });
    this.claimControllerStartup = new Histogram({
      name: 'agent_sandbox_claim_controller_startup_latency_ms',
      help: 'Latency from controller first observed SandboxClaim to Sandbox Ready state in milliseconds.',
      labelNames: ['launch_type', 'sandbox_template'],
      buckets: CLAIM_BUCKETS,
      registers: [registry],
    });
    this.clientClaimStartup = new Histogram({
      name: 'agent_sandbox_client_claim_startup_latency_ms',
      help: 'End-to-end latency from client request to SandboxClaim Ready state in milliseconds. Note: This metric may be affected by clock skew between the client and controller.',
      labelNames: ['launch_type', 'sandbox_template'],
      buckets: CLAIM_BUCKETS,
      registers: [registry],
    });
    this.sandboxCreation = new Histogram({
      name: 'agent_sandbox_creation_latency_ms',
      help: 'Latency from Sandbox creation to Pod Ready state in milliseconds.',
      labelNames: ['namespace', 'launch_type', 'sandbox_template'],
      buckets: SANDBOX_BUCKETS,
      registers: [registry],
    });
    this.claimCreation = new Counter({
      name: 'agent_sandbox_claim_creation_total',
      help: 'Total number of SandboxClaims created, labeled by namespace, sandbox template, launch type, warmpool name, pod condition, and created_by.',
      labelNames: ['namespace', 'sandbox_template', 'launch_type', 'warmpool_name', 'pod_condition', 'created_by'],
      registers: [registry],
    });
    const sandboxes = this.sandboxes;
    new Gauge({
      name: 'agent_sandboxes',
      help: 'Monitor the point-in-time number of sandboxes in the cluster.',
      registers: [registry],
      labelNames: [
        'namespace',
        'ready_condition',
        'expired',
        'launch_type',
        'sandbox_template',
        'owned_by',
        'created_by',
      ],
      collect() {
        this.reset();
        for (const sb of sandboxes.values()) {
          const owner = sb.metadata.ownerReferences?.find((r) => r.controller)?.kind;
          this.inc({
            namespace: sb.metadata.namespace,
            ready_condition: String(isReady(sb)),
            expired: String((conditionsOf(sb) ?? []).some((c) => c.reason === 'SandboxExpired')),
            launch_type: sb.metadata.labels?.[LABEL_LAUNCH_TYPE] ?? 'cold',
            sandbox_template: templateOf(sb) ?? '',
            owned_by: owner === 'SandboxClaim' || owner === 'SandboxWarmPool' ? owner : 'None',
            created_by: createdBy(sb.metadata.labels?.[LABEL_CREATED_BY]),
          });
        }
      },
    });
    new Gauge({
      name: 'agent_sandbox_build_info',
      help: 'Agent sandbox controller build metadata exposed as labels with a constant value of 1.',
      labelNames: ['git_version', 'platform', 'node_version'],
      registers: [registry],
    }).set(
      {
        git_version: process.env.ASB_VERSION ?? 'v0.1.0',
        platform: `${process.platform}/${process.arch}`,
        node_version: process.version,
      },
      1,
    );
  }

  /** Feed every store event here. */
  observe(ev: WatchEvent): void {
    const o = ev.object;
    if (o.kind === 'Sandbox') {
      if (ev.type === 'DELETED') {
        this.sandboxes.delete(key(o));
        this.readySeen.delete(o.metadata.uid!);
        return;
      }
      this.sandboxes.set(key(o), o);
      if (!isReady(o) || this.readySeen.has(o.metadata.uid!)) return;
      this.readySeen.add(o.metadata.uid!);
      // Ready when this process first listed it: it became Ready before; nothing to time.
      if (ev.type !== 'MODIFIED') return;
      this.sandboxCreation.observe(
        {
          namespace: o.metadata.namespace,
          launch_type: o.metadata.labels?.[LABEL_LAUNCH_TYPE] ?? 'unknown',
          sandbox_template: templateOf(o) ?? '',
        },
        this.since(o.metadata.creationTimestamp),
      );
      return;
    }
    if (o.kind !== 'SandboxClaim') return;
    if (ev.type === 'DELETED') {
      this.firstSeen.delete(key(o));
      return;
    }
    if (!this.firstSeen.has(key(o))) this.firstSeen.set(key(o), this.now());
    if (!isReady(o) || isReady(ev.old) || ev.type !== 'MODIFIED') return;
    const status = o.status as { sandbox?: { name?: string } } | undefined;
    const sb = status?.sandbox?.name ? this.sandboxes.get(`${o.metadata.namespace}/${status.sandbox.name}`) : undefined;
    const launch = sb?.metadata.labels?.[LABEL_LAUNCH_TYPE] ?? 'unknown';
    const spec = o.spec as { sandboxTemplateRef?: { name: string }; warmPoolRef?: { name: string } };
    const template = templateOf(sb) ?? spec.sandboxTemplateRef?.name ?? '';
    this.claimStartup.observe(
      { launch_type: launch, sandbox_template: template },
      this.since(o.metadata.creationTimestamp),
    );
    this.claimControllerStartup.observe(
      { launch_type: launch, sandbox_template: template },
      this.now() - this.firstSeen.get(key(o))!,
    );
    // The client's own clock, from the annotation upstream's clients write; skew can make it
    // negative, which upstream drops rather than record.
    const sinceRequest = this.now() - Date.parse(o.metadata.annotations?.[ANNOTATION_CLIENT_FIRST_REQUESTED_AT] ?? '');
    if (sinceRequest >= 0)
      this.clientClaimStartup.observe({ launch_type: launch, sandbox_template: template }, sinceRequest);
    this.claimCreation.inc({
      namespace: o.metadata.namespace,
      sandbox_template: template,
      launch_type: launch,
      warmpool_name: spec.warmPoolRef?.name ?? '',
      pod_condition: 'ready',
      created_by: createdBy(o.metadata.labels?.[LABEL_CREATED_BY]),
    });
  }

  private since(timestamp: string | null | undefined): number {
    return timestamp ? Math.max(0, this.now() - Date.parse(timestamp)) : 0;
  }
}
