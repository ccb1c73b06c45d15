/** Runs and their logs. Logs are keyed by (run, seq): a resent chunk is stored once. */
import type { RunReason, RunState, RunType } from "../../protocol/states.ts";
import { transition, type RunEvent, type RunStatus } from "../run-lifecycle.ts";
import type { Sql } from "./sql.ts";

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
  /** Bumped by every status write: a write applies only over the revision it was decided on. */
  revision: number;
}

interface RunRow extends Omit<Run, "cancel_requested" | "messages" | "user_provided_metadata"> {
  cancel_requested: number;
  messages: string;
  user_provided_metadata: string;
}

const fromRow = (r: RunRow): Run => ({
  ...r,
  // BIGINT on PostgreSQL, which comes back as text.
  log_bytes: Number(r.log_bytes),
  cancel_requested: r.cancel_requested === 1,
  messages: JSON.parse(r.messages) as string[],
  user_provided_metadata: JSON.parse(r.user_provided_metadata) as string[],
});

/** What a trigger says beyond the stack and type. */
export type RunTriggerDetails = Partial<Pick<Run, "commit_sha" | "branch" | "user_provided_metadata">>;

/** A pool's queue head (one lookup of the runs_queued index). */
const HEAD = "SELECT * FROM runs WHERE pool = ? AND state = 'QUEUED' ORDER BY created_at, id LIMIT 1";

/** In progress first (oldest first), then the queue in the order it is served. */
const ACTIVE_ORDER = "CASE state WHEN 'QUEUED' THEN 1 ELSE 0 END, created_at, id";

/** What a status write may carry besides the status. */
export interface StatusExtra {
  phase?: string;
  messages?: string[];
  last_seq?: number;
}

/** A lifecycle event that applied: the run as it was read when it did, and its new status. */
export interface AppliedEvent {
  from: Run;
  to: RunStatus;
}

/**
 * How many reads an event is decided on before giving up: each lost race means another writer changed
 * the run in between, so a run that keeps changing this often is not one a launcher drives.
 */
