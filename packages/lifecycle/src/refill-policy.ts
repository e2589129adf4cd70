// When work that can wait yields to claims: a warm pool's replacements for the members claims
// took (upstream v0.5's refill shaping: a hold and a maximum rate), and our "claims first" (the
// replacements, and the rest of an adoption, wait while claims are busy, for a bounded time).
// One object per controller owns the settings and the state they need between passes (per pool,
// and the claim stream), so that two controllers in one process (tests, a leader change) keep
// their own, and the logic is tested here without a store or a queue.

/** How many claims wait to be reconciled: the controller's claim queue. */
export interface ClaimQueue {
  readonly length: number;
}

export interface RefillPolicyOptions {
  /**
   * Replacements wait until no member has left the pool for this long (upstream's
   * --sandbox-warm-pool-replenish-delay): a burst of claims gets the API server, or the CPU, first.
   * @default 0
   */
  replenishDelayMs?: number;
  /** At most this many replacements per second per pool (--sandbox-warm-pool-max-refill-rate). @default 0: unpaced */
  maxRefillRate?: number;
  /**
   * Claims first: while claims are busy (queued, or the last one arrived less than
   * claimsQuietMs ago), work that can wait does, up to this long, so that claims have the API
   * server (or the machine) to themselves. That work is the rest of an adoption (the member is
   * Ready already: its Pod's relabelling and its status at the new generation) and the pool's
   * replacements for the members claims took (between claims one after another, not once the
   * pool is down to a quarter).
   * @default 0 (nothing waits)
   */
  claimsFirstMaxDeferMs?: number;
  /**
   * Claims first: a pool that refills while claims are still busy (down to a quarter, or its
   * wait spent) makes at most this many replacements a second.
   * @default 0 (no limit)
   */
  claimsFirstRefillPerS?: number;
  /** Claims this close together are one stream, for claims first. @default CLAIMS_QUIET_MS */
  claimsQuietMs?: number;
}

/**
 * Claims that arrive less than this apart are one stream: the work claims first holds back waits
 * for a gap this long. (Under load each claim keeps the API server busy for ~100 ms; work let in
 * between two claims of a stream doubles the next one's latency.)
 */
export const CLAIMS_QUIET_MS = 500;
/** How often a pool waiting for the claim queue looks again. */
export const CLAIMS_FIRST_POLL_MS = 100;

/** A pass's share of a pool's replacements: how many it may create, and when to look again if fewer. */
export interface RefillGrant {
  allow: number;
  retryMs?: number;
}

/**
 * What the policy remembers of one pool: the member count last seen (a drop means claims are
 * taking members), the hold that drop arms, and a token bucket that holds at most one second of
 * creates.
 */
interface PoolRefill {
  lastMembers: number;
  holdUntil: number;
  tokens: number;
  tokensAt: number;
  /** Claims first: when this drain's wait for the claim queue began, and whether it is used up. */
  claimsWaitFrom?: number;
  claimsWaitSpent?: boolean;
  /** Claims took members since the pool was last full: what it makes now are replacements. */
  drained?: boolean;
}

export class RefillPolicy {
  private readonly delayMs: number;
  private readonly rate: number;
  readonly claimsFirstMaxDeferMs: number;
  private readonly claimsFirstRefillPerS: number;
  private readonly claimsQuietMs: number;
  private readonly pools = new Map<string, PoolRefill>();
  /** When the last new claim was seen (on `monotonicMs`). */
  private lastClaimArrival = -Infinity;
  /** Adopted Sandboxes waiting for claims to be quiet: key → when to go anyway (on `monotonicMs`). */
  private readonly followUps = new Map<string, number>();

  /**
   * `claims`: the claim queue, when claims first is on (claimsFirstMaxDeferMs > 0).
   * `monotonicMs`: the claim stream's clock (real time even where the reconcilers' clock is fake).
   */
  constructor(
    opts: RefillPolicyOptions = {},
    private readonly claims: ClaimQueue = { length: 0 },
    private readonly monotonicMs: () => number = () => performance.now(),
  ) {
    this.delayMs = opts.replenishDelayMs ?? 0;
    this.rate = opts.maxRefillRate ?? 0;
    this.claimsFirstMaxDeferMs = opts.claimsFirstMaxDeferMs ?? 0;
    this.claimsFirstRefillPerS = opts.claimsFirstRefillPerS ?? 0;
    this.claimsQuietMs = opts.claimsQuietMs ?? CLAIMS_QUIET_MS;
  }

  private get claimsFirst(): boolean {
    return this.claimsFirstMaxDeferMs > 0;
  }

  /** A new claim was seen (its ADDED event). */
  claimArrived(): void {
    this.lastClaimArrival = this.monotonicMs();
  }

  /** Claims wait to be reconciled (a burst). */
  claimsQueued(): boolean {
    return this.claims.length > 0;
  }

