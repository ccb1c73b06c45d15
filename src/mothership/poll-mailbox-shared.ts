/**
 * Long-poll mailboxes on PostgreSQL, for any number of replicas: the messages wait in the database
 * (store/mailboxes.ts), so a launcher's polls may reach a different replica each time, and a message
 * any replica delivers is answered by whichever replica the launcher polls.
 *
 * A poll that finds its mailbox empty waits for a notification, not a timer: every delivery NOTIFYs
 * `pool/worker` at commit, and each replica has one LISTEN (store/sql.ts `listen`, one connection for
 * all its listens) that wakes its own waiting poll of that (pool, worker), which reads the mailbox
 * again. The waiter is registered before the first read, so a message committed in between still
 * wakes it. After the LISTEN connection comes back from a drop, every waiting poll reads again
 * (notifications sent meanwhile are lost); a poll that missed one answers at its wait's end at worst.
 *
 * Semantics are MemoryMailboxes' (poll-mailbox.ts): acknowledgement by cursor, a bound per mailbox
 * (oldest first), one waiting poll per worker in each replica, idle mailboxes swept (by any replica;
 * sweeping only deletes, so replicas sweeping at once is harmless).
 */
import type { Logger } from "../log/logger.ts";
import type { MailboxEntry, PollMailboxes } from "./poll-mailbox.ts";
import { MAILBOX_CHANNEL, MailboxTable } from "./store/mailboxes.ts";
import type { PostgresSql } from "./store/sql.ts";

export interface SharedMailboxOptions {
  sql: PostgresSql;
  logger: Logger;
  /** Most messages one mailbox holds. */
  limit?: number;
  /** A mailbox nobody polled for this long is removed. */
  idleMs?: number;
  now?: () => number;
}

/** A poll marks its mailbox used at most this often (a write); far below `idleMs`. */
const TOUCH_EVERY_MS = 60_000;
/** The database sweep runs at most this often per replica; any replica's sweep serves all. */
const SWEEP_EVERY_MS = 60_000;
/** Most mailboxes this replica remembers having served (for `has`); the least recent go first. */
const MAX_KNOWN = 100_000;

/** Pool and worker ids are topic levels (no `/`), so this key is one pair only. */
const keyOf = (pool: string, worker: string): string => `${pool}/${worker}`;

export class SharedMailboxes implements PollMailboxes {
  private readonly table: MailboxTable;
  private readonly log: Logger;
  private readonly limit: number;
  private readonly idleMs: number;
  private readonly now: () => number;
  /** The poll waiting in this replica, by keyOf(pool, worker): calling it ends the wait. */
  private readonly waiters = new Map<string, () => void>();
  /** When this replica last opened each mailbox, oldest first (Map insertion order). */
  private readonly known = new Map<string, number>();
  /** The delivery under way per mailbox: this replica's deliveries to one worker commit in order. */
  private readonly offers = new Map<string, Promise<unknown>>();
  private unlisten: (() => Promise<void>) | null = null;
  private lastSweep = 0;
  private closed = false;

  private constructor(o: SharedMailboxOptions) {
    this.table = new MailboxTable(o.sql);
    this.log = o.logger.child({ component: "poll-mailbox" });
    this.limit = o.limit ?? 1000;
    this.idleMs = o.idleMs ?? 10 * 60_000;
    this.now = o.now ?? Date.now;
  }

  /** Mailboxes in the database, and this replica listening for their changes. */
  static async open(o: SharedMailboxOptions): Promise<SharedMailboxes> {
    const m = new SharedMailboxes(o);
    m.unlisten = await o.sql.listen(MAILBOX_CHANNEL, (payload) => m.notified(payload), () => m.wakeAll());
    return m;
  }

  async open(pool: string, worker: string): Promise<void> {
    await this.table.open(pool, worker, this.now(), TOUCH_EVERY_MS);
    const key = keyOf(pool, worker);
    this.known.delete(key);
    this.known.set(key, this.now());
    if (this.known.size > MAX_KNOWN) this.known.delete(this.known.keys().next().value as string);
  }

