/**
 * The mothership's store, one repository per resource, on one of two engines: SQLite (a file in the data
 * dir, the default) or PostgreSQL (`--database postgres://...`, which several replicas may share).
 */
import type { SecretBox } from "../secret-box.ts";
import { openDatabase } from "./db.ts";
import { PoolRepo } from "./pools.ts";
import { isPostgresUrl, openPostgres } from "./postgres.ts";
import { RunRepo } from "./runs.ts";
import { SqliteSql, type QueryStats, type Sql } from "./sql.ts";
import { StackRepo } from "./stacks.ts";
import { WorkerRepo } from "./workers.ts";

export interface Repos {
  pools: PoolRepo;
  stacks: StackRepo;
  workers: WorkerRepo;
  runs: RunRepo;
}

export interface Store extends Repos {
  readonly engine: "sqlite" | "postgres";
  readonly sql: Sql;
  /** Statements run and rows read so far (the scheduler's tests bound what an event costs with it). */
  readonly stats: QueryStats;
  /**
   * One transaction; `tx` holds repositories bound to it. Nested calls join the outer one, as do the
   * store's own repositories called from inside it (store/sql.ts).
   */
  transaction<T>(fn: (tx: Repos) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

function repos(sql: Sql, secrets: SecretBox | undefined): Repos {
  return { pools: new PoolRepo(sql), stacks: new StackRepo(sql, secrets), workers: new WorkerRepo(sql), runs: new RunRepo(sql) };
}

/**
 * `location`: `:memory:` or a file path for SQLite (WAL, migrated on open), or a `postgres://` /
 * `postgresql://` URL for PostgreSQL (migrated on open, store/postgres.ts). `secrets` seals stack secret
 * values (the data dir's secrets.key); without it none can be stored.
 */
export async function openStore(location: string, opts: { secrets?: SecretBox } = {}): Promise<Store> {
  const sql: Sql = isPostgresUrl(location) ? await openPostgres(location) : new SqliteSql(openDatabase(location));
  return {
    engine: sql.dialect,
    sql,
    stats: sql.stats,
    ...repos(sql, opts.secrets),
    transaction: (fn) => sql.transaction((tx) => fn(repos(tx, opts.secrets))),
    close: () => sql.close(),
  };
}

export type { Pool } from "./pools.ts";
export type { Stack, EnvVar, StackPhase } from "./stacks.ts";
export type { Run, RunTriggerDetails } from "./runs.ts";
export type { Worker } from "./workers.ts";
export { workerProblem, workerStatus } from "./workers.ts";
