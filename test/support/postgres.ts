/**
 * A fresh, empty PostgreSQL database per test file on the test environment's server (TEST_DATABASE_URL,
 * see postgresTestEnv in ./env.ts). The URL's role needs CREATEDB; the private server of the test
 * environment (scripts/testenv/postgres.ts) gives its `spacelift` role that.
 */
import { SQL } from "bun";

export interface TestDatabase {
  /** The server's URL with the new database's name as its path. */
  url: string;
  name: string;
  /** Drops the database, ending sessions still connected to it. */
  drop(): Promise<void>;
}

/** Runs one statement on the server at `url` over a single short-lived connection. */
async function admin(url: string, statement: string): Promise<void> {
  const sql = new SQL(url, { max: 1, connectionTimeout: 10 });
  try {
    await sql.unsafe(statement);
  } finally {
    await sql.close();
  }
}

export async function createTestDatabase(url: string): Promise<TestDatabase> {
  // Lower-case letters and digits only: the name needs no quoting anywhere.
  const name = `test_${Buffer.from(crypto.getRandomValues(new Uint8Array(8))).toString("hex")}`;
  await admin(url, `CREATE DATABASE ${name}`);
  const dbUrl = new URL(url);
  dbUrl.pathname = `/${name}`;
  return {
    url: dbUrl.toString(),
    name,
    drop: () => admin(url, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`),
  };
}
