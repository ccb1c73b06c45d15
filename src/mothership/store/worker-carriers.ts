/**
 * Which carrier each worker speaks through, in PostgreSQL (`worker_carriers`), so that every replica
 * reaches a worker the way it speaks, also one it never heard (carriers.ts). Keyed by (pool, worker)
 * like everything a launcher reaches, and kept apart from `workers` so it can be written before the
 * worker's first message (its hello) is applied: the answer to that hello, or a run another replica
 * schedules right after, already goes the right way.
 *
 * Looking the row up for every message would cost a query each, so each replica caches what it read
 * or wrote. A change (a new worker, a worker that changed carrier, a pool forgotten, rows pruned) is
 * announced with NOTIFY on CARRIER_CHANNEL (payload `pool/worker`, `pool`, or `*` for all) and every
 * replica drops what it cached of it; after the LISTEN connection comes back from a drop, everything.
 * A read that a change overtook is not cached.
 */
import type { Logger } from "../../log/logger.ts";
import type { CarrierBook } from "../carriers.ts";
import type { PostgresSql } from "./sql.ts";

const CARRIER_CHANNEL = "spacelift_worker_carrier";
/** Most workers a replica caches; the least recently used go first. */
const MAX_CACHED = 100_000;
/** A row is pruned once this old, unless its worker is live. */
const PRUNE_AFTER_MS = 24 * 60 * 60_000;

const keyOf = (pool: string, worker: string): string => `${pool}/${worker}`;

export class SharedCarrierBook implements CarrierBook {
  /** By keyOf(pool, worker): the carrier, or null for a worker with no row. Oldest use first. */
  private readonly cache = new Map<string, string | null>();
  /** Bumped by every invalidation: a read that started before one is not cached. */
  private epoch = 0;
  private unlisten: (() => Promise<void>) | null = null;

  private constructor(
    private readonly sql: PostgresSql,
    private readonly log: Logger,
    private readonly now: () => number,
  ) {}

  /** The book, and this replica listening for changes to it. */
  static async open(sql: PostgresSql, logger: Logger, now: () => number = Date.now): Promise<SharedCarrierBook> {
    const book = new SharedCarrierBook(sql, logger.child({ component: "worker-carriers" }), now);
    book.unlisten = await sql.listen(CARRIER_CHANNEL, (payload) => book.invalidate(payload), () => book.invalidate("*"));
    return book;
  }

  async spoke(pool: string, worker: string, carrier: string): Promise<string | null> {
    const key = keyOf(pool, worker);
    if (this.cache.get(key) === carrier) return null;
    const epoch = this.epoch;
    const row = await this.sql.get<{ before: string | null }>(
      `WITH before AS (SELECT carrier FROM worker_carriers WHERE pool = ? AND worker = ?),
       changed AS (
         INSERT INTO worker_carriers (pool, worker, carrier, heard_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (pool, worker) DO UPDATE SET carrier = EXCLUDED.carrier, heard_at = EXCLUDED.heard_at
           WHERE worker_carriers.carrier <> EXCLUDED.carrier
         RETURNING 1)
       SELECT (SELECT carrier FROM before) AS before, pg_notify(?, ?) FROM changed`,
      pool, worker, pool, worker, carrier, this.now(), CARRIER_CHANNEL, key,
    );
    if (epoch === this.epoch) this.remember(key, carrier);
    return row?.before != null && row.before !== carrier ? row.before : null;
  }

  async carrierOf(pool: string, worker: string): Promise<string | null> {
    const key = keyOf(pool, worker);
    const cached = this.cache.get(key);
    if (cached !== undefined) {
      this.remember(key, cached);
      return cached;
    }
    const epoch = this.epoch;
    const row = await this.sql.get<{ carrier: string }>("SELECT carrier FROM worker_carriers WHERE pool = ? AND worker = ?", pool, worker);
    if (epoch === this.epoch) this.remember(key, row?.carrier ?? null);
    return row?.carrier ?? null;
  }

  async forgetPool(pool: string): Promise<Map<string, string[]>> {
    const rows = await this.sql.all<{ worker: string; carrier: string }>("DELETE FROM worker_carriers WHERE pool = ? RETURNING worker, carrier", pool);
    await this.sql.run("SELECT pg_notify(?, ?)", CARRIER_CHANNEL, pool);
    const byCarrier = new Map<string, string[]>();
    for (const r of rows) byCarrier.set(r.carrier, [...(byCarrier.get(r.carrier) ?? []), r.worker]);
    return byCarrier;
  }

  /**
   * Deletes rows written over a day ago whose worker is not live (launchers make a fresh worker id at
   * each start, so most ids are never heard again). Any replica may run it: it only deletes.
   */
  async prune(): Promise<number> {
    const removed = await this.sql.run(
      `DELETE FROM worker_carriers c WHERE heard_at < ?
         AND NOT EXISTS (SELECT 1 FROM workers w WHERE w.id = c.worker AND w.pool = c.pool AND w.gone_at IS NULL)`,
      this.now() - PRUNE_AFTER_MS,
    );
    if (removed > 0) {
      await this.sql.run("SELECT pg_notify(?, '*')", CARRIER_CHANNEL);
      this.log.debug("carriers of workers long gone forgotten", { removed });
    }
    return removed;
  }

  async close(): Promise<void> {
    const unlisten = this.unlisten;
    this.unlisten = null;
    await unlisten?.().catch((err: unknown) => this.log.warn("ending the carrier LISTEN failed", { error: err }));
  }

  private remember(key: string, carrier: string | null): void {
    this.cache.delete(key);
    this.cache.set(key, carrier);
    if (this.cache.size > MAX_CACHED) this.cache.delete(this.cache.keys().next().value as string);
  }

  /** A NOTIFY: `pool/worker` drops that worker, `pool` the pool's, `*` everything. */
  private invalidate(payload: string): void {
    this.epoch++;
    if (payload === "*") this.cache.clear();
    else if (payload.includes("/")) this.cache.delete(payload);
    else for (const key of [...this.cache.keys()]) if (key.startsWith(`${payload}/`)) this.cache.delete(key);
  }
}
