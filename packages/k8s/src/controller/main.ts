// agent-sandbox-controller in TypeScript: the lifecycle reconcilers (packages/lifecycle, the same
// code the local engine runs) on the Kubernetes substrate (../substrate), behind a Lease, with
// /healthz, /readyz and Prometheus metrics. Flags follow upstream's where they mean something.
import { createServer, type Server } from 'node:http';
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { Command } from '@commander-js/extra-typings';
import pino from 'pino';
import { Registry, collectDefaultMetrics } from 'prom-client';
import { ControllerMetrics } from './metrics.ts';
import { LifecycleController, systemClock, type Recorder } from '@asb/lifecycle';
import { KubeStore } from '../substrate/kube-store.ts';
import { KubeWorkloads } from '../substrate/kube-workloads.ts';
import { KubeRecorder } from '../substrate/kube-recorder.ts';
import { LeaderElector } from './leader.ts';
import { TemplateNetworkPolicies } from './template-network-policy.ts';
import { loadKubeConfig } from '@asb/kube';
import { sharedServingCerts } from '../webhook/cert-secret.ts';
import { serveWebhook, type WebhookServer } from '../webhook/server.ts';
import { patchCrdConversion, type WebhookTarget } from '../webhook/crd-ca.ts';

export const LEASE_NAME = 'a3317529.agent-sandbox.x-k8s.io';

export interface ControllerFlags {
  kubeconfig?: string;
  leaderElect: boolean;
  leaderElectionNamespace: string;
  metricsBindAddress: string;
  healthProbeBindAddress: string;
  extensions: boolean;
  sandboxConcurrentWorkers: number;
  sandboxClaimConcurrentWorkers: number;
  sandboxWarmPoolConcurrentWorkers: number;
  /** Conversion webhook: listen address (0 disables), and how the API server reaches it. */
  webhookBindAddress: string;
  webhookServiceName: string;
  webhookServiceNamespace: string;
  /** The Secret (in the webhook Service's namespace) that holds the replicas' one certificate. */
  webhookCertSecret: string;
  /** A URL instead of the Service (a controller outside the cluster); its host goes in the certificate. */
  webhookUrl?: string;
  /** status.serviceFQDN's domain. */
  clusterDomain: string;
  /** Pool members' pods carry cluster-autoscaler's safe-to-evict "true". */
  enableWarmPoolEviction: boolean;
  /** Upstream v0.5's refill shaping: hold replacements until members stop leaving for this long… */
  sandboxWarmPoolReplenishDelayMs: number;
  /** …and create at most this many per second per pool (0: unpaced). */
  sandboxWarmPoolMaxRefillRate: number;
  /** A pool member not Ready in this long is replaced, or held if unschedulable. */
  sandboxWarmPoolReadinessGracePeriodMs: number;
  /** How often a pool holding unschedulable members looks again. */
  sandboxWarmPoolUnschedulableRecheckIntervalMs: number;
  /** No Events from the claim reconciler: one API write less per claim in a burst. */
  disableClaimEvents: boolean;
  /** No agents.x-k8s.io/controller-first-observed-at on claims (upstream's flag). */
  disableClaimObservabilityAnnotations: boolean;
  /** Ours: while claims are queued, an adoption's follow-up and a pool's refill wait, up to this long. */
  claimsFirstMaxDeferMs: number;
  claimsFirstRefillRate: number;
}

/** A Go duration ("300ms", "2s", "1m30s"), as upstream's duration flags take, in milliseconds. */
export function parseGoDuration(text: string): number {
  const units: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  if (text === '0') return 0;
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)];
  if (!parts.length || parts.map((m) => m[0]).join('') !== text)
    throw new Error(`not a duration: "${text}" (e.g. 500ms, 2s, 1m30s)`);
  return parts.reduce((ms, m) => ms + Number(m[1]) * units[m[2]!]!, 0);
}

/** Upstream refuses a zero or negative grace period or recheck interval at start. */
function positiveDuration(name: string) {
  return (v: string): number => {
    const ms = parseGoDuration(v);
    if (!(ms > 0)) throw new Error(`${name} must be a positive duration, not "${v}"`);
    return ms;
  };
}

