/**
 * The mothership's store on PostgreSQL (`mothership serve --database postgres://...`): the same tables
 * as the SQLite one (db.ts), created and brought forward by an append-only list of migrations of its
 * own. Several replicas may start at once: migrations run under a transaction-scoped advisory lock, so
 * one applies them and the others find them done.
 */
import { SQL } from "bun";
import { SpaceliftError } from "../../errors.ts";
import { PostgresSql } from "./sql.ts";

/** The advisory lock key migrations take (any fixed 64-bit number; "spacelif" in ASCII). */
const MIGRATION_LOCK = 0x737061_63656c69n;

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
     labels TEXT NOT NULL DEFAULT '[]',
     vcs_pool TEXT,
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
     gone_crashed INTEGER,
     docker_ok INTEGER NOT NULL DEFAULT 1,
     docker_message TEXT NOT NULL DEFAULT '',
     last_assigned_at TEXT NOT NULL DEFAULT ''
   );
   CREATE INDEX workers_pool ON workers(pool, gone_at);
   CREATE INDEX workers_idle ON workers(pool, last_assigned_at, registered_at, id)
     WHERE gone_at IS NULL AND drained = 0 AND cycling = 0 AND docker_ok = 1 AND current_run IS NULL;
   CREATE INDEX workers_live_seen ON workers(last_seen) WHERE gone_at IS NULL;
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
     log_bytes BIGINT NOT NULL DEFAULT 0,
     commit_sha TEXT,
     branch TEXT,
     user_provided_metadata TEXT NOT NULL DEFAULT '[]',
     created_at TEXT NOT NULL,
     updated_at TEXT NOT NULL,
     finished_at TEXT
   );
   CREATE INDEX runs_queue ON runs(pool, state, created_at);
   CREATE INDEX runs_queued ON runs(pool, created_at, id) WHERE state = 'QUEUED';
   CREATE INDEX runs_held ON runs(worker) WHERE state IN ('SCHEDULED', 'PREPARING', 'RUNNING');
   CREATE INDEX runs_scheduled ON runs(updated_at) WHERE state = 'SCHEDULED';
   CREATE INDEX runs_stack ON runs(stack, created_at);
   CREATE TABLE logs (run TEXT NOT NULL, seq INTEGER NOT NULL, data BYTEA NOT NULL, PRIMARY KEY (run, seq));
   CREATE TABLE run_phases (position BIGSERIAL, run TEXT NOT NULL, phase TEXT NOT NULL, started_at TEXT NOT NULL, PRIMARY KEY (run, phase));`,
  // Every status write bumps a run's revision and applies only over the one it was decided on (runs.ts):
  // a replica deciding on an older read never overwrites what another just wrote.
  `ALTER TABLE runs ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;`,
  // What several replicas share about long-poll launchers: their mailboxes (store/mailboxes.ts; cursors from
  // one sequence), the nonces of signed requests seen (store/nonces.ts) and which carrier each worker
  // speaks through (store/worker-carriers.ts). Times are Unix ms, nonce expiries Unix seconds.
  `CREATE SEQUENCE poll_cursor;
   CREATE TABLE poll_mailboxes (
     pool TEXT NOT NULL,
     worker TEXT NOT NULL,
     opened BIGINT NOT NULL,
     last_cursor BIGINT,
     touched_at BIGINT NOT NULL,
     PRIMARY KEY (pool, worker)
   );
   CREATE TABLE poll_messages (
     pool TEXT NOT NULL,
     worker TEXT NOT NULL,
     cursor BIGINT NOT NULL DEFAULT nextval('poll_cursor'),
     payload TEXT NOT NULL,
     PRIMARY KEY (pool, worker, cursor)
   );
   CREATE TABLE poll_nonces (pool TEXT NOT NULL, nonce TEXT NOT NULL, expires DOUBLE PRECISION NOT NULL, PRIMARY KEY (pool, nonce));
   CREATE INDEX poll_nonces_expires ON poll_nonces(expires);
   CREATE TABLE worker_carriers (pool TEXT NOT NULL, worker TEXT NOT NULL, carrier TEXT NOT NULL, heard_at BIGINT NOT NULL, PRIMARY KEY (pool, worker));`,
];

/** `postgres://` and `postgresql://` locations are PostgreSQL; anything else is a SQLite file. */
export const isPostgresUrl = (location: string): boolean => /^postgres(?:ql)?:\/\//i.test(location);

/** Where the URL points, for messages: host, port and database, never the user's password. */
export function describePostgresUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname || "localhost"}:${u.port || "5432"}${u.pathname.length > 1 ? u.pathname : "/"}`;
  } catch {
    return "the --database URL (not a valid URL)";
  }
}

/**
 * Connects, brings the schema forward (once, whichever replica gets there first) and returns the handle.
 * Without a password in the URL, Bun's client takes PGPASSWORD from the environment (not ~/.pgpass).
 */
export async function openPostgres(url: string): Promise<PostgresSql> {
  const where = describePostgresUrl(url);
  let client: SQL;
  try {
    client = new SQL(url, { max: 10, connectionTimeout: 15 });
  } catch (err) {
    throw unreachable(where, url, err);
  }
  const sql = new PostgresSql(client);
  try {
    await migrate(sql);
  } catch (err) {
    await client.close().catch(() => undefined);
    throw unreachable(where, url, err);
  }
  return sql;
}

/** The failure as operators can act on it; the cause is left out (its text could quote the URL). */
function unreachable(where: string, url: string, err: unknown): SpaceliftError {
  let reason = err instanceof Error ? err.message : String(err);
  const password = URL.canParse(url) ? new URL(url).password : "";
  if (password) reason = reason.split(password).join("***").split(decodeURIComponent(password)).join("***");
  return new SpaceliftError("database-unreachable", `cannot reach PostgreSQL at ${where}: ${reason}; check --database / MOTHERSHIP_DATABASE_URL (and PGPASSWORD)`);
}

async function migrate(sql: PostgresSql): Promise<void> {
  await sql.transaction(async (tx) => {
    await tx.run(`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK})`);
    await tx.run("CREATE TABLE IF NOT EXISTS mothership_schema (version INTEGER NOT NULL)");
    const row = await tx.get<{ version: number }>("SELECT version FROM mothership_schema");
    if (!row) await tx.run("INSERT INTO mothership_schema (version) VALUES (0)");
    for (let i = row?.version ?? 0; i < MIGRATIONS.length; i++) {
      for (const statement of splitStatements(MIGRATIONS[i] ?? "")) await tx.run(statement);
      await tx.run("UPDATE mothership_schema SET version = ?", i + 1);
    }
  });
}

/** A migration's statements one by one (the extended protocol takes one statement per query). */
function splitStatements(script: string): string[] {
  return script
    .split(/;\s*(?:\n|$)/)
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}
