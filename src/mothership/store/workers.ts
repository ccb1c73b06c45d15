/** The worker registry: one row per launcher start (worker id = ULID made by the launcher). */
import type { WorkerStatus } from "../../protocol/states.ts";
import type { Sql } from "./sql.ts";

export interface Worker {
  id: string;
  pool: string;
  drained: boolean;
  cycling: boolean;
  current_run: string | null;
  metadata: Record<string, string>;
  version: string;
  arch: string;
  registered_at: string;
  last_seen: string;
  gone_at: string | null;
  gone_crashed: boolean | null;
  /** When it was last given a run ('' never): the scheduler picks the least recent. */
  last_assigned_at: string;
  /** Whether its Docker Engine answered at its last report (true until it says otherwise). */
  docker_ok: boolean;
  /** Why Docker does not answer, as the launcher reported it; "" when it does. */
  docker_message: string;
}

interface WorkerRow extends Omit<Worker, "drained" | "cycling" | "metadata" | "gone_crashed" | "docker_ok"> {
  drained: number;
  cycling: number;
  metadata: string;
  gone_crashed: number | null;
  docker_ok: number;
}

const fromRow = (r: WorkerRow): Worker => ({
  ...r,
  drained: r.drained === 1,
  cycling: r.cycling === 1,
  metadata: JSON.parse(r.metadata) as Record<string, string>,
  gone_crashed: r.gone_crashed === null ? null : r.gone_crashed === 1,
  docker_ok: r.docker_ok === 1,
});

/**
 * Why a live worker takes no new runs, in words for `worker list`; null when it takes them (or is busy
 * with one). Drain and cycle are the operator's doing; Docker is the host's.
 */
export function workerProblem(w: Pick<Worker, "drained" | "cycling" | "docker_ok" | "docker_message">): string | null {
  if (!w.docker_ok) return `docker unreachable: ${w.docker_message || "the launcher's Docker Engine does not answer"}`;
  if (w.cycling) return "cycling: exits once idle";
  if (w.drained) return "drained by an operator";
  return null;
}

/** The status operators see: drained wins (the worker accepts nothing new), then busy, else idle. */
export function workerStatus(w: Pick<Worker, "drained" | "current_run">): WorkerStatus {
  if (w.drained) return "DRAINED";
  return w.current_run ? "BUSY" : "IDLE";
}

export interface Registration {
  id: string;
  pool: string;
  metadata: Record<string, string>;
  version: string;
  arch: string;
  now: string;
}

/** A pool's idle workers, least recently assigned first (one lookup of the workers_idle index). */
const IDLE = `SELECT * FROM workers WHERE pool = ? AND gone_at IS NULL AND drained = 0 AND cycling = 0 AND docker_ok = 1 AND current_run IS NULL
  ORDER BY last_assigned_at, registered_at, id LIMIT 1`;

export class WorkerRepo {
  constructor(private readonly sql: Sql) {}

  /**
   * Hello: a new worker, or a known one reconnecting (then it is live again, drain kept). Null, and
   * nothing changed, when the id belongs to another pool: a worker id is not a secret, so the row of
   * one pool's worker never takes another pool's metadata nor is revived by it.
   */
  async register(r: Registration): Promise<Worker | null> {
    const metadata = JSON.stringify(r.metadata);
    await this.sql.run(
      `INSERT INTO workers (id, pool, metadata, version, arch, registered_at, last_seen) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT(id) DO UPDATE SET metadata = ?, version = ?, arch = ?, last_seen = ?, gone_at = NULL, gone_crashed = NULL
       WHERE workers.pool = ?`,
      r.id, r.pool, metadata, r.version, r.arch, r.now, r.now,
      metadata, r.version, r.arch, r.now,
      r.pool,
    );
    const w = await this.get(r.id);
    return w?.pool === r.pool ? w : null;
  }

  async get(id: string): Promise<Worker | null> {
    const row = await this.sql.get<WorkerRow>("SELECT * FROM workers WHERE id = ?", id);
    return row ? fromRow(row) : null;
  }

