/**
 * What the carriers remember about launchers: long-poll mailboxes, nonces of signed requests, and the
 * carrier each worker speaks through. With SQLite one mothership hears every launcher, so all of it
 * stays in the process; with PostgreSQL any number of replicas may share the database, so all of it
 * lives there (poll-mailbox-shared.ts, store/nonces.ts, store/worker-carriers.ts) and a launcher may
 * reach any replica at any time.
 */
import type { Logger } from "../log/logger.ts";
import { MemoryCarrierBook, type CarrierBook } from "./carriers.ts";
import { MemoryMailboxes, type PollMailboxes } from "./poll-mailbox.ts";
import { SharedMailboxes } from "./poll-mailbox-shared.ts";
import { ReplayCache, type ReplayGuard } from "./poll-replay.ts";
import type { Store } from "./store/index.ts";
import { SharedReplayCache } from "./store/nonces.ts";
import { PostgresSql } from "./store/sql.ts";
import { SharedCarrierBook } from "./store/worker-carriers.ts";

export interface CommsState {
  mailboxes: PollMailboxes;
  replays: ReplayGuard;
  carriers: CarrierBook;
  /** The periodic cleanup (idle mailboxes; on PostgreSQL also carriers of workers long gone); logs its failures. */
  sweep(): Promise<void>;
  /** Ends waiting polls and listens; before the store closes. */
  close(): Promise<void>;
}

/** The carriers of long-gone workers are pruned at most this often per replica. */
const PRUNE_EVERY_MS = 10 * 60_000;

export async function openCommsState(store: Store, logger: Logger): Promise<CommsState> {
  const log = logger.child({ component: "comms-state" });
  if (!(store.sql instanceof PostgresSql)) {
    const mailboxes = new MemoryMailboxes({ logger });
    return {
      mailboxes,
      replays: new ReplayCache(),
      carriers: new MemoryCarrierBook(),
      sweep: () => mailboxes.sweep(),
      close: () => mailboxes.close(),
    };
  }
  const sql = store.sql;
  const mailboxes = await SharedMailboxes.open({ sql, logger });
  const carriers = await SharedCarrierBook.open(sql, logger);
  let lastPrune = Date.now();
  return {
    mailboxes,
    replays: new SharedReplayCache({ sql }),
    carriers,
    async sweep() {
      await mailboxes.sweep().catch((err: unknown) => log.error("sweeping poll mailboxes failed", { error: err }));
      if (Date.now() - lastPrune < PRUNE_EVERY_MS) return;
      lastPrune = Date.now();
      await carriers.prune().catch((err: unknown) => log.error("pruning worker carriers failed", { error: err }));
    },
    async close() {
      await mailboxes.close();
      await carriers.close();
    },
  };
}
