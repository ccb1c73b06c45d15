// Long-poll through any replica: two replicas (two stores, two connection pools and two LISTEN
// connections, as two processes would have) on one PostgreSQL database share mailboxes, request
// nonces and each worker's carrier. A message one delivers is taken by a poll waiting on the other,
// woken by NOTIFY; acknowledgements through one remove what the other delivered; pools stay apart;
// a nonce one saw is refused by the other; bounds hold. The mailbox rules are checked on both kinds.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { silentLogger } from "../../../src/log/logger.ts";
import { Carriers } from "../../../src/mothership/carriers.ts";
import type { Outbox } from "../../../src/mothership/outbox.ts";
import { MemoryMailboxes, type PollMailboxes } from "../../../src/mothership/poll-mailbox.ts";
import { SharedMailboxes } from "../../../src/mothership/poll-mailbox-shared.ts";
import { openStore, type Store } from "../../../src/mothership/store/index.ts";
import { SharedReplayCache } from "../../../src/mothership/store/nonces.ts";
import { PostgresSql } from "../../../src/mothership/store/sql.ts";
import { SharedCarrierBook } from "../../../src/mothership/store/worker-carriers.ts";
import { postgresTestEnv } from "../../support/env.ts";
import { createTestDatabase, type TestDatabase } from "../../support/postgres.ts";

const pg = postgresTestEnv();
const never = new AbortController().signal;
const T0 = 1_800_000_000;

let db: TestDatabase | undefined;
const stores: Store[] = [];
const closers: (() => Promise<void>)[] = [];

beforeAll(async () => {
  if (!pg) return;
  db = await createTestDatabase(pg.url);
  stores.push(await openStore(db.url), await openStore(db.url));
});

afterAll(async () => {
  for (const close of closers.reverse()) await close();
  for (const s of stores) await s.close();
  await db?.drop();
});

function sqlOf(replica: 0 | 1): PostgresSql {
  const sql = stores[replica]!.sql;
  if (!(sql instanceof PostgresSql)) throw new Error("not PostgreSQL");
  return sql;
}

async function shared(replica: 0 | 1, o: { limit?: number; now?: () => number } = {}): Promise<SharedMailboxes> {
  const m = await SharedMailboxes.open({ sql: sqlOf(replica), logger: silentLogger, ...o });
  closers.push(() => m.close());
  return m;
}

/** Fresh ids per test: all tests share one database. */
const fresh = (name: string) => `${name}-${crypto.randomUUID().slice(0, 8)}`;
const payloads = (r: { entries: { payload: string }[] }) => r.entries.map((e) => e.payload);

const kinds: { name: string; make(o?: { limit?: number }): Promise<PollMailboxes> }[] = [{ name: "memory", make: async (o) => new MemoryMailboxes({ logger: silentLogger, ...o }) }];
if (pg) kinds.push({ name: "postgres", make: (o) => shared(0, o) });

describe.each(kinds)("mailbox rules ($name)", (kind) => {
  test("messages stay until a poll's cursor covers them; a cursor from the future acknowledges nothing", async () => {
    const m = await kind.make();
    const [P, W] = [fresh("P"), fresh("W")];
    await m.open(P, W);
    await m.offer(P, W, "a");
    await m.offer(P, W, "b");
    const first = await m.take(P, W, 0, 100, 0, never);
    expect(payloads(first)).toEqual(["a", "b"]);
    const [ca, cb] = first.entries.map((e) => e.cursor) as [number, number];
    expect(cb).toBeGreaterThan(ca);
    expect(first.cursor).toBe(cb);
    expect(payloads(await m.take(P, W, cb + 1_000_000, 100, 0, never))).toEqual(["a", "b"]);
    expect(payloads(await m.take(P, W, ca, 100, 0, never))).toEqual(["b"]);
    expect(await m.take(P, W, cb, 100, 0, never)).toEqual({ entries: [], cursor: cb });
  });

  test("the same worker id in another pool is another mailbox", async () => {
    const m = await kind.make();
    const [A, B, W] = [fresh("A"), fresh("B"), fresh("W")];
    await m.open(B, W);
    await m.offer(B, W, "for-b");
    expect(await m.offer(A, W, "for-a")).toBe(false);
    expect(payloads(await m.take(A, W, 0, 100, 0, never))).toEqual([]);
    await m.forget(A, W);
    await m.dropPool(A);
    expect(payloads(await m.take(B, W, 0, 100, 0, never))).toEqual(["for-b"]);
  });

  test("bounded: the oldest go first; an answer holds at most `max`; a forgotten mailbox takes nothing", async () => {
    const m = await kind.make({ limit: 3 });
    const [P, W] = [fresh("P"), fresh("W")];
    await m.open(P, W);
    for (const p of ["1", "2", "3", "4", "5"]) expect(await m.offer(P, W, p)).toBe(true);
    expect(payloads(await m.take(P, W, 0, 2, 0, never))).toEqual(["3", "4"]);
    await m.forget(P, W);
    expect(await m.offer(P, W, "6")).toBe(false);
  });
});

