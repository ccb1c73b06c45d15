/**
 * Where a message to one worker goes. The control plane addresses a worker as (pool, worker) and
 * knows nothing of how it is reached; each carrier is an outbox: the embedded broker (broker.ts), an
 * external broker (external-broker.ts) and the poll mailboxes (below). `Carriers` (carriers.ts)
 * signs each message once and picks the outbox of the carrier the worker last spoke through.
 */
import type { Logger } from "../log/logger.ts";
import type { PollMailboxes } from "./poll-mailbox.ts";

export interface Outbox {
  /** Hands `message` (the JSON text to deliver, signed by then) to the worker; rejects when it cannot. */
  deliver(pool: string, worker: string, message: string): Promise<void>;
  /** The worker now speaks through another carrier: drop what this one keeps for it. */
  release?(pool: string, worker: string): void | Promise<void>;
}

/**
 * The long-poll carrier: messages wait in the worker's mailbox until it polls. A worker whose
 * mailbox was removed (nobody polled for minutes) is not listening; what it missed it learns from
 * the answer to its next hello, so the message is dropped, not an error.
 */
export function pollOutbox(mailboxes: PollMailboxes, logger: Logger): Outbox {
  const log = logger.child({ component: "poll-outbox" });
  return {
    async deliver(pool, worker, message) {
      if (!(await mailboxes.offer(pool, worker, message))) log.debug("no mailbox for this worker (it stopped polling); message dropped", { pool, worker });
    },
    release: (pool, worker) => mailboxes.forget(pool, worker),
  };
}
