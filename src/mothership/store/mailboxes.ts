/**
 * Long-poll mailboxes in PostgreSQL, shared by every replica on the database (the waiting and waking
 * is poll-mailbox-shared.ts). A mailbox is a row of `poll_mailboxes` keyed by (pool, worker); its
 * messages are rows of `poll_messages` keyed by (pool, worker, cursor).
 *
 * Cursors come from one sequence, `poll_cursor`, so they only grow, whichever replica hands them out.
 * A message takes its cursor while its mailbox row is locked and commits before the lock is let go:
 * within a mailbox cursors commit in their order, so a poll that sees cursor N has seen every message
 * below N, and acknowledging up to N can never remove one it was not given. A mailbox made again
 * (swept, forgotten) starts above every cursor handed out before (`opened`), so a cursor a launcher
 * kept from the old one acknowledges nothing new, and messages the old one left behind are not read.
 *
 * Each change a waiting poll cares about is announced with NOTIFY on MAILBOX_CHANNEL, sent at commit,
 * payload `pool/worker` (or `pool` for a whole pool): ids only, never a message.
 */
import type { MailboxEntry } from "../poll-mailbox.ts";
import type { Sql } from "./sql.ts";

export const MAILBOX_CHANNEL = "spacelift_poll_mailbox";

export class MailboxTable {
  constructor(private readonly sql: Sql) {}

  /**
   * Makes the mailbox if it has none, and marks it polled at `now` when the last mark is older than
   * `touchAfter` (most polls write nothing). Returns whether it was made.
   */
  async open(pool: string, worker: string, now: number, touchAfter: number): Promise<boolean> {
    const made = await this.sql.all<{ made: number }>(
      `WITH touched AS (UPDATE poll_mailboxes SET touched_at = ? WHERE pool = ? AND worker = ? AND touched_at < ? RETURNING 1)
       INSERT INTO poll_mailboxes (pool, worker, opened, touched_at)
       SELECT ?, ?, nextval('poll_cursor'), ? WHERE NOT EXISTS (SELECT 1 FROM poll_mailboxes WHERE pool = ? AND worker = ?)
       ON CONFLICT (pool, worker) DO NOTHING RETURNING 1 AS made`,
      now, pool, worker, now - touchAfter,
      pool, worker, now, pool, worker,
    );
    return made.length > 0;
  }

  /**
   * Adds a message when the worker has a mailbox (null when it has none); beyond `limit` messages the
   * oldest go. Returns its cursor and how many were dropped for it.
   */
  async offer(pool: string, worker: string, payload: string, limit: number): Promise<{ cursor: number; dropped: number } | null> {
    // The statement's snapshot predates its own insert: keeping `limit - 1` older ones leaves `limit`.
    const row = await this.sql.get<{ cursor: string; dropped: string }>(
      `WITH box AS (SELECT pool, worker FROM poll_mailboxes WHERE pool = ? AND worker = ? FOR UPDATE),
       added AS (INSERT INTO poll_messages (pool, worker, payload) SELECT pool, worker, ? FROM box RETURNING cursor),
       moved AS (UPDATE poll_mailboxes b SET last_cursor = added.cursor FROM added WHERE b.pool = ? AND b.worker = ?),
       dropped AS (
         DELETE FROM poll_messages WHERE pool = ? AND worker = ? AND EXISTS (SELECT 1 FROM added)
           AND cursor <= (SELECT cursor FROM poll_messages WHERE pool = ? AND worker = ? ORDER BY cursor DESC OFFSET ? LIMIT 1)
         RETURNING 1)
       SELECT added.cursor, (SELECT count(*) FROM dropped) AS dropped, pg_notify(?, ?) FROM added`,
      pool, worker, payload, pool, worker,
      pool, worker, pool, worker, Math.max(0, limit - 1),
      MAILBOX_CHANNEL, `${pool}/${worker}`,
    );
    return row ? { cursor: Number(row.cursor), dropped: Number(row.dropped) } : null;
  }

  /** Removes the messages up to `after`, unless `after` lies beyond the last cursor this mailbox handed out. */
  async acknowledge(pool: string, worker: string, after: number): Promise<void> {
    await this.sql.run(
      `DELETE FROM poll_messages WHERE pool = ? AND worker = ? AND cursor <= ?
         AND ? <= (SELECT COALESCE(last_cursor, opened) FROM poll_mailboxes WHERE pool = ? AND worker = ?)`,
      pool, worker, after, after, pool, worker,
    );
  }

  /** The first `max` messages and the last cursor handed out, read together; null when there is no mailbox. */
  async read(pool: string, worker: string, max: number): Promise<{ entries: MailboxEntry[]; last: number } | null> {
    const rows = await this.sql.all<{ last: string; cursor: string | null; payload: string | null }>(
      `SELECT COALESCE(b.last_cursor, b.opened) AS last, m.cursor, m.payload FROM poll_mailboxes b
       LEFT JOIN LATERAL (
         SELECT cursor, payload FROM poll_messages WHERE pool = b.pool AND worker = b.worker AND cursor > b.opened ORDER BY cursor LIMIT ?
       ) m ON true
       WHERE b.pool = ? AND b.worker = ? ORDER BY m.cursor`,
      max, pool, worker,
    );
    if (rows.length === 0) return null;
    const entries = rows.filter((r) => r.cursor !== null).map((r) => ({ cursor: Number(r.cursor), payload: r.payload ?? "" }));
    return { entries, last: Number(rows[0]!.last) };
  }

  /** Removes one worker's mailbox and its messages; waiting polls are told. */
  async forget(pool: string, worker: string): Promise<void> {
    await this.sql.all(
      `WITH gone AS (DELETE FROM poll_mailboxes WHERE pool = ? AND worker = ? RETURNING pool, worker),
       messages AS (DELETE FROM poll_messages m USING gone WHERE m.pool = gone.pool AND m.worker = gone.worker)
       SELECT pg_notify(?, ?) FROM gone`,
      pool, worker, MAILBOX_CHANNEL, `${pool}/${worker}`,
    );
  }

  /** Removes every mailbox of a pool; waiting polls of the pool are told. */
  async dropPool(pool: string): Promise<void> {
    await this.sql.all(
      `WITH gone AS (DELETE FROM poll_mailboxes WHERE pool = ? RETURNING 1),
       messages AS (DELETE FROM poll_messages WHERE pool = ?)
       SELECT pg_notify(?, ?) WHERE EXISTS (SELECT 1 FROM gone)`,
      pool, pool, MAILBOX_CHANNEL, pool,
    );
  }

  /**
   * Removes mailboxes not polled since `cutoff`, then messages no mailbox reads (left by a mailbox
   * removed while a message was on its way in). Any replica may run it, at any time: it only deletes.
   */
  async sweep(cutoff: number): Promise<number> {
    const removed = await this.sql.run("DELETE FROM poll_mailboxes WHERE touched_at < ?", cutoff);
    await this.sql.run(
      `DELETE FROM poll_messages m WHERE NOT EXISTS (
         SELECT 1 FROM poll_mailboxes b WHERE b.pool = m.pool AND b.worker = m.worker AND m.cursor > b.opened)`,
    );
    return removed;
  }
}