const EVENT_ATTEMPTS = 5;

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
  constructor(private readonly sql: Sql) {}

  async insert(r: Pick<Run, "id" | "stack" | "pool" | "type" | "created_at"> & RunTriggerDetails): Promise<Run> {
    await this.sql.run(
      `INSERT INTO runs (id, stack, pool, type, state, commit_sha, branch, user_provided_metadata, created_at, updated_at)
       VALUES (?, ?, ?, ?, 'QUEUED', ?, ?, ?, ?, ?)`,
      r.id, r.stack, r.pool, r.type, r.commit_sha ?? null, r.branch ?? null, JSON.stringify(r.user_provided_metadata ?? []), r.created_at, r.created_at,
    );
    return (await this.get(r.id)) as Run;
  }

  async get(id: string): Promise<Run | null> {
    const row = await this.sql.get<RunRow>("SELECT * FROM runs WHERE id = ?", id);
    return row ? fromRow(row) : null;
  }

  /**
   * Runs matching every filter given, oldest first. `active`: only runs that have not ended, those in
   * progress (scheduled, preparing, running) first, then the queued ones in queue order.
   */
  async list(filter: { stack?: string | undefined; pool?: string | undefined; state?: RunState | undefined; active?: boolean | undefined } = {}): Promise<Run[]> {
    const where: string[] = [];
    const args: string[] = [];
    for (const k of ["stack", "pool", "state"] as const) {
      const v = filter[k];
      if (v === undefined) continue;
      where.push(`${k} = ?`);
      args.push(v);
    }
    if (filter.active) where.push("state IN ('QUEUED', 'SCHEDULED', 'PREPARING', 'RUNNING')");
    const text = `SELECT * FROM runs ${where.length ? "WHERE " + where.join(" AND ") : ""} ORDER BY ${filter.active ? ACTIVE_ORDER : "created_at, id"}`;
    return (await this.sql.all<RunRow>(text, ...args)).map(fromRow);
  }

  /** The oldest queued run of a pool: the next one it serves (one index lookup, runs_queued). */
  async headOfQueue(pool: string): Promise<Run | null> {
    const row = await this.sql.get<RunRow>(HEAD, pool);
    return row ? fromRow(row) : null;
  }

  /**
   * `headOfQueue`, for the scheduler inside a transaction: on PostgreSQL the run's row stays locked until
   * it ends and runs other replicas hold are passed over, so no two replicas schedule one run. On SQLite
   * the transaction holds the whole database: the same as headOfQueue.
   */
  async claimHeadOfQueue(pool: string): Promise<Run | null> {
    const row = await this.sql.get<RunRow>(this.sql.dialect === "postgres" ? `${HEAD} FOR UPDATE SKIP LOCKED` : HEAD, pool);
    return row ? fromRow(row) : null;
  }

  /** Runs a worker holds (SCHEDULED, PREPARING, RUNNING). */
  async heldBy(worker: string): Promise<Run[]> {
    return (await this.sql.all<RunRow>("SELECT * FROM runs WHERE worker = ? AND state IN ('SCHEDULED', 'PREPARING', 'RUNNING')", worker)).map(fromRow);
  }

  /** SCHEDULED runs whose launcher has not accepted them since before `before` (ISO time). */
  async scheduledBefore(before: string): Promise<Run[]> {
    return (await this.sql.all<RunRow>("SELECT * FROM runs WHERE state = 'SCHEDULED' AND updated_at < ? ORDER BY updated_at, id", before)).map(fromRow);
  }

  /**
   * The run as it is now, inside a transaction: on PostgreSQL its row stays locked until the transaction
   * ends, so a status decided on it is still current when written. (SQLite's transaction holds the database.)
   */
  async lock(id: string): Promise<Run | null> {
    const row = await this.sql.get<RunRow>(`SELECT * FROM runs WHERE id = ?${this.sql.dialect === "postgres" ? " FOR UPDATE" : ""}`, id);
    return row ? fromRow(row) : null;
  }

  /**
   * Stores the outcome of a lifecycle transition decided on `read`, only if no status was written since
   * (the run's revision is still read's): another replica on one PostgreSQL may have applied a launcher
   * message, the sweep or an operator's cancel in between, and a decision on an older read must never
   * overwrite that. True when it was written.
   */
  async applyStatus(read: Pick<Run, "id" | "revision">, s: RunStatus, now: string, extra: StatusExtra = {}): Promise<boolean> {
    const terminal = s.state === "FINISHED" || s.state === "FAILED" || s.state === "CANCELED";
    // A launcher's acceptance is where its own "preparing" phase (pull, workspace) begins.
    const phase = extra.phase ?? (s.state === "PREPARING" ? "preparing" : undefined);
    const write = async (sql: Sql) => {
      const changed = await sql.run(
        `UPDATE runs SET state = ?, reason = ?, exit_code = ?, worker = ?, cancel_requested = ?,
           phase = COALESCE(?, phase), messages = COALESCE(?, messages), last_seq = COALESCE(?, last_seq),
           updated_at = ?, finished_at = ${terminal ? "COALESCE(finished_at, ?)" : "NULL"}, revision = revision + 1
         WHERE id = ? AND revision = ?`,
        s.state, s.reason, s.exit_code, s.worker, s.cancel_requested ? 1 : 0,
        extra.phase ?? null, extra.messages ? JSON.stringify(extra.messages) : null, extra.last_seq ?? null,
        now, ...(terminal ? [now] : []),
        read.id, read.revision,
      );
      if (changed === 0) return false;
      if (phase !== undefined) await sql.run("INSERT INTO run_phases (run, phase, started_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING", read.id, phase, now);
      return true;
    };
    return phase === undefined ? write(this.sql) : this.sql.transaction(write);
  }

  /**
   * Applies a lifecycle event to `read`. When another writer changed the run first, it is read again and
   * the event decided anew on what is there, as if it had arrived after that write: messages of one
   * launcher handled by several replicas, the sweep and operators end where one process taking them in
   * some order would. `holder`: the event is that worker's (a launcher message, its loss), so it applies
   * only while the run is still that worker's. Null when it does not apply.
   */
  async applyEvent(read: Run, event: RunEvent, now: string, extra: StatusExtra = {}, holder?: string): Promise<AppliedEvent | null> {
    let run: Run | null = read;
    for (let attempt = 1; run && (holder === undefined || run.worker === holder); attempt++) {
      const next = transition(run, event);
      if (!next) return null;
      if (await this.applyStatus(run, next, now, extra)) return { from: run, to: next };
      if (attempt === EVENT_ATTEMPTS) throw new Error(`run ${read.id} changed under each of ${EVENT_ATTEMPTS} attempts to apply ${event.type}`);
      run = await this.get(read.id);
    }
    return null;
  }

  /**
   * The phases the run entered, in order, each ending when the next began or the run ended
   * (`ended_at` null while it is still going).
   */
  async phases(id: string): Promise<RunPhaseTime[]> {
    // Arrival order: SQLite's rowid, PostgreSQL's `position` sequence (store/postgres.ts).
    const order = this.sql.dialect === "postgres" ? "position" : "rowid";
    const rows = await this.sql.all<{ phase: string; started_at: string }>(`SELECT phase, started_at FROM run_phases WHERE run = ? ORDER BY ${order}`, id);
    const finished = (await this.sql.get<{ finished_at: string | null }>("SELECT finished_at FROM runs WHERE id = ?", id))?.finished_at ?? null;
    return rows.map((r, i) => ({ name: r.phase, started_at: r.started_at, ended_at: rows[i + 1]?.started_at ?? finished }));
  }

  /**
   * Stores one log chunk (ignored when (run, seq) is already there) and advances the contiguous
   * watermark. Returns the watermark: every chunk <= it is stored. With `maxBytes`: null, and nothing
   * stored, when a new chunk would take the run's log past it (checked with the run's row locked, so
   * replicas storing chunks of one run at once never pass it together).
   */
  appendLog(run: string, seq: number, data: Uint8Array): Promise<number>;
  appendLog(run: string, seq: number, data: Uint8Array, maxBytes: number): Promise<number | null>;
  appendLog(run: string, seq: number, data: Uint8Array, maxBytes = Infinity): Promise<number | null> {
    return this.sql.transaction(async (tx) => {
      const { acked, bytes } = await lockedLog(tx, run);
      if (bytes + data.byteLength > maxBytes && (await tx.get("SELECT 1 FROM logs WHERE run = ? AND seq = ?", run, seq)) === null) return null;
      return storeChunk(tx, run, seq, data, acked);
    });
  }

  /**
   * A line of the mothership's own after every chunk stored for the run, e.g. why a launcher
   * rejected it: the run's log is where operators look first. Returns the seq the note took.
   */
  appendNote(run: string, text: string): Promise<number> {
    return this.sql.transaction(async (tx) => {
      // Locked first, so a chunk or note another replica stores meanwhile cannot take the same seq.
      const { acked } = await lockedLog(tx, run);
      const row = await tx.get<{ last: number | null }>("SELECT CAST(MAX(seq) AS INTEGER) AS last FROM logs WHERE run = ?", run);
      const seq = (row?.last ?? -1) + 1;
      await storeChunk(tx, run, seq, new TextEncoder().encode(text.endsWith("\n") ? text : text + "\n"), acked);
      return seq;
    });
  }

  async hasLog(run: string, seq: number): Promise<boolean> {
    return (await this.sql.get("SELECT 1 FROM logs WHERE run = ? AND seq = ?", run, seq)) !== null;
  }

  /**
   * The launcher's `last_seq` for a run that had already ended here without one (its launcher was
   * declared lost): the output it resends is then taken up to there, and nothing beyond. Only from the
   * worker the run ended on.
   */
  async recordLateLastSeq(run: string, worker: string, lastSeq: number): Promise<void> {
    await this.sql.run("UPDATE runs SET last_seq = ? WHERE id = ? AND worker = ? AND last_seq IS NULL AND state IN ('FINISHED', 'FAILED', 'CANCELED')", lastSeq, run, worker);
  }

  /** Chunks with seq > `after`, in order, at most `limit`. */
  async logs(run: string, after = -1, limit = 1000): Promise<StoredLogChunk[]> {
    const rows = await this.sql.all<{ seq: number; data: Uint8Array }>("SELECT seq, data FROM logs WHERE run = ? AND seq > ? ORDER BY seq LIMIT ?", run, after, limit);
    return rows.map((r) => ({ seq: r.seq, data: new Uint8Array(r.data) }));
  }

  async logCount(run: string): Promise<number> {
    return (await this.sql.get<{ n: number }>("SELECT CAST(COUNT(*) AS INTEGER) AS n FROM logs WHERE run = ?", run))?.n ?? 0;
  }
}

