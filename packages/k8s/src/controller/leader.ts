// Leader election on a coordination.k8s.io Lease, as controller-runtime does it: acquire when the
// lease is free or expired, renew well before it expires, and stop being leader (the process
// exits) when renewing fails for longer than the renew deadline: two leaders must never act.
import * as k8s from '@kubernetes/client-node';

/** A MicroTime as the API server parses it: six fractional digits (a JS Date has three). */
export const microTime = (d: Date): k8s.V1MicroTime =>
  d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z') as unknown as k8s.V1MicroTime;

export interface LeaderOptions {
  namespace: string;
  name: string;
  identity: string;
  leaseDurationS?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  log?: (msg: string) => void;
}

export class LeaderElector {
  private readonly api: k8s.CoordinationV1Api;
  private stopped = false;
  private renewTimer?: NodeJS.Timeout;

  constructor(
    kc: k8s.KubeConfig,
    private readonly o: LeaderOptions,
  ) {
    this.api = kc.makeApiClient(k8s.CoordinationV1Api);
  }

  private get duration() {
    return this.o.leaseDurationS ?? 15;
  }

  /** Resolves once this process holds the lease; then keeps renewing it; calls `onLost` if not. */
  async acquire(onLost: () => void): Promise<void> {
    const retry = this.o.retryPeriodMs ?? 2000;
    while (!this.stopped) {
      if (await this.tryAcquireOrRenew()) break;
      await new Promise((r) => setTimeout(r, retry));
    }
    this.o.log?.(`became leader (lease ${this.o.namespace}/${this.o.name})`);
    let lastRenew = Date.now();
    const deadline = this.o.renewDeadlineMs ?? 10_000;
    const tick = async () => {
      if (this.stopped) return;
      if (await this.tryAcquireOrRenew().catch(() => false)) lastRenew = Date.now();
      else if (Date.now() - lastRenew > deadline) {
        this.o.log?.('lost the lease');
        onLost();
        return;
      }
      this.renewTimer = setTimeout(() => void tick(), retry);
    };
    this.renewTimer = setTimeout(() => void tick(), retry);
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const { namespace, name, identity } = this.o;
    const now = new Date();
    let lease: k8s.V1Lease | undefined;
    try {
      lease = await this.api.readNamespacedLease({ namespace, name });
    } catch (err) {
      if ((err as { code?: number }).code !== 404) return false;
    }
    const spec: k8s.V1LeaseSpec = {
      holderIdentity: identity,
      leaseDurationSeconds: this.duration,
      renewTime: microTime(now),
    };
    if (!lease) {
      try {
        await this.api.createNamespacedLease({
          namespace,
          body: { metadata: { name, namespace }, spec: { ...spec, acquireTime: microTime(now), leaseTransitions: 0 } },
        });
        return true;
      } catch {
        return false;
      }
    }
    const held = lease.spec?.holderIdentity;
    const renewed = lease.spec?.renewTime ? new Date(lease.spec.renewTime).getTime() : 0;
    const expired = renewed + (lease.spec?.leaseDurationSeconds ?? this.duration) * 1000 < now.getTime();
    if (held && held !== identity && !expired) return false;
    const transitions = (lease.spec?.leaseTransitions ?? 0) + (held === identity ? 0 : 1);
    try {
      // resourceVersion in the body: a concurrent taker makes this a 409, not a second leader.
      await this.api.replaceNamespacedLease({
        namespace,
        name,
        body: {
          ...lease,
          spec: {
            ...lease.spec,
            ...spec,
            leaseTransitions: transitions,
            ...(held === identity ? {} : { acquireTime: microTime(now) }),
          },
        },
      });
      return true;
    } catch {
      return false;
    }
  }

  /** Gives the lease up (a clean shutdown hands over at once instead of after it expires). */
  async release(): Promise<void> {
    this.stopped = true;
    if (this.renewTimer) clearTimeout(this.renewTimer);
    try {
      const lease = await this.api.readNamespacedLease({ namespace: this.o.namespace, name: this.o.name });
      if (lease.spec?.holderIdentity !== this.o.identity) return;
      await this.api.replaceNamespacedLease({
        namespace: this.o.namespace,
        name: this.o.name,
        body: { ...lease, spec: { ...lease.spec, holderIdentity: undefined, leaseDurationSeconds: 1 } },
      });
    } catch {
      /* best effort */
    }
  }
}
