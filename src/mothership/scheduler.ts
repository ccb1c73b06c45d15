/**
 * Scheduling: each pool's QUEUED runs, oldest first, go to IDLE (live, undrained, not cycling,
 * run-less) workers of that pool whose Docker answers (as their last hello or heartbeat said), the least
 * recently assigned first. An event dispatches only its own pool, and each assignment reads one queue
 * head and one worker, both claimed in the transaction that moves the run to SCHEDULED and records
 * its worker (on PostgreSQL the rows are locked, skipping those another replica holds), so no run
 * reaches two workers and no worker gets two runs, also with several replicas on one database.
 *
 * The control plane calls it from inside its serial queue; encryption and delivery go on outside it.
 */
import type { Logger } from "../log/logger.ts";
import { encryptRun } from "../protocol/envelope.ts";
import { makeMessage, type DownlinkMessage } from "../protocol/messages.ts";
import { observeAssignment } from "./metrics.ts";
import { buildRunSpec } from "./run-spec-builder.ts";
import type { Repos, Run, Store } from "./store/index.ts";

export interface SchedulerOptions {
  store: Store;
  log: Logger;
  now: () => Date;
  /** Moves `run` to SCHEDULED on `worker` through the transaction's repositories; false when it may not. */
  schedule(run: Run, worker: string, tx: Repos): Promise<boolean>;
  send(pool: string, worker: string, message: DownlinkMessage): void;
  /** The run cannot be encrypted to its pool's certificate (called outside the queue; never rejects). */
  unencryptable(run: Run, worker: string, err: unknown): Promise<void>;
}

export class Scheduler {
  constructor(private readonly o: SchedulerOptions) {}

  /** Every pool: the start and the periodic sweep. */
  async dispatchAll(): Promise<void> {
    for (const id of await this.o.store.pools.ids()) await this.dispatchPool(id);
  }

  /** Assigns `pool`'s queue heads to its idle workers until one of the two runs out. */
  async dispatchPool(pool: string): Promise<void> {
    for (;;) {
      const scheduled = await this.o.store.transaction(async (tx): Promise<Run | null> => {
        const run = await tx.runs.claimHeadOfQueue(pool);
        if (!run) return null;
        const worker = await tx.workers.claimNextIdle(pool);
        if (!worker) return null;
        if (!(await this.o.schedule(run, worker.id, tx))) return null;
        await tx.workers.assign(worker.id, run.id, this.o.now().toISOString());
        return { ...run, worker: worker.id };
      });
      if (!scheduled) return;
      observeAssignment(scheduled.created_at, this.o.now());
      await this.publish(scheduled);
    }
  }

  /** Sends a SCHEDULED run to its worker: reads what the spec needs now, encrypts and delivers after. */
  async publish(run: Run): Promise<void> {
    const stack = await this.o.store.stacks.get(run.stack);
    const pool = await this.o.store.pools.get(run.pool);
    const worker = run.worker;
    if (!stack || !pool || !worker) return;
    // The one place secret values are opened: straight into the spec that is encrypted to the pool.
    Promise.resolve()
      .then(() => encryptRun(buildRunSpec(this.o.store.stacks.reveal(stack), run), pool.certificate))
      .then((jwe) => {
        this.o.log.info("run scheduled", { run: run.id, pool: pool.id, worker });
        this.o.send(pool.id, worker, makeMessage("schedule", { run: run.id, jwe }));
      })
      .catch((err: unknown) => {
        this.o.log.error("run cannot be encrypted to the pool certificate", { run: run.id, error: err });
        return this.o.unencryptable(run, worker, err);
      });
  }
}
