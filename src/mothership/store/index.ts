/** The mothership's store: one SQLite file in the data dir, one repository per resource. */
import type { Database } from "bun:sqlite";
import { openDatabase } from "./db.ts";
import { PoolRepo } from "./pools.ts";
import { RunRepo } from "./runs.ts";
import { WorkerRepo } from "./workers.ts";

export interface Store {
  db: Database;
  pools: PoolRepo;
  workers: WorkerRepo;
  runs: RunRepo;
  close(): void;
}

export function openStore(path: string): Store {
  const db = openDatabase(path);
  return {
    db,
    pools: new PoolRepo(db),
    workers: new WorkerRepo(db),
    runs: new RunRepo(db),
    close: () => db.close(),
  };
}

export type { Pool, Stack, EnvVar, StackPhase } from "./pools.ts";
export type { Run, LogChunk } from "./runs.ts";
export type { Worker } from "./workers.ts";
export { workerStatus } from "./workers.ts";
