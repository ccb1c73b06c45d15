// Scheduling proportional to the work: what one assignment costs in the store does not grow with the
// queue or with other pools, and a burst spreads over every idle worker (least recently assigned first).
import "reflect-metadata";
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { silentLogger } from "../../../src/log/logger.ts";
import { ControlPlane } from "../../../src/mothership/control.ts";
import { PoolService } from "../../../src/mothership/pool-service.ts";
import type { Store } from "../../../src/mothership/store/index.ts";
import { encodeMessage, makeMessage, type MessageBody, type UplinkMessage } from "../../../src/protocol/messages.ts";
import { ulid } from "../../../src/protocol/ulid.ts";
import { storeEngines } from "../../support/stores.ts";
import { useTestCa } from "./ca-fixture.ts";

const fixture = useTestCa("scheduling");

let store: Store;
let control: ControlPlane;
let clock: number;

async function pool(name: string): Promise<{ pool: string; stack: string }> {
  const service = new PoolService(store, fixture.ca, { brokerEndpoint: "mqtts://127.0.0.1:8883", namespace: "spacelift", commsUrl: "https://127.0.0.1:8080" });
  const { pool: p } = await service.create({ name, csr: fixture.csrPem });
  const stack = `S-${name}`;
  await store.stacks.insert({ id: stack, name, pool: p.id, image: "busybox", environment: [], phases: [{ name: "plan", commands: ["true"] }], repository: null, branch: null, created_at: new Date(clock).toISOString() });
  return { pool: p.id, stack };
}

function from<T extends UplinkMessage["type"]>(poolId: string, worker: string, type: T, body: MessageBody<T>): Promise<void> {
  return control.handleUplink(poolId, worker, new TextEncoder().encode(encodeMessage(makeMessage(type, body))));
}

const hello = (p: string, w: string) => from(p, w, "hello", { metadata: {}, version: "1", arch: "x86_64", state: "IDLE", run: null });

/** The worker takes its run and finishes it at once, as an instant run does. */
async function finish(p: string, w: string): Promise<string> {
  const run = (await store.workers.get(w))?.current_run;
  if (!run) throw new Error(`worker ${w} holds no run`);
  await from(p, w, "run_accepted", { run });
  await from(p, w, "run_finished", { run, reason: "ok", exit_code: 0, last_seq: -1, messages: [] });
  return run;
}

/** Queues `n` runs of a stack straight into the store (the queue a busy pool builds up). */
function queue(stack: string, p: string, n: number): Promise<void> {
  return store.transaction(async (tx) => {
    for (let i = 0; i < n; i++) {
      clock += 1;
      await tx.runs.insert({ id: ulid(), stack, pool: p, type: "TRACKED", created_at: new Date(clock).toISOString() });
    }
  });
}

/** Statements and rows the store served while `fn` ran. */
async function work(fn: () => Promise<unknown>): Promise<{ statements: number; rows: number }> {
  const before = { ...store.stats };
  await fn();
  return { statements: store.stats.statements - before.statements, rows: store.stats.rows - before.rows };
}

/** Those of `workers` that hold a run. */
async function holders(workers: string[]): Promise<string[]> {
  const held = await Promise.all(workers.map(async (w) => ((await store.workers.get(w))?.current_run ? w : null)));
  return held.filter((w) => w !== null);
}
const holderOf = async (workers: string[]) => (await holders(workers))[0];

/**
 * The plan the engine picks for one of the scheduler's queries (its one parameter: a pool or worker id).
 * PostgreSQL with a handful of rows would rightly read the whole table; with sequential scans off it
 * shows whether an index can serve the query at all, which is what a large table needs.
 */
async function plan(query: string): Promise<string> {
  if (store.engine === "sqlite") return (await store.sql.all<{ detail: string }>(`EXPLAIN QUERY PLAN ${query}`, "P")).map((r) => r.detail).join(" | ");
  return store.sql.transaction(async (tx) => {
    await tx.run("SET LOCAL enable_seqscan = off");
    return (await tx.all<{ "QUERY PLAN": string }>(`EXPLAIN ${query}`, "P")).map((r) => r["QUERY PLAN"]).join(" | ");
  });
}
/** SQLite: "SEARCH runs USING INDEX runs_queued (...)"; PostgreSQL: "Index Scan using runs_queued on runs" (or a bitmap scan "on" it). */
const usesIndex = (index: string) => (store.engine === "sqlite" ? new RegExp(`USING INDEX ${index}\\b`) : new RegExp(`(using|on) ${index}\\b`));
/** The rows sorted after they were read: the index did not give them in order. */
const SORTS = /TEMP B-TREE|\bSort\b/;