/**
 * The run's log watermark and bytes, read with its row locked on PostgreSQL until the transaction ends:
 * two replicas storing chunks of one run take turns, each seeing the other's chunks and watermark. (On
 * SQLite the transaction holds the whole database already.)
 */
async function lockedLog(tx: Sql, run: string): Promise<{ acked: number; bytes: number }> {
  const lock = tx.dialect === "postgres" ? " FOR UPDATE" : "";
  const row = await tx.get<{ log_acked: number; log_bytes: number | string }>(`SELECT log_acked, log_bytes FROM runs WHERE id = ?${lock}`, run);
  // log_bytes is a BIGINT on PostgreSQL, which comes back as text.
  return { acked: row?.log_acked ?? -1, bytes: Number(row?.log_bytes ?? 0) };
}

/** Inserts the chunk (once), counts its bytes, and moves the watermark past every contiguous chunk. */
async function storeChunk(tx: Sql, run: string, seq: number, data: Uint8Array, acked: number): Promise<number> {
  const inserted = (await tx.run("INSERT INTO logs (run, seq, data) VALUES (?, ?, ?) ON CONFLICT DO NOTHING", run, seq, data)) > 0;
  if (inserted) await tx.run("UPDATE runs SET log_bytes = log_bytes + ? WHERE id = ?", data.byteLength, run);
  let next = acked;
  while ((await tx.get("SELECT 1 FROM logs WHERE run = ? AND seq = ?", run, next + 1)) !== null) next++;
  if (next !== acked) await tx.run("UPDATE runs SET log_acked = ? WHERE id = ?", next, run);
  return next;
}
