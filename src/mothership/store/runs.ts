/** Runs and their logs. Logs are keyed by (run, seq): a resent chunk is stored once. */
import type { Database } from "bun:sqlite";
import type { RunReason, RunState, RunType } from "../../protocol/states.ts";
import type { RunStatus } from "../run-lifecycle.ts";

export interface Run {
  id: string;
  stack: string;
  pool: string;
  type: RunType;
  state: RunState;
  reason: RunReason | null;
  exit_code: number | null;
  worker: string | null;
  phase: string | null;
  cancel_requested: boolean;
  messages: string[];
  /** Highest seq such that every chunk 0..seq is stored (what log acks report). */
  log_acked: number;
  last_seq: number | null;
  /** Bytes of log stored for the run (what the per-run cap counts). */
  log_bytes: number;
  /** The commit the run checks out (`--commit`); none: the branch head. */
  commit_sha: string | null;
  /** The branch of this run (`--branch`); none: the stack's. */
  branch: string | null;
  /** What the user attached when triggering it (Spacelift's user-provided metadata), for policies. */
  user_provided_metadata: string[];
  created_at: string;
  updated_at: string;
  finished_at: string | null;
}

interface RunRow extends Omit<Run, "cancel_requested" | "messages" | "user_provided_metadata"> {
  cancel_requested: number;
  messages: string;
  user_provided_metadata: string;
}

const fromRow = (r: RunRow): Run => ({
  ...r,
  cancel_requested: r.cancel_requested === 1,
  messages: JSON.parse(r.messages) as string[],
  user_provided_metadata: JSON.parse(r.user_provided_metadata) as string[],
});

/** What a trigger says beyond the stack and type. */
export type RunTriggerDetails = Partial<Pick<Run, "commit_sha" | "branch" | "user_provided_metadata">>;

/** In progress first (oldest first), then the queue in the order it is served. */
const ACTIVE_ORDER = "CASE state WHEN 'QUEUED' THEN 1 ELSE 0 END, created_at, id";

/** One phase of a run and when it ran. */
export interface RunPhaseTime {
  name: string;
  started_at: string;
  ended_at: string | null;
}

/** A log chunk as the store keeps it: the wire seq and the decoded bytes. */
export interface StoredLogChunk {
  seq: number;
  data: Uint8Array;
}

export class RunRepo {
  constructor(private readonly db: Database) {}

  insert(r: Pick<Run, "id" | "stack" | "pool" | "type" | "created_at"> & RunTriggerDetails): Run {
    this.db
      .query(
        `INSERT INTO runs (id, stack, pool, type, state, commit_sha, branch, user_provided_metadata, created_at, updated_at)
         VALUES ($id, $stack, $pool, $type, 'QUEUED', $commit_sha, $branch, $metadata, $created_at, $created_at)`,
      )
      .run({
        id: r.id,
        stack: r.stack,
        pool: r.pool,
        type: r.type,
        commit_sha: r.commit_sha ?? null,
        branch: r.branch ?? null,
        metadata: JSON.stringify(r.user_provided_metadata ?? []),
        created_at: r.created_at,
      });
    return this.get(r.id) as Run;
  }

  get(id: string): Run | null {
    const row = this.db.query("SELECT * FROM runs WHERE id = ?").get(id) as RunRow | null;
    return row ? fromRow(row) : null;
  }

  /**
   * Runs matching every filter given, oldest first. `active`: only runs that have not ended, those in
   * progress (scheduled, preparing, running) first, then the queued ones in queue order.
   */
  list(filter: { stack?: string | undefined; pool?: string | undefined; state?: RunState | undefined; active?: boolean | undefined } = {}): Run[] {
    const where: string[] = [];
    const args: string[] = [];
    for (const k of ["stack", "pool", "state"] as const) {
      const v = filter[k];
      if (v === undefined) continue;
      where.push(`${k} = ?`);
      args.push(v);
    }
    if (filter.active) where.push("state IN ('QUEUED', 'SCHEDULED', 'PREPARING', 'RUNNING')");
    const sql = `SELECT * FROM runs ${where.length ? "WHERE " + where.join(" AND ") : ""} ORDER BY ${filter.active ? ACTIVE_ORDER : "created_at, id"}`;
    return (this.db.query(sql).all(...args) as RunRow[]).map(fromRow);
  }

  /** The oldest queued run of a pool: the next one it serves (one index lookup, runs_queued). */
  headOfQueue(pool: string): Run | null {
    const row = this.db.query("SELECT * FROM runs WHERE pool = ? AND state = 'QUEUED' ORDER BY created_at, id LIMIT 1").get(pool) as RunRow | null;
    return row ? fromRow(row) : null;
  }

  /** Runs a worker holds (SCHEDULED, PREPARING, RUNNING). */
  heldBy(worker: string): Run[] {
    return (this.db.query("SELECT * FROM runs WHERE worker = ? AND state IN ('SCHEDULED', 'PREPARING', 'RUNNING')").all(worker) as RunRow[]).map(fromRow);
  }

  /** SCHEDULED runs whose launcher has not accepted them since before `before` (ISO time). */
  scheduledBefore(before: string): Run[] {
    return (this.db.query("SELECT * FROM runs WHERE state = 'SCHEDULED' AND updated_at < ? ORDER BY updated_at, id").all(before) as RunRow[]).map(fromRow);
  }