for (const engine of storeEngines()) {
  describe(engine.name, () => {
    beforeEach(async () => {
      store = await engine.open();
      clock = Date.parse("2026-01-01T00:00:00Z");
      control = new ControlPlane({ store, logger: silentLogger, heartbeatSeconds: 3600, scheduleTimeoutMs: 600_000, now: () => new Date(clock), outbox: { deliver: async () => {} } });
    });

    afterEach(async () => {
      await store.close();
    });

    describe("scheduling proportional to the work", () => {
      test("a worker arriving takes the head of its pool's queue for the same store work with 10 or 10,000 runs queued across 10 pools", async () => {
        const pools = await Promise.all(Array.from({ length: 10 }, (_, i) => pool(`p${i}`)));
        const target = pools[3]!;
        for (const p of pools) await queue(p.stack, p.pool, 5);
        const small: Array<{ statements: number; rows: number }> = [];
        for (let i = 0; i < 3; i++) small.push(await work(() => hello(target.pool, `W-small-${i}`)));
        for (const p of pools) await queue(p.stack, p.pool, 1_000);
        const large: Array<{ statements: number; rows: number }> = [];
        for (let i = 0; i < 3; i++) large.push(await work(() => hello(target.pool, `W-large-${i}`)));
        // Each hello assigned exactly one run, oldest first, and the cost did not change with the queue.
        expect(await store.runs.list({ pool: target.pool, state: "SCHEDULED" })).toHaveLength(6);
        expect(large).toEqual(small);
        for (const w of large) {
          expect(w.statements).toBeLessThanOrEqual(20);
          expect(w.rows).toBeLessThanOrEqual(12);
        }
        // A finish frees the worker and gives it the next run of its pool: also bounded.
        const next = await work(() => finish(target.pool, "W-large-0"));
        expect(next.rows).toBeLessThanOrEqual(20);
        expect((await store.workers.get("W-large-0"))?.current_run).not.toBeNull();
        // The periodic sweep visits every pool once; with nothing to assign it reads no queued run.
        const sweep = await work(() => control.sweep());
        expect(sweep.rows).toBeLessThanOrEqual(pools.length + 10);
      });

      test("the scheduler's queries are index lookups, never a scan of runs or workers", async () => {
        const head = await plan("SELECT * FROM runs WHERE pool = ? AND state = 'QUEUED' ORDER BY created_at, id LIMIT 1");
        expect(head).toMatch(usesIndex("runs_queued"));
        expect(head).not.toMatch(SORTS);
        const idle = await plan(
          "SELECT * FROM workers WHERE pool = ? AND gone_at IS NULL AND drained = 0 AND cycling = 0 AND docker_ok = 1 AND current_run IS NULL ORDER BY last_assigned_at, registered_at, id LIMIT 1",
        );
        expect(idle).toMatch(usesIndex("workers_idle"));
        expect(idle).not.toMatch(SORTS);
        expect(await plan("SELECT * FROM runs WHERE worker = ? AND state IN ('SCHEDULED', 'PREPARING', 'RUNNING')")).toMatch(usesIndex("runs_held"));
      });

      test("instant runs one after another go round every idle worker, least recently assigned first", async () => {
        const p = await pool("fair");
        const workers = Array.from({ length: 10 }, (_, i) => `W${String(i).padStart(2, "0")}`);
        for (const w of workers) {
          clock += 1000;
          await hello(p.pool, w);
        }
        const got = new Map<string, number>();
        for (let i = 0; i < 30; i++) {
          clock += 10;
          await control.triggerRun(p.stack, "TRACKED");
          const holder = await holderOf(workers);
          if (!holder) throw new Error("no worker took the run");
          got.set(holder, (got.get(holder) ?? 0) + 1);
          clock += 10;
          await finish(p.pool, holder);
        }
        // The worker that just finished (and was heard from last) is the one that waits longest for the next run.
        expect([...got.values()]).toEqual(Array.from({ length: 10 }, () => 3));
      });

      test("a burst uses every idle worker; a worker that reconnects keeps its place in the rotation", async () => {
        const p = await pool("burst");
        const workers = Array.from({ length: 50 }, (_, i) => `B${String(i).padStart(2, "0")}`);
        for (const w of workers) await hello(p.pool, w);
        for (let i = 0; i < 50; i++) {
          clock += 1;
          await control.triggerRun(p.stack, "TRACKED");
        }
        expect(new Set(await Promise.all(workers.map(async (w) => (await store.workers.get(w))?.current_run))).size).toBe(50);
        for (const w of workers) await finish(p.pool, w);
        // The next run goes to the one assigned longest ago (B00); after it reconnects, it is still the most
        // recently assigned, so the run after that goes to B01.
        clock += 1000;
        await control.triggerRun(p.stack, "TRACKED");
        expect((await store.workers.get("B00"))?.current_run).not.toBeNull();
        await finish(p.pool, "B00");
        await hello(p.pool, "B00");
        clock += 1;
        await control.triggerRun(p.stack, "TRACKED");
        expect((await store.workers.get("B00"))?.current_run).toBeNull();
        expect((await store.workers.get("B01"))?.current_run).not.toBeNull();
        expect(await holders(workers)).toHaveLength(1);
      });
    });
  });
}
