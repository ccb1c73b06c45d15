/**
 * Downlink mailboxes of the workers that talk HTTP long-poll: what the control plane would have
 * published on their readonly topic waits here until a poll takes it and a later poll acknowledges
 * it by cursor (`after=N`), so a poll answer lost on the way costs nothing: the next poll gets the
 * same messages again.
 *
 * Cursors count up per mailbox from the time it was made (in ms), so a cursor a launcher kept from
 * a previous mailbox (a mothership restart) is lower than any new one and acknowledges nothing new;
 * a cursor above the last one handed out is ignored for the same reason. Each mailbox is bounded:
 * when a worker stops polling, the oldest messages go first (it is declared lost anyway after 3
 * missed heartbeats and reintroduces itself with hello). Mailboxes nobody polled for a while are removed.
 *
 * A mailbox belongs to (pool, worker), never to a worker id alone: worker ids are not secrets, and
 * another pool naming the same id reaches a mailbox of its own, never this one.
 *
 * `PollMailboxes` is what the comms endpoint and the poll outbox use. `MemoryMailboxes` (here) keeps
 * the mailboxes in this process, which serves every poll on SQLite (one mothership); on PostgreSQL
 * they live in the database, so a poll through any replica gets what any replica delivered
 * (poll-mailbox-shared.ts).
 */
import type { Logger } from "../log/logger.ts";

export interface MailboxEntry {
  cursor: number;
  payload: string;
}

export interface PollMailboxes {
  /** The worker talks poll: from now on its downlink goes to its mailbox. */
  open(pool: string, worker: string): Promise<void>;
  /** Whether the worker has a mailbox (talks long-poll), as far as this process knows without asking (metrics). */
  has(pool: string, worker: string): boolean;
  /** The worker talks MQTT now (a restart with another protocol can keep its id): no mailbox for it. */
  forget(pool: string, worker: string): Promise<void>;
  /** Queues one downlink message; false when the worker has no mailbox (it talks MQTT, or stopped polling). */
  offer(pool: string, worker: string, payload: string): Promise<boolean>;
  /**
   * Acknowledges everything up to `after`, then answers what is left (at most `max`), waiting up to
   * `waitMs` for something to arrive when nothing is. A newer poll of the same worker ends this one.
   */
  take(pool: string, worker: string, after: number, max: number, waitMs: number, signal: AbortSignal): Promise<{ entries: MailboxEntry[]; cursor: number }>;
  /** Drops every mailbox of a pool (reset or deleted: its requests no longer verify). */
  dropPool(pool: string): Promise<void>;
  /** Removes mailboxes nobody polled for a while. */
  sweep(): Promise<void>;
  /** Ends every waiting poll (the server is stopping). */
  close(): Promise<void>;
}

interface Mailbox {
  pool: string;
  worker: string;
  entries: MailboxEntry[];
  /** The last cursor handed out. */
  last: number;
  touched: number;
  /** The poll that waits for this mailbox, if one does. */
  waiter: (() => void) | null;
}

export interface MailboxOptions {
  logger: Logger;
  /** Most messages one mailbox holds. */
  limit?: number;
  /** A mailbox nobody touched for this long is removed. */
  idleMs?: number;
  now?: () => number;
}

/** Pool and worker ids are topic levels (no `/`), so this key is one pair only. */
const keyOf = (pool: string, worker: string): string => `${pool}/${worker}`;

export class MemoryMailboxes implements PollMailboxes {
  /** By keyOf(pool, worker). */
  private readonly boxes = new Map<string, Mailbox>();
  private readonly log: Logger;
  private readonly limit: number;
  private readonly idleMs: number;
  private readonly now: () => number;

  constructor(opts: MailboxOptions) {
    this.log = opts.logger.child({ component: "poll-mailbox" });
    this.limit = opts.limit ?? 1000;
    this.idleMs = opts.idleMs ?? 10 * 60_000;
    this.now = opts.now ?? Date.now;
  }

  async open(pool: string, worker: string): Promise<void> {
    this.openNow(pool, worker);
  }

  private openNow(pool: string, worker: string): void {
    const box = this.boxes.get(keyOf(pool, worker));
    if (box) {
      box.touched = this.now();
      return;
    }
    const now = this.now();
    this.boxes.set(keyOf(pool, worker), { pool, worker, entries: [], last: now, touched: now, waiter: null });
  }

  has(pool: string, worker: string): boolean {
    return this.boxes.has(keyOf(pool, worker));
  }

  async forget(pool: string, worker: string): Promise<void> {
    this.remove(keyOf(pool, worker));
  }

  async offer(pool: string, worker: string, payload: string): Promise<boolean> {
    const box = this.boxes.get(keyOf(pool, worker));
    if (!box) return false;
    box.entries.push({ cursor: ++box.last, payload });
    if (box.entries.length > this.limit) {
      const dropped = box.entries.splice(0, box.entries.length - this.limit);
      this.log.warn("mailbox full, oldest messages dropped", { pool, worker, dropped: dropped.length });
    }
    this.wake(box);
    return true;
  }

  async take(pool: string, worker: string, after: number, max: number, waitMs: number, signal: AbortSignal): Promise<{ entries: MailboxEntry[]; cursor: number }> {
    this.openNow(pool, worker);
    const key = keyOf(pool, worker);
    const box = this.boxes.get(key)!;
    if (after <= box.last) box.entries = box.entries.filter((e) => e.cursor > after);
    if (box.entries.length === 0 && waitMs > 0 && !signal.aborted) await this.wait(box, waitMs, signal);
    const current = this.boxes.get(key);
    if (current !== box) return { entries: [], cursor: after };
    box.touched = this.now();
    const entries = box.entries.slice(0, max);
    // Nothing left means every message up to the last one was handed over and acknowledged.
    return { entries, cursor: entries.at(-1)?.cursor ?? box.last };
  }

  async dropPool(pool: string): Promise<void> {
    for (const [key, box] of this.boxes) if (box.pool === pool) this.remove(key);
  }

  async sweep(): Promise<void> {
    const cutoff = this.now() - this.idleMs;
    for (const [key, box] of this.boxes) if (box.touched < cutoff && box.waiter === null) this.remove(key);
  }

  async close(): Promise<void> {
    for (const key of [...this.boxes.keys()]) this.remove(key);
  }

  private remove(key: string): void {
    const box = this.boxes.get(key);
    this.boxes.delete(key);
    if (box) this.wake(box);
  }

  private wake(box: Mailbox): void {
    const waiter = box.waiter;
    box.waiter = null;
    waiter?.();
  }

  private wait(box: Mailbox, waitMs: number, signal: AbortSignal): Promise<void> {
    // Only one poll waits per worker: an older one (its connection may be dead) answers now.
    this.wake(box);
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        if (box.waiter === done) box.waiter = null;
        resolve();
      };
      const timer = setTimeout(done, waitMs);
      signal.addEventListener("abort", done, { once: true });
      box.waiter = done;
    });
  }
}
