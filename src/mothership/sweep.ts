/**
 * The periodic sweep: silent workers are declared lost, unconfirmed schedules go back to the queue.
 * Each write applies only if what the sweep read is still so. Every mothership replica on one
 * PostgreSQL sweeps; between one replica's read and its write another may have heard the
 * worker again, or requeued the run and scheduled it anew, and an older read must never undo that.
 * Each function is one transaction whose statements carry the read as their condition; on SQLite (one
 * replica, whose control plane sweeps between messages) the conditions simply hold.
 */
import type { Logger } from "../log/logger.ts";
import { isTerminalRunState, type RunReason, type RunState } from "../protocol/states.ts";
import { transition, type RunStatus } from "./run-lifecycle.ts";
import type { Run, Store, Worker } from "./store/index.ts";
import type { Sql } from "./store/sql.ts";

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
        const failed = await declareSilentWorkerGone(store.sql, w, iso());
        if (!failed) continue;
        log.warn("worker silent, declared gone", { worker: w.id, last_seen: w.last_seen });
        for (const c of failed) this.o.logState(c.run, c.from, c.to);
      }
    }
    const expired = new Date(now - this.o.scheduleTimeoutMs).toISOString();
    for (const run of await store.runs.scheduledBefore(expired)) {
      const next = await requeueUnconfirmed(store.sql, run, iso());
      if (!next) continue;
      log.warn("schedule not confirmed, run back in the queue", { run: run.id, worker: run.worker });
      this.o.logState(run.id, run.state, next);
    }
  }
}

/** What the sweep's condition compares: the run's status and the time of its last change. */
type RunVersion = Pick<Run, "id" | "updated_at"> & RunStatus;

/** A status change that happened: for the control plane's log. */
export interface StatusChange {
  run: string;
  from: RunState;
  to: RunStatus;
}

interface HeldRow {
  id: string;
  state: RunState;
  reason: RunReason | null;
  exit_code: number | null;
  worker: string | null;
  cancel_requested: number;
  updated_at: string;
}

/**
 * Writes `next` over `run` if the run is still as read (state, worker, cancel request, last change).
 * The events the sweep applies (schedule-expired, worker-lost) carry no phase, messages nor last seq.
 */
async function applyIfUnchanged(sql: Sql, run: RunVersion, next: RunStatus, now: string): Promise<boolean> {
  const changed = await sql.run(
    `UPDATE runs SET state = ?, reason = ?, exit_code = ?, worker = ?, cancel_requested = ?, updated_at = ?,
       finished_at = CASE WHEN ? = 1 THEN COALESCE(finished_at, ?) ELSE NULL END
     WHERE id = ? AND state = ? AND updated_at = ? AND cancel_requested = ? AND worker IS NOT DISTINCT FROM ?`,
    next.state,
    next.reason,
    next.exit_code,
    next.worker,
    next.cancel_requested ? 1 : 0,
    now,
    isTerminalRunState(next.state) ? 1 : 0,
    now,
    run.id,
    run.state,
    run.updated_at,
    run.cancel_requested ? 1 : 0,
    run.worker,
  );
  return changed > 0;
}

/**
 * A SCHEDULED run its launcher never confirmed goes back to the queue, and its worker is free of it:
 * only if it is still SCHEDULED to that worker since the same moment. Its new status, or null. @testSeam
 */
export async function requeueUnconfirmed(sql: Sql, run: Run, now: string): Promise<RunStatus | null> {
  const next = transition(run, { type: "schedule-expired" });
  if (!next || !run.worker) return null;
  const worker = run.worker;
  return sql.transaction(async (tx) => {
    if (!(await applyIfUnchanged(tx, run, next, now))) return null;
    await tx.run("UPDATE workers SET current_run = NULL WHERE id = ? AND current_run = ?", worker, run.id);
    return next;
  });
}

/**
 * A worker silent since the sweep read it is declared gone (crashed) and the runs it holds fail
 * `launcher-crashed`. Null when it was heard from since, or is already gone (another replica's sweep). @testSeam
 */
export async function declareSilentWorkerGone(sql: Sql, w: Worker, now: string): Promise<StatusChange[] | null> {
  return sql.transaction(async (tx) => {
    const gone = await tx.run("UPDATE workers SET gone_at = ?, gone_crashed = 1, current_run = NULL WHERE id = ? AND gone_at IS NULL AND last_seen = ?", now, w.id, w.last_seen);
    if (gone === 0) return null;
    const held = await tx.all<HeldRow>(
      "SELECT id, state, reason, exit_code, worker, cancel_requested, updated_at FROM runs WHERE worker = ? AND state IN ('SCHEDULED', 'PREPARING', 'RUNNING')",
      w.id,
    );
    const changes: StatusChange[] = [];
    for (const row of held) {
      const run: RunVersion = { ...row, cancel_requested: row.cancel_requested === 1 };
      const next = transition(run, { type: "worker-lost" });
      if (next && (await applyIfUnchanged(tx, run, next, now))) changes.push({ run: run.id, from: run.state, to: next });
    }
    return changes;
  });
}
