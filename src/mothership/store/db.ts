/**
 * The mothership's SQLite database (bun:sqlite, WAL) and its schema migrations. Migrations are an
 * append-only list: a data dir written by an older mothership is brought forward on open, never
 * rewritten in place by hand.
 */
import { Database } from "bun:sqlite";

const MIGRATIONS: readonly string[] = [
  `CREATE TABLE pools (
     id TEXT PRIMARY KEY,
     name TEXT NOT NULL,
     description TEXT NOT NULL DEFAULT '',
     certificate TEXT NOT NULL,
     certificate_serial TEXT NOT NULL,
     key_type TEXT NOT NULL,
     created_at TEXT NOT NULL
   );
   CREATE TABLE revoked_serials (serial TEXT PRIMARY KEY, pool TEXT NOT NULL, revoked_at TEXT NOT NULL);
   CREATE TABLE stacks (
     id TEXT PRIMARY KEY,
     name TEXT NOT NULL,
     pool TEXT NOT NULL,
     image TEXT NOT NULL,
     environment TEXT NOT NULL,
     phases TEXT NOT NULL,
     repository TEXT,
     branch TEXT,
     created_at TEXT NOT NULL
   );
   CREATE TABLE workers (
     id TEXT PRIMARY KEY,
     pool TEXT NOT NULL,
     drained INTEGER NOT NULL DEFAULT 0,
     cycling INTEGER NOT NULL DEFAULT 0,
     current_run TEXT,
     metadata TEXT NOT NULL DEFAULT '{}',
     version TEXT NOT NULL DEFAULT '',
     arch TEXT NOT NULL DEFAULT '',
     registered_at TEXT NOT NULL,
     last_seen TEXT NOT NULL,
     gone_at TEXT,
     gone_crashed INTEGER
   );
   CREATE INDEX workers_pool ON workers(pool, gone_at);
   CREATE TABLE runs (
     id TEXT PRIMARY KEY,
     stack TEXT NOT NULL,
     pool TEXT NOT NULL,
     type TEXT NOT NULL,
     state TEXT NOT NULL,
     reason TEXT,
     exit_code INTEGER,
     worker TEXT,
     phase TEXT,
     cancel_requested INTEGER NOT NULL DEFAULT 0,
     messages TEXT NOT NULL DEFAULT '[]',
     log_acked INTEGER NOT NULL DEFAULT -1,
     last_seq INTEGER,
     created_at TEXT NOT NULL,
     updated_at TEXT NOT NULL,
     finished_at TEXT
   );
   CREATE INDEX runs_queue ON runs(pool, state, created_at);
   CREATE TABLE logs (run TEXT NOT NULL, seq INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (run, seq)) WITHOUT ROWID;`,
  // The bytes of log stored per run, kept as chunks arrive, so the per-run cap is one read.
  `ALTER TABLE runs ADD COLUMN log_bytes INTEGER NOT NULL DEFAULT 0;
   UPDATE runs SET log_bytes = (SELECT COALESCE(SUM(length(data)), 0) FROM logs WHERE logs.run = runs.id);`,
  // Whether a worker's Docker answers (it gets no runs while not); a stack's labels and VCS agent
  // pool; a run's commit, branch and user-provided metadata (JSON list of strings).
  `ALTER TABLE workers ADD COLUMN docker_ok INTEGER NOT NULL DEFAULT 1;
   ALTER TABLE workers ADD COLUMN docker_message TEXT NOT NULL DEFAULT '';
   ALTER TABLE stacks ADD COLUMN labels TEXT NOT NULL DEFAULT '[]';
   ALTER TABLE stacks ADD COLUMN vcs_pool TEXT;
   ALTER TABLE runs ADD COLUMN commit_sha TEXT;
   ALTER TABLE runs ADD COLUMN branch TEXT;
   ALTER TABLE runs ADD COLUMN user_provided_metadata TEXT NOT NULL DEFAULT '[]';`,
  // When each phase of a run began (launcher phase messages, rowid in arrival order), so the web UI
  // can show how long each took.
  `CREATE TABLE run_phases (run TEXT NOT NULL, phase TEXT NOT NULL, started_at TEXT NOT NULL, PRIMARY KEY (run, phase));`,
  // Scheduling proportional to the work: the head of a pool's queue and its least recently assigned idle
  // worker are each one index lookup ('' sorts first: never assigned), whatever the queue's length; the
  // sweep reads only SCHEDULED runs and live workers by when they were last heard.
  `ALTER TABLE workers ADD COLUMN last_assigned_at TEXT NOT NULL DEFAULT '';
   CREATE INDEX workers_idle ON workers(pool, last_assigned_at, registered_at, id)
     WHERE gone_at IS NULL AND drained = 0 AND cycling = 0 AND docker_ok = 1 AND current_run IS NULL;
   CREATE INDEX workers_live_seen ON workers(last_seen) WHERE gone_at IS NULL;
   CREATE INDEX runs_queued ON runs(pool, created_at, id) WHERE state = 'QUEUED';
   CREATE INDEX runs_held ON runs(worker) WHERE state IN ('SCHEDULED', 'PREPARING', 'RUNNING');
   CREATE INDEX runs_scheduled ON runs(updated_at) WHERE state = 'SCHEDULED';
   CREATE INDEX runs_stack ON runs(stack, created_at);`,
  // Every status write bumps a run's revision and applies only over the one it was decided on (runs.ts),
  // so one decided on an older read never overwrites a newer status.
  `ALTER TABLE runs ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;`,
];

export function openDatabase(path: string): Database {
  const db = new Database(path, { create: true, strict: true });
  // First: switching to WAL waits for any other process opening the same file.
  db.exec("PRAGMA busy_timeout = 5000");
  db.exec("PRAGMA journal_mode = WAL");
  db.exec("PRAGMA synchronous = NORMAL");
  migrate(db);
  return db;
}

/**
 * Each migration in its own write transaction that reads the version again once it holds the write
 * lock: two processes opening one file at once apply every migration once.
 */
function migrate(db: Database): void {
  const version = () => (db.query("PRAGMA user_version").get() as { user_version: number }).user_version;
  for (let i = version(); i < MIGRATIONS.length; i++) {
    db.transaction(() => {
      if (version() > i) return;
      db.exec(MIGRATIONS[i] ?? "");
      db.exec(`PRAGMA user_version = ${i + 1}`);
    }).immediate();
  }
}