function nonNegative(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a finite number >= 0, not "${v}"`);
    return n;
  };
}

function listen(server: Server, address: string): Promise<void> {
  if (address === '0') return Promise.resolve();
  const i = address.lastIndexOf(':');
  const host = address.slice(0, i) || '0.0.0.0';
  const port = Number(address.slice(i + 1));
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
}

export async function runController(flags: ControllerFlags): Promise<{ stop(): Promise<void> }> {
  const log = pino({ level: process.env.ASB_LOG_LEVEL ?? 'info' });
  const kc = loadKubeConfig({ kubeconfig: flags.kubeconfig });

  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  let ready = false;
  const health = createServer((req, res) => {
    if (req.url === '/healthz') {
      res.writeHead(200).end('ok');
      return;
    }
    if (req.url === '/readyz') {
      res.writeHead(ready ? 200 : 503).end(ready ? 'ok' : 'not ready');
      return;
    }
    res.writeHead(404).end();
  });
  const metrics = createServer((req, res) => {
    if (req.url !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (err: Error) => res.writeHead(500).end(err.message),
    );
  });
  await listen(health, flags.healthProbeBindAddress);
  await listen(metrics, flags.metricsBindAddress);

  // The conversion webhook serves on every replica (the API server may call any, through the
  // Service), all with one certificate kept in a Secret (webhook/cert-secret.ts), whose CA each
  // puts into the CRDs' caBundle. Each replica reads the Secret again now and then: one of them
  // renews it a month before it expires, and the others then serve the new one.
  let webhook: WebhookServer | undefined;
  let rotation: NodeJS.Timeout | undefined;
  if (flags.webhookBindAddress !== '0') {
    const svc = `${flags.webhookServiceName}.${flags.webhookServiceNamespace}.svc`;
    const names = flags.webhookUrl ? [new URL(flags.webhookUrl).hostname, svc] : [svc, `${svc}.cluster.local`];
    const target: WebhookTarget = flags.webhookUrl
      ? { url: flags.webhookUrl }
      : { service: { name: flags.webhookServiceName, namespace: flags.webhookServiceNamespace, port: 443 } };
    const secret = {
      namespace: flags.webhookServiceNamespace,
      name: flags.webhookCertSecret,
      dnsNames: names,
      renewWithinMs: 30 * 86_400_000,
    };
    let shared = await sharedServingCerts(kc, secret);
    const i = flags.webhookBindAddress.lastIndexOf(':');
    webhook = await serveWebhook(shared.certs, {
      host: flags.webhookBindAddress.slice(0, i) || '0.0.0.0',
      port: Number(flags.webhookBindAddress.slice(i + 1)),
    });
    await patchCrdConversion(kc, shared.caBundle, target);
    log.info(
      { names, port: webhook.port, secret: secret.name },
      'conversion webhook serving; CRDs patched with its CA',
    );
    rotation = setInterval(() => {
      void sharedServingCerts(kc, secret)
        .then(async (next) => {
          if (next.certs.certPem === shared.certs.certPem && next.caBundle === shared.caBundle) return;
          await patchCrdConversion(kc, next.caBundle, target);
          webhook!.setCerts(next.certs);
          shared = next;
          log.info('webhook certificate renewed');
        })
        .catch((err) => log.error({ err: (err as Error).message }, 'webhook certificate renewal failed; retrying'));
    }, 600_000);
    rotation.unref();
  }
  // A standby serves the webhook and waits to lead: that is all it is for, so it is Ready (a
  // Deployment's rolling update waits for its new pods to be, and a standby never leads while the
  // old leader runs). Without leader election, Ready means reconciling.
  if (flags.leaderElect) ready = true;

  const identity = `${hostname()}_${randomBytes(4).toString('hex')}`;
  const elector = flags.leaderElect
    ? new LeaderElector(kc, {
        namespace: flags.leaderElectionNamespace,
        name: LEASE_NAME,
        identity,
        log: (m) => log.info(m),
      })
    : undefined;
  if (elector) {
    log.info({ identity }, 'waiting for the leader lease');
    // A leader that cannot renew must stop acting at once: exit, and let the Deployment restart it.
    await elector.acquire(() => {
      log.error('leader lease lost; exiting');
      process.exit(1);
    });
  }

  const store = new KubeStore(kc, { fieldManager: 'agent-sandbox-controller' });
  const workloads = new KubeWorkloads(kc);
  const kubeRecorder = new KubeRecorder(kc, identity, (err) =>
    log.warn({ err: (err as Error).message, body: (err as { body?: unknown }).body }, 'event not recorded'),
  );
  const recorder: Recorder = flags.disableClaimEvents
    ? {
        event: (obj, ...rest) => {
          if (obj.kind !== 'SandboxClaim') kubeRecorder.event(obj, ...rest);
        },
      }
    : kubeRecorder;
  // Subscribed before the informers start, so the first list is seen (and not timed).
  const controllerMetrics = new ControllerMetrics(registry);
  store.watch((ev) => controllerMetrics.observe(ev));
  // Each template's NetworkPolicy (and the hash label its pods are selected by), as upstream's.
  const templatePolicies = new TemplateNetworkPolicies(kc, log, (template, reason, message) =>
    kubeRecorder.event(template, 'Warning', reason, message),
  );
  store.watch((ev) => {
    if (ev.object.kind === 'SandboxTemplate' && ev.type !== 'DELETED') templatePolicies.changed(ev.object);
  });
  await store.start();
  await workloads.start();
  const controller = new LifecycleController(
    { store, workloads, recorder, clock: systemClock },
    {
      clusterDomain: flags.clusterDomain,
      warmPoolEviction: flags.enableWarmPoolEviction,
      warmPoolReadinessGracePeriodMs: flags.sandboxWarmPoolReadinessGracePeriodMs,
      warmPoolUnschedulableRecheckMs: flags.sandboxWarmPoolUnschedulableRecheckIntervalMs,
      claimObservedAtAnnotation: !flags.disableClaimObservabilityAnnotations,
      refill: {
        replenishDelayMs: flags.sandboxWarmPoolReplenishDelayMs,
        maxRefillRate: flags.sandboxWarmPoolMaxRefillRate,
        claimsFirstMaxDeferMs: flags.claimsFirstMaxDeferMs,
        claimsFirstRefillPerS: flags.claimsFirstRefillRate,
      },
      // A Pod's changes come in bursts (created, bound, started: within milliseconds under KWOK);
      // each would otherwise be a status write of the Sandbox, and of its claim. Its Ready (or its
      // end) is not delayed: on a node it comes seconds later, alone, and claims wait for it.
      workloadChangeDelayMs: 100,
      poolMemberChangeDelayMs: 100,
      log,
      sandboxWorkers: flags.sandboxConcurrentWorkers,
      claimWorkers: flags.sandboxClaimConcurrentWorkers,
      poolWorkers: flags.sandboxWarmPoolConcurrentWorkers,
    },
  );
  await controller.start();
  ready = true;
  log.info({ identity, leaderElect: flags.leaderElect }, 'controller running');
  return {
    async stop() {
      ready = false;
      await controller.stop();
      await templatePolicies.idle();
      await store.stop();
      await workloads.stopInformers();
      await elector?.release();
      if (rotation) clearInterval(rotation);
      await webhook?.close();
      health.close();
      metrics.close();
      kc.closeConnections();
    },
  };
}

export function parseControllerFlags(argv: string[]): ControllerFlags {
  const program = new Command('agent-sandbox-controller')
    .option('--kubeconfig <file>', 'kubeconfig (default: $KUBECONFIG, ~/.kube/config, or in-cluster)')
    .option('--leader-elect [bool]', 'hold a Lease so one replica acts at a time', (v) => v !== 'false', true)
    .option('--leader-election-namespace <ns>', 'namespace of the Lease', 'agent-sandbox-system')
    .option('--metrics-bind-address <addr>', 'Prometheus metrics (0 disables)', ':8080')
    .option('--health-probe-bind-address <addr>', '/healthz and /readyz (0 disables)', ':8081')
    .option(
      '--extensions [bool]',
      'claims, templates and warm pools (always on here; accepted for upstream compatibility)',
      true,
    )
    .option('--sandbox-concurrent-workers <n>', 'Sandbox reconciles at once', (v) => Number(v), 100)
    .option('--sandbox-claim-concurrent-workers <n>', 'SandboxClaim reconciles at once', (v) => Number(v), 50)
    .option('--sandbox-warm-pool-concurrent-workers <n>', 'SandboxWarmPool reconciles at once', (v) => Number(v), 4)
    .option('--webhook-bind-address <addr>', 'conversion webhook (HTTPS; 0 disables)', ':9443')
    .option(
      '--webhook-service-name <name>',
      'the Service the CRDs call the webhook through',
      'agent-sandbox-webhook-service',
    )
    .option('--webhook-service-namespace <ns>', 'its namespace', 'agent-sandbox-system')
    .option(
      '--webhook-cert-secret <name>',
      "the Secret in that namespace that holds the webhook's certificate, shared by the replicas",
      'agent-sandbox-webhook-cert',
    )
    .option('--webhook-url <url>', 'call the webhook at this URL instead (a controller outside the cluster)')
    .option('--cluster-domain <domain>', 'Kubernetes cluster domain for status.serviceFQDN', 'cluster.local')
    .option(
      '--enable-warm-pool-eviction [bool]',
      'mark warm pool pods safe to evict (cluster-autoscaler)',
      (v) => v !== 'false',
      true,
    )
    .option(
      '--sandbox-warm-pool-replenish-delay <duration>',
      'replace members a burst of claims took only once none has left for this long (0: at once)',
      parseGoDuration,
      0,
    )
    .option(
      '--sandbox-warm-pool-readiness-grace-period <duration>',
      'a pool member not Ready in this long is replaced, or held if its pod is unschedulable',
      positiveDuration('--sandbox-warm-pool-readiness-grace-period'),
      5 * 60_000,
    )
    .option(
      '--sandbox-warm-pool-unschedulable-recheck-interval <duration>',
      'how often a pool holding unschedulable members looks again',
      positiveDuration('--sandbox-warm-pool-unschedulable-recheck-interval'),
      60_000,
    )
    .option(
      '--sandbox-warm-pool-max-refill-rate <n>',
      'replacements created per second per pool at most (0: unpaced)',
      nonNegative('--sandbox-warm-pool-max-refill-rate'),
      0,
    )
    .option('--disable-claim-events [bool]', 'no Events from the SandboxClaim reconciler', (v) => v !== 'false', false)
    .option(
      '--disable-claim-observability-annotations [bool]',
      'do not stamp claims with agents.x-k8s.io/controller-first-observed-at (one write per claim less)',
      (v) => v !== 'false',
      false,
    )
    .option(
      '--claims-first-max-defer <duration>',
      'while claims are queued or arriving one after another, an adopted Sandbox (Ready already) waits for its Pod relabel and status update, and a pool for its replacements, up to this long (0: nothing waits)',
      parseGoDuration,
      30_000,
    )
    .option(
      '--claims-first-refill-rate <per second>',
      'a warm pool refilling while claims are still queued or arriving makes at most this many replacements a second (0: no limit)',
      nonNegative('--claims-first-refill-rate'),
      20,
    )
    .allowUnknownOption(false);
  program.parse(argv, { from: 'user' });
  const o = program.opts();
  return {
    kubeconfig: o.kubeconfig,
    leaderElect: o.leaderElect !== false,
    leaderElectionNamespace: o.leaderElectionNamespace,
    metricsBindAddress: o.metricsBindAddress,
    healthProbeBindAddress: o.healthProbeBindAddress,
    extensions: true /* always on here (the flag is accepted for upstream's command lines) */,
    sandboxConcurrentWorkers: o.sandboxConcurrentWorkers,
    sandboxClaimConcurrentWorkers: o.sandboxClaimConcurrentWorkers,
    sandboxWarmPoolConcurrentWorkers: o.sandboxWarmPoolConcurrentWorkers,
    webhookBindAddress: o.webhookBindAddress,
    webhookServiceName: o.webhookServiceName,
    webhookServiceNamespace: o.webhookServiceNamespace,
    webhookCertSecret: o.webhookCertSecret,
    webhookUrl: o.webhookUrl,
    clusterDomain: o.clusterDomain,
    enableWarmPoolEviction: o.enableWarmPoolEviction !== false,
    sandboxWarmPoolReplenishDelayMs: o.sandboxWarmPoolReplenishDelay,
    sandboxWarmPoolMaxRefillRate: o.sandboxWarmPoolMaxRefillRate,
    sandboxWarmPoolReadinessGracePeriodMs: o.sandboxWarmPoolReadinessGracePeriod,
    sandboxWarmPoolUnschedulableRecheckIntervalMs: o.sandboxWarmPoolUnschedulableRecheckInterval,
    disableClaimEvents: o.disableClaimEvents === true,
    disableClaimObservabilityAnnotations: o.disableClaimObservabilityAnnotations === true,
    claimsFirstMaxDeferMs: o.claimsFirstMaxDefer,
    claimsFirstRefillRate: o.claimsFirstRefillRate,
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  runController(parseControllerFlags(process.argv.slice(2))).then(
    (c) => {
      const stop = () => void c.stop().then(() => process.exit(0));
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
    },
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
