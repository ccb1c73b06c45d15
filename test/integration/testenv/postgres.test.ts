// The test environment's PostgreSQL (scripts/testenv/postgres.ts): reached with Bun's SQL client at
// TEST_DATABASE_URL as a role that may create databases but is no superuser, on loopback only, with
// password auth; createTestDatabase (test/support/postgres.ts) gives a test an empty database of its own.
import { afterAll, describe, expect, test } from "bun:test";
import { SQL } from "bun";
import { postgresTestEnv } from "../../support/env.ts";
import { createTestDatabase, type TestDatabase } from "../../support/postgres.ts";

const env = postgresTestEnv();

/** The error a query on `url` fails with (the test fails when it succeeds). */
async function failure(url: string): Promise<{ errno?: string; message: string }> {
  const sql = new SQL(url, { max: 1, connectionTimeout: 10 });
  try {
    await sql`SELECT 1`;
  } catch (err) {
    return err as { errno?: string; message: string };
  } finally {
    await sql.close();
  }
  throw new Error(`a connection to ${new URL(url).pathname} succeeded`);
}

describe.skipIf(!env)("the test environment's PostgreSQL", () => {
  const url = env?.url ?? "";
  const made: TestDatabase[] = [];
  afterAll(async () => {
    for (const db of made) await db.drop();
  });

  test("the role connects, may create databases and is no superuser", async () => {
    const sql = new SQL(url, { max: 1 });
    try {
      const [role] = await sql`SELECT rolname, rolsuper, rolcreatedb FROM pg_roles WHERE rolname = current_user`;
      expect(role).toEqual({ rolname: "spacelift", rolsuper: false, rolcreatedb: true });
    } finally {
      await sql.close();
    }
  });

  test("the server listens on 127.0.0.1 only, tuned for throwaway data", async () => {
    const sql = new SQL(url, { max: 1 });
    try {
      const [s] = await sql`SELECT current_setting('listen_addresses') AS listen, current_setting('fsync') AS fsync,
        current_setting('synchronous_commit') AS sync, current_setting('max_connections')::int AS max`;
      expect(s).toEqual({ listen: "127.0.0.1", fsync: "off", sync: "off", max: 200 });
    } finally {
      await sql.close();
    }
    expect(new URL(url).hostname).toBe("127.0.0.1");
  });

  test("a wrong password is refused", async () => {
    const wrong = new URL(url);
    wrong.password = "not-the-password";
    const err = await failure(wrong.toString());
    expect(err.errno).toBe("28P01"); // invalid_password
    expect(err.message).toContain("password authentication failed");
  });

  test("a test database starts empty, holds rows, and is gone after drop() even with a session open", async () => {
    const db = await createTestDatabase(url);
    made.push(db);
    expect(db.name).toMatch(/^test_[0-9a-f]{16}$/);
    expect(new URL(db.url).pathname).toBe(`/${db.name}`);
    const sql = new SQL(db.url, { max: 1 });
    try {
      const [{ n }] = await sql`SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'public'`;
      expect(n).toBe(0);
      await sql`CREATE TABLE runs (id text PRIMARY KEY, state text NOT NULL)`;
      await sql`INSERT INTO runs ${sql([{ id: "run-1", state: "QUEUED" }, { id: "run-2", state: "FINISHED" }])}`;
      const rows = await sql`SELECT id, state FROM runs ORDER BY id`;
      expect([...rows]).toEqual([{ id: "run-1", state: "QUEUED" }, { id: "run-2", state: "FINISHED" }]);
      // The session above is still open: WITH (FORCE) ends it rather than failing the drop.
      await db.drop();
    } finally {
      await sql.close();
    }
    const err = await failure(db.url);
    expect(err.errno).toBe("3D000"); // invalid_catalog_name: the database no longer exists
    const other = await createTestDatabase(url);
    made.push(other);
    expect(other.name).not.toBe(db.name);
  });
});