  /** Live workers (optionally of one pool), oldest first. */
  async listLive(pool?: string): Promise<Worker[]> {
    const rows = pool
      ? await this.sql.all<WorkerRow>("SELECT * FROM workers WHERE gone_at IS NULL AND pool = ? ORDER BY registered_at, id", pool)
      : await this.sql.all<WorkerRow>("SELECT * FROM workers WHERE gone_at IS NULL ORDER BY registered_at, id");
    return rows.map(fromRow);
  }

  /**
   * Who gets the next run of `pool`: of the live, undrained, not cycling workers whose Docker answers and
   * that hold no run, the least recently assigned (never assigned first, then oldest registration), so a
   * burst spreads over every idle launcher instead of reusing the few last heard from. One index lookup
   * (workers_idle).
   */
  async nextIdle(pool: string): Promise<Worker | null> {
    const row = await this.sql.get<WorkerRow>(IDLE, pool);
    return row ? fromRow(row) : null;
  }

  /**
   * `nextIdle`, for the scheduler inside a transaction: on PostgreSQL the worker's row stays locked until
   * it ends and workers other replicas hold are passed over, so no two replicas assign one worker. On
   * SQLite the transaction holds the whole database: the same as nextIdle.
   */
  async claimNextIdle(pool: string): Promise<Worker | null> {
    const row = await this.sql.get<WorkerRow>(this.sql.dialect === "postgres" ? `${IDLE} FOR UPDATE SKIP LOCKED` : IDLE, pool);
    return row ? fromRow(row) : null;
  }

  /** The worker takes `run`; it becomes the most recently assigned of its pool. */
  async assign(id: string, run: string, now: string): Promise<void> {
    await this.sql.run("UPDATE workers SET current_run = ?, last_assigned_at = ? WHERE id = ?", run, now, id);
  }

  /**
   * The worker was heard from: true while it is live. False once it was declared gone, also by another
   * replica after the caller read it live: a message decided on that read would act for a gone worker.
   */
  async touch(id: string, now: string): Promise<boolean> {
    return (await this.sql.run("UPDATE workers SET last_seen = ? WHERE id = ? AND gone_at IS NULL", now, id)) > 0;
  }

  /**
   * The worker is free of `run`, if it still holds it: another replica may have freed it and given it
   * another run meanwhile. True when it was freed here.
   */
  async release(id: string, run: string): Promise<boolean> {
    return (await this.sql.run("UPDATE workers SET current_run = NULL WHERE id = ? AND current_run = ?", id, run)) > 0;
  }

  async setDrained(id: string, drained: boolean): Promise<void> {
    await this.sql.run("UPDATE workers SET drained = ? WHERE id = ?", drained ? 1 : 0, id);
  }

  /** Records the launcher's Docker health; true when it changed. */
  async setDockerHealth(id: string, ok: boolean, message: string): Promise<boolean> {
    const flag = ok ? 1 : 0;
    return (await this.sql.run("UPDATE workers SET docker_ok = ?, docker_message = ? WHERE id = ? AND (docker_ok != ? OR docker_message != ?)", flag, message, id, flag, message)) > 0;
  }

  async setCycling(id: string): Promise<void> {
    await this.sql.run("UPDATE workers SET cycling = 1 WHERE id = ?", id);
  }

  /**
   * The worker is gone, as read: only if it is live and was not heard from since (its `last_seen` is
   * still read's). A hello handled by another replica meanwhile keeps it live. True when it was marked.
   */
  async markGone(read: Pick<Worker, "id" | "last_seen">, crashed: boolean, now: string): Promise<boolean> {
    const changed = await this.sql.run(
      "UPDATE workers SET gone_at = ?, gone_crashed = ?, current_run = NULL WHERE id = ? AND gone_at IS NULL AND last_seen = ?",
      now, crashed ? 1 : 0, read.id, read.last_seen,
    );
    return changed > 0;
  }

  /** Live workers not heard from since `before` (ISO time). */
  async silentSince(before: string): Promise<Worker[]> {
    return (await this.sql.all<WorkerRow>("SELECT * FROM workers WHERE gone_at IS NULL AND last_seen < ?", before)).map(fromRow);
  }

  async deletePool(pool: string, now: string): Promise<void> {
    await this.sql.run("UPDATE workers SET gone_at = ?, gone_crashed = 0, current_run = NULL WHERE pool = ? AND gone_at IS NULL", now, pool);
  }
}
