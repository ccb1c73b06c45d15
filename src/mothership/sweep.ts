/**
 * The periodic sweep: silent workers are declared lost, unconfirmed schedules go back to the queue.
 * Each write applies only if what the sweep read is still so. Every mothership replica on one
 * PostgreSQL sweeps; between one replica's read and its write another may have heard the
 * worker again, or requeued the run and scheduled it anew, and an older read must never undo that.
 * Each function is one transaction through the repositories' conditional writes (a run's revision,
 * a worker's last_seen and current run).
 */
import type { Logger } from "../log/logger.ts";
import type { RunState } from "../protocol/states.ts";
import { transition, type RunStatus } from "./run-lifecycle.ts";
import type { Run, Store, Worker } from "./store/index.ts";

export interface SweepOptions {
  store: Store;
  heartbeatSeconds: number;
  /** A SCHEDULED run the launcher has not accepted after this long goes back to the queue. */
  scheduleTimeoutMs: number;
  now: () => Date;
  log: Logger;
  /** The control plane's "run state" line. */
  logState(run: string, from: RunState, next: RunStatus): void;
}

export class Sweeper {
  /** Workers are given heartbeatSeconds x this before they are declared lost. */
  private static readonly MISSED_HEARTBEATS = 3;
  /** Silence counts from here: the start, or when a carrier that was down came back (carrierDown). */
  private graceFrom: Date;
  /** Carriers that are down now: their workers cannot be heard, so nobody is declared lost for silence. */
  private readonly carriersDown = new Set<string>();

  constructor(private readonly o: SweepOptions) {
    this.graceFrom = o.now();
  }

  /** See ControlPlane.carrierDown. */
  carrierDown(carrier: string, down: boolean): void {
    if (down) this.carriersDown.add(carrier);
    else if (this.carriersDown.delete(carrier)) this.graceFrom = this.o.now();
  }

  /** One pass (the control plane runs it in its queue, then dispatches every pool). */
  async run(): Promise<void> {
    const { store, log } = this.o;
    const now = this.o.now().getTime();
    const iso = () => this.o.now().toISOString();
    const silence = this.o.heartbeatSeconds * 1000 * Sweeper.MISSED_HEARTBEATS;
    // After a restart every worker gets a full grace period to reconnect before it can be lost.
    if (this.carriersDown.size === 0 && now - this.graceFrom.getTime() >= silence) {
      for (const w of await store.workers.silentSince(new Date(now - silence).toISOString())) {
        const failed = await declareWorkerGone(store, w, true, iso());
        if (!failed) continue;
        log.warn("worker silent, declared gone", { worker: w.id, last_seen: w.last_seen });
        for (const c of failed) this.o.logState(c.run, c.from, c.to);
      }
    }
    const expired = new Date(now - this.o.scheduleTimeoutMs).toISOString();
    for (const run of await store.runs.scheduledBefore(expired)) {
      const next = await requeueUnconfirmed(store, run, iso());
      if (!next) continue;
      log.warn("schedule not confirmed, run back in the queue", { run: run.id, worker: run.worker });
      this.o.logState(run.id, run.state, next);
    }
  }
}

/** A status change that happened: for the control plane's log. */
export interface StatusChange {
  run: string;
  from: RunState;
  to: RunStatus;
}

/**
 * A SCHEDULED run its launcher never confirmed goes back to the queue, and its worker is free of it:
 * only if no status was written since the sweep read it (it may since have been accepted, or requeued
 * and scheduled anew, which a retry would undo). Its new status, or null. @testSeam
 */
export async function requeueUnconfirmed(store: Store, run: Run, now: string): Promise<RunStatus | null> {
  const next = transition(run, { type: "schedule-expired" });
  const worker = run.worker;
  if (!next || !worker) return null;
  return store.transaction(async (tx) => {
    if (!(await tx.runs.applyStatus(run, next, now))) return null;
    await tx.workers.release(worker, run.id);
    return next;
  });
}

/**
 * A worker, as read, is declared gone (by the sweep when silent, by its launcher's goodbye or Last Will)
 * and the runs it holds fail `launcher-crashed`, in one transaction. Null when it was heard from since
 * it was read, or is already gone (another replica got there first).
 */
export async function declareWorkerGone(store: Store, w: Worker, crashed: boolean, now: string): Promise<StatusChange[] | null> {
  return store.transaction(async (tx) => {
    if (!(await tx.workers.markGone(w, crashed, now))) return null;
    const changes: StatusChange[] = [];
    for (const run of await tx.runs.heldBy(w.id)) {
      const applied = await tx.runs.applyEvent(run, { type: "worker-lost" }, now, {}, w.id);
      if (applied) changes.push({ run: run.id, from: applied.from.state, to: applied.to });
    }
    return changes;
  });
}
