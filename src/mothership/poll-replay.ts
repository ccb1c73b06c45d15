/**
 * The nonces of signed long-poll requests seen recently, per pool, so that a request captured on the
 * way (or logged by a proxy) cannot be sent again. A request is only accepted within
 * MAX_CLOCK_SKEW_SECONDS of its timestamp, so a nonce needs to be remembered only until its timestamp
 * leaves that window; after that the timestamp check refuses the request anyway.
 *
 * Memory is bounded: each pool holds at most `maxPerPool` nonces, and expired ones are swept (once a
 * second at most). A pool at its bound with nothing expired has its request refused (the launcher backs off and retries)
 * rather than the set growing or forgetting a nonce that is still valid. Only requests whose signature
 * verified get here, so only a pool's own key can fill its set, and it fills only its own.
 *
 * `ReplayCache` (here) remembers in this process, which sees every request on SQLite (one mothership);
 * on PostgreSQL the nonces are kept in the database, so a request replayed to another replica is
 * refused too (store/nonces.ts).
 */
import { MAX_CLOCK_SKEW_SECONDS } from "../protocol/poll.ts";

export interface ReplayCacheOptions {
  /** The most nonces one pool keeps (default 200,000: ~330 signed requests a second, sustained, per pool). */
  maxPerPool?: number;
  /** Seconds a nonce stays valid after its timestamp. */
  windowSeconds?: number;
  /** Unix time in ms. */
  now?: () => number;
}

export type NonceVerdict = "fresh" | "replayed" | "full";

/** Where the comms endpoint checks nonces. */
export interface ReplayGuard {
  /** Records `nonce` of a request of `pool` stamped `timestamp` (Unix seconds), unless it was seen before. */
  check(pool: string, nonce: string, timestamp: number): NonceVerdict | Promise<NonceVerdict>;
}

interface PoolNonces {
  /** nonce -> Unix seconds after which its request is stale anyway. */
  expires: Map<string, number>;
  lastSweep: number;
}

export class ReplayCache implements ReplayGuard {
  private readonly pools = new Map<string, PoolNonces>();
  private readonly maxPerPool: number;
  private readonly windowSeconds: number;
  private readonly now: () => number;
  private lastSweepAll = 0;

  constructor(o: ReplayCacheOptions = {}) {
    this.maxPerPool = o.maxPerPool ?? 200_000;
    this.windowSeconds = o.windowSeconds ?? MAX_CLOCK_SKEW_SECONDS;
    this.now = o.now ?? Date.now;
  }

  /** Records `nonce` of a request of `pool` stamped `timestamp` (Unix seconds), unless it was seen before. */
  check(pool: string, nonce: string, timestamp: number): NonceVerdict {
    const nowSeconds = this.now() / 1000;
    // Pools that went quiet are emptied too, once a minute.
    if (nowSeconds - this.lastSweepAll >= 60) this.sweepAll();
    let p = this.pools.get(pool);
    if (!p) {
      p = { expires: new Map(), lastSweep: nowSeconds };
      this.pools.set(pool, p);
    }
    const seen = p.expires.get(nonce);
    if (seen !== undefined && seen >= nowSeconds) return "replayed";
    // Sweeping is O(n), so once a second at most, also for a pool at its bound.
    if (nowSeconds - p.lastSweep >= 1) this.sweep(p, nowSeconds);
    if (p.expires.size >= this.maxPerPool) return "full";
    // One second more: the timestamp check compares with fractions of a second.
    p.expires.set(nonce, timestamp + this.windowSeconds + 1);
    return "fresh";
  }

  /** Forgets a pool (deleted, or reset: its old key can no longer sign). */
  dropPool(pool: string): void {
    this.pools.delete(pool);
  }

  /** How many nonces are held, over all pools. */
  size(): number {
    let n = 0;
    for (const p of this.pools.values()) n += p.expires.size;
    return n;
  }

  /** Drops expired nonces of every pool, and pools left empty. */
  sweepAll(): void {
    const nowSeconds = this.now() / 1000;
    this.lastSweepAll = nowSeconds;
    for (const [pool, p] of this.pools) {
      this.sweep(p, nowSeconds);
      if (p.expires.size === 0) this.pools.delete(pool);
    }
  }

  private sweep(p: PoolNonces, nowSeconds: number): void {
    p.lastSweep = nowSeconds;
    for (const [nonce, expires] of p.expires) if (expires < nowSeconds) p.expires.delete(nonce);
  }
}
