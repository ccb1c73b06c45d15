// Several mothership replicas on one PostgreSQL: two stores (two connection pools, as two processes
// would have) scheduling and storing logs at once never hand out one run or worker twice nor lose a
// log chunk from the watermark; replicas starting together migrate once. And opening errors that say
// where and what to fix without the password.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { openStore, type Store } from "../../../src/mothership/store/index.ts";
import { postgresTestEnv } from "../../support/env.ts";
import { createTestDatabase, type TestDatabase } from "../../support/postgres.ts";

const pg = postgresTestEnv();
const STORE = resolve(import.meta.dir, "../../../src/mothership/store/index.ts");

/** Opens and closes a store at STORE_LOCATION in `n` processes started together; their exit codes. */
/** The error opening `url` fails with (a store that opens is closed and fails the test). */
async function openError(url: string): Promise<Error> {
  const opened = await openStore(url).catch((e: unknown) => e as Error);
  if (opened instanceof Error) return opened;
  await opened.close();
  throw new Error("the store opened");
}

async function openInProcesses(location: string, n: number): Promise<number[]> {
  const code = `const { openStore } = await import(${JSON.stringify(STORE)}); const s = await openStore(process.env.STORE_LOCATION); await s.close();`;
  const procs = Array.from({ length: n }, () => Bun.spawn([process.execPath, "-e", code], { env: { ...process.env, STORE_LOCATION: location }, stderr: "inherit" }));
  return Promise.all(procs.map((p) => p.exited));
}