  /** Stores the outcome of a lifecycle transition. */
  applyStatus(id: string, s: RunStatus, now: string, extra: { phase?: string; messages?: string[]; last_seq?: number } = {}): void {
    const terminal = s.state === "FINISHED" || s.state === "FAILED" || s.state === "CANCELED";
    this.db
      .query(
        `UPDATE runs SET state = $state, reason = $reason, exit_code = $exit_code, worker = $worker, cancel_requested = $cancel,
           phase = COALESCE($phase, phase), messages = COALESCE($messages, messages), last_seq = COALESCE($last_seq, last_seq),
           updated_at = $now, finished_at = CASE WHEN $terminal THEN COALESCE(finished_at, $now) ELSE NULL END
         WHERE id = $id`,
      )
      .run({
        id,
        state: s.state,
        reason: s.reason,
        exit_code: s.exit_code,
        worker: s.worker,
        cancel: s.cancel_requested ? 1 : 0,
        phase: extra.phase ?? null,
        messages: extra.messages ? JSON.stringify(extra.messages) : null,
        last_seq: extra.last_seq ?? null,
        now,
        terminal: terminal ? 1 : 0,
      });
    // A launcher's acceptance is where its own "preparing" phase (pull, workspace) begins.
    const phase = extra.phase ?? (s.state === "PREPARING" ? "preparing" : undefined);
    if (phase !== undefined) this.db.query("INSERT OR IGNORE INTO run_phases (run, phase, started_at) VALUES (?, ?, ?)").run(id, phase, now);
  }

  /**
   * The phases the run entered, in order, each ending when the next began or the run ended
   * (`ended_at` null while it is still going).
   */
  phases(id: string): RunPhaseTime[] {
    const rows = this.db.query("SELECT phase, started_at FROM run_phases WHERE run = ? ORDER BY rowid").all(id) as Array<{ phase: string; started_at: string }>;
    const finished = (this.db.query("SELECT finished_at FROM runs WHERE id = ?").get(id) as { finished_at: string | null } | null)?.finished_at ?? null;
    return rows.map((r, i) => ({ name: r.phase, started_at: r.started_at, ended_at: rows[i + 1]?.started_at ?? finished }));
  }

  /**
   * Stores one log chunk (ignored when (run, seq) is already there) and advances the contiguous
   * watermark. Returns the watermark: every chunk <= it is stored.
   */
  appendLog(run: string, seq: number, data: Uint8Array): number {
    return this.db.transaction(() => {
      const inserted = this.db.query("INSERT OR IGNORE INTO logs (run, seq, data) VALUES (?, ?, ?)").run(run, seq, data).changes > 0;
      if (inserted) this.db.query("UPDATE runs SET log_bytes = log_bytes + ? WHERE id = ?").run(data.byteLength, run);
      const row = this.db.query("SELECT log_acked FROM runs WHERE id = ?").get(run) as { log_acked: number } | null;
      let acked = row?.log_acked ?? -1;
      const has = this.db.query("SELECT 1 FROM logs WHERE run = ? AND seq = ?");
      while (has.get(run, acked + 1) !== null) acked++;
      this.db.query("UPDATE runs SET log_acked = ? WHERE id = ?").run(acked, run);
      return acked;
    })();
  }

  /**
   * A line of the mothership's own after every chunk stored for the run, e.g. why a launcher
   * rejected it: the run's log is where operators look first. Returns the seq the note took.
   */
  appendNote(run: string, text: string): number {
    const { last } = this.db.query("SELECT MAX(seq) AS last FROM logs WHERE run = ?").get(run) as { last: number | null };
    const seq = (last ?? -1) + 1;
    this.appendLog(run, seq, new TextEncoder().encode(text.endsWith("\n") ? text : text + "\n"));
    return seq;
  }

  hasLog(run: string, seq: number): boolean {
    return this.db.query("SELECT 1 FROM logs WHERE run = ? AND seq = ?").get(run, seq) !== null;
  }

  /**
   * The launcher's `last_seq` for a run that had already ended here without one (its launcher was
   * declared lost): the output it resends is then taken up to there, and nothing beyond.
   */
  recordLateLastSeq(run: string, lastSeq: number): void {
    this.db.query("UPDATE runs SET last_seq = ? WHERE id = ? AND last_seq IS NULL AND state IN ('FINISHED', 'FAILED', 'CANCELED')").run(lastSeq, run);
  }

  /** Chunks with seq > `after`, in order, at most `limit`. */
  logs(run: string, after = -1, limit = 1000): StoredLogChunk[] {
    return (this.db.query("SELECT seq, data FROM logs WHERE run = ? AND seq > ? ORDER BY seq LIMIT ?").all(run, after, limit) as Array<{ seq: number; data: Uint8Array }>).map(
      (r) => ({ seq: r.seq, data: new Uint8Array(r.data) }),
    );
  }

  logCount(run: string): number {
    return (this.db.query("SELECT COUNT(*) AS n FROM logs WHERE run = ?").get(run) as { n: number }).n;
  }
}