describe.skipIf(!pg)("two replicas on one PostgreSQL", () => {
  test("a message delivered by A is taken by a poll waiting on B, woken by NOTIFY long before its wait ends", async () => {
    const [a, b] = [await shared(0), await shared(1)];
    const [P, W] = [fresh("P"), fresh("W")];
    await b.open(P, W);
    const started = performance.now();
    const waiting = b.take(P, W, 0, 100, 20_000, never);
    // B's poll is waiting (its first read found nothing) by the time A's statement commits, or it reads it.
    await Bun.sleep(50);
    expect(await a.offer(P, W, "from-a")).toBe(true);
    const got = await waiting;
    expect(payloads(got)).toEqual(["from-a"]);
    expect(performance.now() - started).toBeLessThan(10_000);
  });

  test("acknowledgements through B remove what A delivered; A then has nothing left to give", async () => {
    const [a, b] = [await shared(0), await shared(1)];
    const [P, W] = [fresh("P"), fresh("W")];
    await a.open(P, W);
    for (const p of ["x", "y", "z"]) await a.offer(P, W, p);
    const taken = await b.take(P, W, 0, 100, 0, never);
    expect(payloads(taken)).toEqual(["x", "y", "z"]);
    expect((await a.take(P, W, taken.cursor, 100, 0, never)).entries).toEqual([]);
    const left = await stores[0]!.sql.get<{ n: string }>("SELECT count(*) AS n FROM poll_messages WHERE pool = ? AND worker = ?", P, W);
    expect(Number(left?.n)).toBe(0);
  });

  test("a pool never takes another pool's worker's mailbox, nor is woken by it", async () => {
    const [a, b] = [await shared(0), await shared(1)];
    const [P, Q, W] = [fresh("P"), fresh("Q"), fresh("W")];
    await a.open(P, W);
    const other = b.take(Q, W, 0, 100, 300, never);
    await a.offer(P, W, "only-for-p");
    expect(payloads(await other)).toEqual([]);
    expect(payloads(await b.take(Q, W, 0, 100, 0, never))).toEqual([]);
    expect(payloads(await b.take(P, W, 0, 100, 0, never))).toEqual(["only-for-p"]);
  });

  test("forgetting through B ends A's waiting poll; a mailbox made again ignores the old cursor", async () => {
    const [a, b] = [await shared(0), await shared(1)];
    const [P, W] = [fresh("P"), fresh("W")];
    await a.open(P, W);
    await a.offer(P, W, "old");
    const { cursor: old } = await a.take(P, W, 0, 100, 0, never);
    const waiting = a.take(P, W, old, 100, 20_000, never);
    await Bun.sleep(50);
    await b.forget(P, W);
    expect(await waiting).toEqual({ entries: [], cursor: old });
    expect(await b.offer(P, W, "lost")).toBe(false);
    await b.open(P, W);
    await a.offer(P, W, "new");
    const again = await b.take(P, W, old, 100, 0, never);
    expect(payloads(again)).toEqual(["new"]);
    expect(again.cursor).toBeGreaterThan(old);
  });

  test("the bound holds for messages from both replicas; sweeping on both at once removes idle mailboxes", async () => {
    let now = Date.now();
    const [a, b] = [await shared(0, { limit: 4, now: () => now }), await shared(1, { limit: 4, now: () => now })];
    const [P, W] = [fresh("P"), fresh("W")];
    await a.open(P, W);
    for (let i = 0; i < 10; i++) await (i % 2 ? a : b).offer(P, W, String(i));
    expect(payloads(await b.take(P, W, 0, 100, 0, never))).toEqual(["6", "7", "8", "9"]);
    now += 11 * 60_000;
    await Promise.all([a.sweep(), b.sweep()]);
    expect(await a.offer(P, W, "late")).toBe(false);
    const rows = await stores[1]!.sql.get<{ n: string }>("SELECT count(*) AS n FROM poll_messages WHERE pool = ?", P);
    expect(Number(rows?.n)).toBe(0);
  });

  test("deliveries racing through both replicas while polls alternate between them: each message taken once, none skipped", async () => {
    const [a, b] = [await shared(0), await shared(1)];
    const [P, W] = [fresh("P"), fresh("W")];
    await a.open(P, W);
    const sent = { a: Array.from({ length: 150 }, (_, i) => `a${i}`), b: Array.from({ length: 150 }, (_, i) => `b${i}`) };
    const delivering = Promise.all([...sent.a.map((p) => a.offer(P, W, p)), ...sent.b.map((p) => b.offer(P, W, p))]);
    const got: string[] = [];
    let cursor = 0;
    let done = false;
    void delivering.then(() => (done = true));
    for (let i = 0; got.length < 300 && i < 2_000; i++) {
      const r = await (i % 2 ? a : b).take(P, W, cursor, 7, done ? 0 : 200, never);
      got.push(...payloads(r));
      cursor = r.cursor;
    }
    await delivering;
    expect(got.length).toBe(300);
    expect(new Set(got).size).toBe(300);
    // Each replica's messages to one worker keep the order they were sent in.
    expect(got.filter((p) => p.startsWith("a"))).toEqual(sent.a);
    expect(got.filter((p) => p.startsWith("b"))).toEqual(sent.b);
  });

  test("a nonce seen by A is refused by B; the per-pool bound counts both", async () => {
    let now = T0 * 1000;
    const [a, b] = [0, 1].map((r) => new SharedReplayCache({ sql: sqlOf(r as 0 | 1), maxPerPool: 3, now: () => now }));
    const [P, Q] = [fresh("P"), fresh("Q")];
    expect(await a!.check(P, "n1", T0)).toBe("fresh");
    expect(await b!.check(P, "n1", T0)).toBe("replayed");
    expect(await b!.check(Q, "n1", T0)).toBe("fresh");
    expect(await a!.check(P, "n2", T0)).toBe("fresh");
    expect(await b!.check(P, "n3", T0)).toBe("fresh");
    // A counts again once a second: B's nonce is then in A's count.
    now += 1_000;
    expect(await a!.check(P, "n4", T0)).toBe("full");
    expect(await a!.check(P, "n3", T0)).toBe("replayed");
    // Expired nonces go, and the pool is served again.
    now += 302_000;
    expect(await b!.check(P, "n1", T0 + 302)).toBe("fresh");
  });

  test("a worker heard through A is reached through B the same way; a change announced by A reaches B's cache", async () => {
    const [bookA, bookB] = [await SharedCarrierBook.open(sqlOf(0), silentLogger), await SharedCarrierBook.open(sqlOf(1), silentLogger)];
    closers.push(() => bookA.close(), () => bookB.close());
    const outbox = (): Outbox & { got: string[] } => {
      const got: string[] = [];
      return { got, deliver: async (pool, worker) => void got.push(`${pool}/${worker}`) };
    };
    const [mqttB, pollB] = [outbox(), outbox()];
    const sign = (_p: string, _w: string, m: string) => m;
    const viaA = new Carriers({ sign, outboxes: { mqtt: outbox(), poll: outbox() }, fallback: "mqtt", book: bookA, logger: silentLogger });
    const viaB = new Carriers({ sign, outboxes: { mqtt: mqttB, poll: pollB }, fallback: "mqtt", book: bookB, logger: silentLogger });
    const [P, Q, W] = [fresh("P"), fresh("Q"), fresh("W")];
    // B looked the worker up before it was heard (and cached that).
    expect(await viaB.carrierOf(P, W)).toBe("mqtt");
    await viaA.spoke(P, W, "poll");
    const deadline = Date.now() + 5_000;
    while ((await viaB.carrierOf(P, W)) !== "poll" && Date.now() < deadline) await Bun.sleep(10);
    await viaB.deliver(P, W, "m");
    await viaB.deliver(Q, W, "m");
    expect(pollB.got).toEqual([`${P}/${W}`]);
    expect(mqttB.got).toEqual([`${Q}/${W}`]);
    expect(Object.fromEntries(await viaB.forgetPool(P))).toEqual({ poll: [W] });
  });
});
