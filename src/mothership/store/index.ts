/** The mothership's store: one SQLite file in the data dir, one repository per resource. */
import type { Database } from "bun:sqlite";
import type { SecretBox } from "../secret-box.ts";
import { openDatabase, type QueryStats } from "./db.ts";
import { PoolRepo } from "./pools.ts";
import { RunRepo } from "./runs.ts";
import { StackRepo } from "./stacks.ts";
import { WorkerRepo } from "./workers.ts";

export interface Store {
  db: Database;
  pools: PoolRepo;
  stacks: StackRepo;
  workers: WorkerRepo;
  runs: RunRepo;
  /** Statements and rows read so far; counted only when the store was opened with `countQueries`. */
  stats: QueryStats;
  close(): void;
}

/** `secrets` seals stack secret values (the data dir's secrets.key); without it none can be stored. */
export function openStore(path: string, opts: { secrets?: SecretBox; countQueries?: boolean } = {}): Store {
  const stats: QueryStats = { statements: 0, rows: 0 };
  const db = openDatabase(path, opts.countQueries ? stats : undefined);
  return {
    db,
    pools: new PoolRepo(db),
    stacks: new StackRepo(db, opts.secrets),
    workers: new WorkerRepo(db),
    runs: new RunRepo(db),
    stats,
    close: () => db.close(),
  };
}

export type { Pool } from "./pools.ts";
export type { Stack, EnvVar, StackPhase } from "./stacks.ts";
export type { Run, RunTriggerDetails } from "./runs.ts";
export type { Worker } from "./workers.ts";
export { workerProblem, workerStatus } from "./workers.ts";