test("SQLite: processes opening one new file at once apply each migration once", async () => {
  const dir = await mkdtemp(join(tmpdir(), "store-replicas-"));
  try {
    const path = join(dir, "m.db");
    expect(await openInProcesses(path, 4)).toEqual([0, 0, 0, 0]);
    const s = await openStore(path);
    expect((await s.sql.get<{ user_version: number }>("PRAGMA user_version"))?.user_version).toBeGreaterThanOrEqual(5);
    await s.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

describe.skipIf(!pg)("PostgreSQL replicas", () => {
  let db: TestDatabase;
  let a: Store;
  let b: Store;
  beforeAll(async () => {
    db = await createTestDatabase(pg!.url);
    expect(await openInProcesses(db.url, 4)).toEqual([0, 0, 0, 0]);
    [a, b] = await Promise.all([openStore(db.url), openStore(db.url)]);
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await db?.drop();
  });

  test("migrations started by four processes at once were applied once", async () => {
    const rows = await a.sql.all<{ version: number }>("SELECT version FROM mothership_schema");
    expect(rows).toHaveLength(1);
    expect(rows[0]!.version).toBeGreaterThanOrEqual(2);
  });

  test("20 claimers in two replicas schedule 200 runs on 200 workers, each run and each worker once", async () => {
    await a.stacks.insert({ id: "S", name: "s", pool: "P", image: "i", environment: [], phases: [], repository: null, branch: null, created_at: "t" });
    for (let i = 0; i < 200; i++) {
      const n = String(i).padStart(3, "0");
      await a.runs.insert({ id: `R${n}`, stack: "S", pool: "P", type: "TASK", created_at: `2026-01-01T00:00:00.${n}Z` });
      await b.workers.register({ id: `W${n}`, pool: "P", metadata: {}, version: "1", arch: "amd64", now: `2026-01-01T00:00:00.${n}Z` });
    }
    const pairs: Array<[string, string]> = [];
    const claimer = async (store: Store, k: number) => {
      // Until the queue is empty: a claim finding every queued run held by others simply tries again.
      while ((await store.runs.headOfQueue("P")) !== null) {
        const pair = await store.transaction(async (tx) => {
          const run = await tx.runs.claimHeadOfQueue("P");
          if (!run) return null;
          const worker = await tx.workers.claimNextIdle("P");
          if (!worker) return null;
          await Bun.sleep(k % 3);
          const now = new Date().toISOString();
          await tx.workers.assign(worker.id, run.id, now);
          await tx.runs.applyStatus(run, { state: "SCHEDULED", reason: null, exit_code: null, worker: worker.id, cancel_requested: false }, now);
          return [run.id, worker.id] as [string, string];
        });
        if (pair) pairs.push(pair);
      }
    };
    await Promise.all(Array.from({ length: 20 }, (_, k) => claimer(k % 2 ? b : a, k)));
    expect(pairs.length).toBe(200);
    expect(new Set(pairs.map(([r]) => r)).size).toBe(200);
    expect(new Set(pairs.map(([, w]) => w)).size).toBe(200);
    expect(await a.runs.list({ state: "QUEUED" })).toEqual([]);
    for (const [run, worker] of pairs.slice(0, 20)) {
      expect((await b.runs.get(run))?.worker).toBe(worker);
      expect((await b.workers.get(worker))?.current_run).toBe(run);
    }
  });

  test("both replicas storing every chunk of one run at once, in different orders: each stored once, the watermark at the end", async () => {
    await a.runs.insert({ id: "RLOG", stack: "S", pool: "L", type: "TASK", created_at: "t" });
    const seqs = Array.from({ length: 200 }, (_, i) => i);
    const shuffled = [...seqs].sort(() => Math.random() - 0.5);
    const chunk = (seq: number) => new TextEncoder().encode(`line ${seq}\n`);
    const marks = await Promise.all([...seqs.map((s) => a.runs.appendLog("RLOG", s, chunk(s))), ...shuffled.map((s) => b.runs.appendLog("RLOG", s, chunk(s)))]);
    expect(Math.max(...marks)).toBe(199);
    const run = await b.runs.get("RLOG");
    expect(run?.log_acked).toBe(199);
    expect(run?.log_bytes).toBe(seqs.reduce((n, s) => n + chunk(s).byteLength, 0));
    expect(await a.runs.logCount("RLOG")).toBe(200);
    // A note from either replica goes after every chunk, and the watermark follows it.
    const [n1, n2] = await Promise.all([a.runs.appendNote("RLOG", "one"), b.runs.appendNote("RLOG", "two")]);
    expect([n1, n2].sort()).toEqual([200, 201]);
    expect((await a.runs.get("RLOG"))?.log_acked).toBe(201);
  });

  test("both replicas storing chunks of one run at once under a cap: the run never passes it, and a stored chunk resent at the cap is acknowledged", async () => {
    await a.runs.insert({ id: "RCAP", stack: "S", pool: "L", type: "TASK", created_at: "t" });
    const chunk = new Uint8Array(100);
    // Room for 25 of the 60 chunks; each replica alone would have taken more once it read the bytes so far.
    const marks = await Promise.all(Array.from({ length: 60 }, (_, seq) => (seq % 2 ? a : b).runs.appendLog("RCAP", seq, chunk, 2500)));
    expect(marks.filter((m) => m !== null)).toHaveLength(25);
    expect(await a.runs.get("RCAP")).toMatchObject({ log_bytes: 2500 });
    expect(await b.runs.logCount("RCAP")).toBe(25);
    const stored = (await a.runs.logs("RCAP"))[0]!.seq;
    expect(await b.runs.appendLog("RCAP", stored, chunk, 2500)).not.toBeNull();
    expect(await b.runs.appendLog("RCAP", 60, new Uint8Array(1), 2500)).toBeNull();
  });
});

describe.skipIf(!pg)("opening PostgreSQL", () => {
  test("an unreachable server: where and what to check, never the password", async () => {
    const url = new URL(pg!.url);
    url.port = "1";
    url.password = "hunter2-not-shown";
    url.pathname = "/mothership";
    const err = await openError(url.toString());
    expect(err.message).toContain(`cannot reach PostgreSQL at ${url.hostname}:1/mothership`);
    expect(err.message).toContain("--database / MOTHERSHIP_DATABASE_URL");
    expect(err.message).not.toContain("hunter2");
  });

  test("a wrong password: refused, the password not repeated", async () => {
    const url = new URL(pg!.url);
    url.password = "hunter2-wrong";
    const err = await openError(url.toString());
    expect(err.message).toMatch(/cannot reach PostgreSQL at .*: .*password authentication failed/);
    expect(err.message).not.toContain("hunter2");
  });
});
