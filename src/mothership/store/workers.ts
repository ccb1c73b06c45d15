/** The worker registry: one row per launcher start (worker id = ULID made by the launcher). */
import type { Database } from "bun:sqlite";
import type { WorkerStatus } from "../../protocol/states.ts";

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

export class WorkerRepo {
  constructor(private readonly db: Database) {}

  /**
   * Hello: a new worker, or a known one reconnecting (then it is live again, drain kept). Null, and
   * nothing changed, when the id belongs to another pool: a worker id is not a secret, so the row of
   * one pool's worker never takes another pool's metadata nor is revived by it.
   */
  register(r: Registration): Worker | null {
    this.db
      .query(
        `INSERT INTO workers (id, pool, metadata, version, arch, registered_at, last_seen) VALUES ($id, $pool, $metadata, $version, $arch, $now, $now)
         ON CONFLICT(id) DO UPDATE SET metadata = $metadata, version = $version, arch = $arch, last_seen = $now, gone_at = NULL, gone_crashed = NULL
         WHERE workers.pool = $pool`,
      )
      .run({ ...r, metadata: JSON.stringify(r.metadata) });
    const w = this.get(r.id);
    return w?.pool === r.pool ? w : null;
  }

  get(id: string): Worker | null {
    const row = this.db.query("SELECT * FROM workers WHERE id = ?").get(id) as WorkerRow | null;
    return row ? fromRow(row) : null;
  }

  /** Live workers (optionally of one pool), oldest first. */
  listLive(pool?: string): Worker[] {
    const rows = (pool
      ? this.db.query("SELECT * FROM workers WHERE gone_at IS NULL AND pool = ? ORDER BY registered_at, id").all(pool)
      : this.db.query("SELECT * FROM workers WHERE gone_at IS NULL ORDER BY registered_at, id").all()) as WorkerRow[];
    return rows.map(fromRow);
  }

  /**
   * Who gets the next run of `pool`: of the live, undrained, not cycling workers whose Docker answers and
   * that hold no run, the least recently assigned (never assigned first, then oldest registration), so a
   * burst spreads over every idle launcher instead of reusing the few last heard from. One index lookup
   * (workers_idle).
   */
  nextIdle(pool: string): Worker | null {
    const row = this.db
      .query(
        `SELECT * FROM workers WHERE pool = ? AND gone_at IS NULL AND drained = 0 AND cycling = 0 AND docker_ok = 1 AND current_run IS NULL
         ORDER BY last_assigned_at, registered_at, id LIMIT 1`,
      )
      .get(pool) as WorkerRow | null;
    return row ? fromRow(row) : null;
  }

  /** The worker takes `run`; it becomes the most recently assigned of its pool. */
  assign(id: string, run: string, now: string): void {
    this.db.query("UPDATE workers SET current_run = ?, last_assigned_at = ? WHERE id = ?").run(run, now, id);
  }

  touch(id: string, now: string): void {
    this.db.query("UPDATE workers SET last_seen = ? WHERE id = ?").run(now, id);
  }

  setRun(id: string, run: string | null): void {
    this.db.query("UPDATE workers SET current_run = ? WHERE id = ?").run(run, id);
  }

  setDrained(id: string, drained: boolean): void {
    this.db.query("UPDATE workers SET drained = ? WHERE id = ?").run(drained ? 1 : 0, id);
  }

  /** Records the launcher's Docker health; true when it changed. */
  setDockerHealth(id: string, ok: boolean, message: string): boolean {
    return this.db.query("UPDATE workers SET docker_ok = ?, docker_message = ? WHERE id = ? AND (docker_ok != ? OR docker_message != ?)").run(ok ? 1 : 0, message, id, ok ? 1 : 0, message).changes > 0;
  }

  setCycling(id: string): void {
    this.db.query("UPDATE workers SET cycling = 1 WHERE id = ?").run(id);
  }

  markGone(id: string, crashed: boolean, now: string): void {
    this.db.query("UPDATE workers SET gone_at = ?, gone_crashed = ?, current_run = NULL WHERE id = ? AND gone_at IS NULL").run(now, crashed ? 1 : 0, id);
  }

  /** Live workers not heard from since `before` (ISO time). */
  silentSince(before: string): Worker[] {
    return (this.db.query("SELECT * FROM workers WHERE gone_at IS NULL AND last_seen < ?").all(before) as WorkerRow[]).map(fromRow);
  }

  deletePool(pool: string, now: string): void {
    this.db.query("UPDATE workers SET gone_at = ?, gone_crashed = 0, current_run = NULL WHERE pool = ? AND gone_at IS NULL").run(now, pool);
  }
}