  /** None waits, but one came a moment ago (claims one after another). */
  claimsArriving(): boolean {
    return this.monotonicMs() - this.lastClaimArrival < this.claimsQuietMs;
  }

  claimsBusy(): boolean {
    return this.claimsQueued() || this.claimsArriving();
  }

  /**
   * How many replacements pool `key` may create this pass (of `want`), with `current` members
   * (those on their way included) of `desired`. The first sight of a pool (new, or after a
   * restart) never holds: a fill or scale-up starts at once.
   */
  grant(key: string, current: number, desired: number, want: number, nowMs: number): RefillGrant {
    let st = this.pools.get(key);
    let dropped = false;
    if (!st) {
      st = { lastMembers: current, holdUntil: 0, tokens: Math.max(1, this.rate), tokensAt: nowMs };
      this.pools.set(key, st);
    } else {
      dropped = current < st.lastMembers;
      st.lastMembers = current;
      if (current >= desired) {
        st.holdUntil = 0;
        st.claimsWaitFrom = undefined;
        st.claimsWaitSpent = false;
        st.drained = false;
      } else if (dropped) {
        st.drained = true;
        if (this.delayMs > 0) st.holdUntil = nowMs + this.delayMs; // re-armed while the burst lasts
      }
    }
    if (want <= 0) return { allow: 0 };
    if (st.holdUntil > nowMs) return { allow: 0, retryMs: st.holdUntil - nowMs };
    // Claims first: members being taken while claims are queued, or arrive one after another,
    // wait to be replaced until claims are quiet, once per drain and for a bounded time, so that a
    // steady stream of claims cannot keep the pool from refilling (upstream's replenish delay can:
    // its own caveat). Between claims one after another, a pool down to a quarter of its size
    // starts refilling, for the claims still to come. (Claims already queued gain nothing from a
    // refill: one that finds no member starts cold at once, so a burst keeps the API server.)
    const queued = this.claimsFirst && this.claimsQueued();
    const arriving = this.claimsFirst && this.claimsArriving();
    if (this.claimsFirst && !st.claimsWaitSpent && (dropped || st.claimsWaitFrom !== undefined)) {
      if (queued || (arriving && current > desired / 4)) {
        st.claimsWaitFrom ??= nowMs;
        if (nowMs - st.claimsWaitFrom < this.claimsFirstMaxDeferMs) return { allow: 0, retryMs: CLAIMS_FIRST_POLL_MS };
        st.claimsWaitSpent = true; // waited its time in this drain: refill now, however busy
      } else st.claimsWaitFrom = undefined;
    }
    // Replacements made while claims are still busy (a quarter left, or the wait spent) are paced,
    // so that they do not take the API server from them: all at once, 750 replacements made every
    // claim behind them wait seconds (p95 6 s for claims at a steady 40/s). Once claims are quiet,
    // the full rate. (A fill or scale-up is not a refill: it goes at once.)
    const pace = (queued || arriving) && st.drained ? this.claimsFirstRefillPerS : 0;
    const r = this.rate > 0 && pace > 0 ? Math.min(this.rate, pace) : this.rate || pace;
    if (r <= 0) return { allow: want };
    st.tokens = Math.min(Math.max(1, r), st.tokens + ((nowMs - st.tokensAt) / 1000) * r);
    st.tokensAt = nowMs;
    const allow = Math.min(want, Math.floor(st.tokens));
    st.tokens -= allow;
    return allow < want ? { allow, retryMs: Math.ceil(((1 - (st.tokens % 1)) / r) * 1000) } : { allow };
  }

  /**
   * The pool made `n` members: they raise the count a later pass compares with, so that a
   * lagging cache then does not look like members being taken.
   */
  created(key: string, n: number): void {
    const st = this.pools.get(key);
    if (st) st.lastMembers += n;
  }

  /** The pool is gone: a pool re-created under its name is a first sight again. */
  forget(key: string): void {
    this.pools.delete(key);
  }

  /**
   * An adopted Sandbox's follow-up (key): true when it must wait for claims to be quiet (or its
   * longest wait); it is then returned by `dueFollowUps` once it may go.
   */
  holdFollowUp(key: string): boolean {
    if (!this.claimsFirst || !this.claimsBusy()) return false;
    if (!this.followUps.has(key)) this.followUps.set(key, this.monotonicMs() + this.claimsFirstMaxDeferMs);
    return true;
  }

  /** The held follow-ups that may go now (claims quiet, or their wait over), no longer held. */
  dueFollowUps(): string[] {
    const idle = !this.claimsBusy();
    const now = this.monotonicMs();
    const due: string[] = [];
    for (const [k, until] of this.followUps)
      if (idle || until <= now) {
        this.followUps.delete(k);
        due.push(k);
      }
    return due;
  }

  get heldFollowUps(): number {
    return this.followUps.size;
  }

  /** Drops the held follow-ups (the controller stops). */
  clearFollowUps(): void {
    this.followUps.clear();
  }
}
