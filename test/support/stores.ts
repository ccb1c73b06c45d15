/**
 * The store engines a suite runs against: SQLite (`:memory:`) always, PostgreSQL when the test
 * environment has a server (postgresTestEnv; under CI=true a missing one fails the run). Each
 * PostgreSQL store gets a fresh database, dropped when the store is closed.
 */
import type { SecretBox } from "../../src/mothership/secret-box.ts";
import { openStore, type Store } from "../../src/mothership/store/index.ts";
import { postgresTestEnv } from "./env.ts";
import { createTestDatabase } from "./postgres.ts";

export interface StoreEngine {
  name: "sqlite" | "postgres";
  open(opts?: { secrets?: SecretBox }): Promise<Store>;
}

/** A PostgreSQL store on a database of its own; closing it drops the database. */
async function openPostgresStore(serverUrl: string, opts?: { secrets?: SecretBox }): Promise<Store> {
  const db = await createTestDatabase(serverUrl);
  let store: Store;
  try {
    store = await openStore(db.url, opts);
  } catch (err) {
    await db.drop();
    throw err;
  }
  const close = store.close.bind(store);
  return Object.assign(store, {
    close: async () => {
      try {
        await close();
      } finally {
        await db.drop();
      }
    },
  });
}

export function storeEngines(): StoreEngine[] {
  const engines: StoreEngine[] = [{ name: "sqlite", open: (opts) => openStore(":memory:", opts) }];
  const pg = postgresTestEnv();
  if (pg) engines.push({ name: "postgres", open: (opts) => openPostgresStore(pg.url, opts) });
  return engines;
}
