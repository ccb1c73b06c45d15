/**
 * The nonces of signed long-poll requests in PostgreSQL, shared by every replica on the database: a
 * request captured on the way and sent to another replica is refused like one sent to the same one.
 * The rules are ReplayCache's (poll-replay.ts): a nonce is remembered until its request's timestamp
 * leaves the clock window, and a pool at its bound with nothing expired has its request refused.
 *
 * Recording is one statement: an insert that conflicts with a nonce still valid changes nothing and
 * returns nothing (replayed), whichever replica recorded it. Counting a pool's nonces on every request
 * would read them all, so each replica counts every pool once a second (after deleting the expired
 * ones) and adds what it recorded since: with several replicas a pool may pass its bound by what the
 * others recorded within that second, never by more.
 */
import { MAX_CLOCK_SKEW_SECONDS } from "../../protocol/poll.ts";
import type { NonceVerdict, ReplayGuard } from "../poll-replay.ts";
import type { Sql } from "./sql.ts";

export interface SharedReplayOptions {
  sql: Sql;
  /** The most nonces one pool keeps (default as ReplayCache). */
  maxPerPool?: number;
  /** Seconds a nonce stays valid after its timestamp. */
  windowSeconds?: number;
  /** Unix time in ms. */
  now?: () => number;
}

export class SharedReplayCache implements ReplayGuard {
  private readonly sql: Sql;
  private readonly maxPerPool: number;
  private readonly windowSeconds: number;
  private readonly now: () => number;
  /** Each pool's nonces at the last count, plus those this replica recorded since. */
  private counts = new Map<string, number>();
  private lastCount = Number.NEGATIVE_INFINITY;
  private counting: Promise<void> | null = null;

  constructor(o: SharedReplayOptions) {
    this.sql = o.sql;
    this.maxPerPool = o.maxPerPool ?? 200_000;
    this.windowSeconds = o.windowSeconds ?? MAX_CLOCK_SKEW_SECONDS;
    this.now = o.now ?? Date.now;
  }

  async check(pool: string, nonce: string, timestamp: number): Promise<NonceVerdict> {
    const nowSeconds = this.now() / 1000;
    if (nowSeconds - this.lastCount >= 1) await this.recount(nowSeconds);
    if ((this.counts.get(pool) ?? 0) >= this.maxPerPool) {
      const seen = await this.sql.get("SELECT 1 FROM poll_nonces WHERE pool = ? AND nonce = ? AND expires >= ?", pool, nonce, nowSeconds);
      return seen ? "replayed" : "full";
    }
    // One second more: the timestamp check compares with fractions of a second.
    const recorded = await this.sql.get(
      `INSERT INTO poll_nonces (pool, nonce, expires) VALUES (?, ?, ?)
       ON CONFLICT (pool, nonce) DO UPDATE SET expires = EXCLUDED.expires WHERE poll_nonces.expires < ?
       RETURNING 1`,
      pool, nonce, timestamp + this.windowSeconds + 1, nowSeconds,
    );
    if (!recorded) return "replayed";
    this.counts.set(pool, (this.counts.get(pool) ?? 0) + 1);
    return "fresh";
  }

  /** Deletes expired nonces (any replica, any time) and counts each pool's again; one at a time. */
  private recount(nowSeconds: number): Promise<void> {
    this.counting ??= (async () => {
      try {
        await this.sql.run("DELETE FROM poll_nonces WHERE expires < ?", nowSeconds);
        const rows = await this.sql.all<{ pool: string; n: string }>("SELECT pool, count(*) AS n FROM poll_nonces GROUP BY pool");
        this.counts = new Map(rows.map((r) => [r.pool, Number(r.n)]));
        this.lastCount = nowSeconds;
      } finally {
        this.counting = null;
      }
    })();
    return this.counting;
  }
}