  has(pool: string, worker: string): boolean {
    const seen = this.known.get(keyOf(pool, worker));
    return seen !== undefined && seen >= this.now() - this.idleMs;
  }

  async forget(pool: string, worker: string): Promise<void> {
    this.known.delete(keyOf(pool, worker));
    await this.table.forget(pool, worker);
  }

  offer(pool: string, worker: string, payload: string): Promise<boolean> {
    const key = keyOf(pool, worker);
    const offered = (this.offers.get(key) ?? Promise.resolve()).then(() => this.insert(pool, worker, payload));
    const settled = offered.then(
      () => undefined,
      () => undefined,
    );
    this.offers.set(key, settled);
    void settled.then(() => {
      if (this.offers.get(key) === settled) this.offers.delete(key);
    });
    return offered;
  }

  async take(pool: string, worker: string, after: number, max: number, waitMs: number, signal: AbortSignal): Promise<{ entries: MailboxEntry[]; cursor: number }> {
    await this.open(pool, worker);
    await this.table.acknowledge(pool, worker, after);
    const waiting = waitMs > 0 && !signal.aborted && !this.closed ? this.wait(keyOf(pool, worker), waitMs, signal) : null;
    try {
      let box = await this.table.read(pool, worker, max);
      if (box?.entries.length === 0 && waiting) {
        await waiting.done;
        if (this.closed) return { entries: [], cursor: after };
        box = await this.table.read(pool, worker, max);
      }
      // No mailbox any more: forgotten or its pool dropped while the poll waited.
      if (!box) return { entries: [], cursor: after };
      // Nothing left means every message up to the last one was handed over and acknowledged.
      return { entries: box.entries, cursor: box.entries.at(-1)?.cursor ?? box.last };
    } finally {
      waiting?.end();
    }
  }

  async dropPool(pool: string): Promise<void> {
    for (const key of [...this.known.keys()]) if (key.startsWith(`${pool}/`)) this.known.delete(key);
    await this.table.dropPool(pool);
  }

  async sweep(): Promise<void> {
    const now = this.now();
    for (const [key, seen] of this.known) {
      if (seen >= now - this.idleMs) break;
      this.known.delete(key);
    }
    if (now - this.lastSweep < SWEEP_EVERY_MS) return;
    this.lastSweep = now;
    const removed = await this.table.sweep(now - this.idleMs);
    if (removed > 0) this.log.debug("idle mailboxes removed", { removed });
  }

  async close(): Promise<void> {
    this.closed = true;
    this.wakeAll();
    const unlisten = this.unlisten;
    this.unlisten = null;
    await unlisten?.().catch((err: unknown) => this.log.warn("ending the mailbox LISTEN failed", { error: err }));
  }

  private async insert(pool: string, worker: string, payload: string): Promise<boolean> {
    const added = await this.table.offer(pool, worker, payload, this.limit);
    if (added && added.dropped > 0) this.log.warn("mailbox full, oldest messages dropped", { pool, worker, dropped: added.dropped });
    return added !== null;
  }

  /** A NOTIFY: `pool/worker` wakes that worker's waiting poll, `pool` every one of the pool. */
  private notified(payload: string): void {
    if (payload.includes("/")) {
      this.waiters.get(payload)?.();
      return;
    }
    for (const [key, wake] of [...this.waiters]) if (key.startsWith(`${payload}/`)) wake();
  }

  private wakeAll(): void {
    for (const wake of [...this.waiters.values()]) wake();
  }

  private wait(key: string, waitMs: number, signal: AbortSignal): { done: Promise<void>; end: () => void } {
    // Only one poll waits per worker here: an older one (its connection may be dead) answers now.
    this.waiters.get(key)?.();
    let end!: () => void;
    const done = new Promise<void>((resolve) => {
      end = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", end);
        if (this.waiters.get(key) === end) this.waiters.delete(key);
        resolve();
      };
    });
    const timer = setTimeout(end, waitMs);
    signal.addEventListener("abort", end, { once: true });
    this.waiters.set(key, end);
    return { done, end };
  }
}
