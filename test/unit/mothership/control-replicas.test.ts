// Several control planes on one store: what keeps each decision whole within one (the serial queue) and
// what keeps replicas on one PostgreSQL from undoing or doubling each other's decisions (claimed rows in
// dispatch, the sweep's conditional writes).
import "reflect-metadata";
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { silentLogger } from "../../../src/log/logger.ts";
import { ControlPlane } from "../../../src/mothership/control.ts";
import { PoolService } from "../../../src/mothership/pool-service.ts";
import { SerialQueue } from "../../../src/mothership/serial-queue.ts";
import { openStore, type Store } from "../../../src/mothership/store/index.ts";
import { declareWorkerGone, requeueUnconfirmed } from "../../../src/mothership/sweep.ts";
import { encodeMessage, makeMessage, parseMessage, type MessageBody, type UplinkMessage } from "../../../src/protocol/messages.ts";
import { ulid } from "../../../src/protocol/ulid.ts";
import { postgresTestEnv } from "../../support/env.ts";
import { createTestDatabase, type TestDatabase } from "../../support/postgres.ts";
import { storeEngines } from "../../support/stores.ts";
import { useTestCa } from "./ca-fixture.ts";

const fixture = useTestCa("control-replicas");
const START = Date.parse("2026-01-01T00:00:00Z");
let clock = START;

interface Schedule {
  replica: number;
  worker: string;
  run: string;
}

/** A control plane whose schedule messages land in `sent`, tagged with `replica`. */
function controlPlane(store: Store, replica: number, sent: Schedule[]): ControlPlane {
  return new ControlPlane({
    store,
    logger: silentLogger,
    heartbeatSeconds: 10,
    scheduleTimeoutMs: 60_000,
    now: () => new Date(clock),
    outbox: {
      deliver: async (_pool, worker, payload) => {
        const r = parseMessage(payload, "downlink");
        if (r.kind === "ok" && r.message.type === "schedule") sent.push({ replica, worker, run: r.message.run });
      },
    },
  });
}

function from<T extends UplinkMessage["type"]>(control: ControlPlane, pool: string, worker: string, type: T, body: MessageBody<T>): Promise<void> {
  return control.handleUplink(pool, worker, new TextEncoder().encode(encodeMessage(makeMessage(type, body))));
}
const hello = (control: ControlPlane, pool: string, worker: string) => from(control, pool, worker, "hello", { metadata: {}, version: "1", arch: "x86_64", state: "IDLE", run: null });

async function poolWithStack(store: Store): Promise<{ pool: string; stack: string }> {
  const { pool } = await new PoolService(store, fixture.ca, { brokerEndpoint: "mqtts://127.0.0.1:8883", namespace: "spacelift", commsUrl: "https://127.0.0.1:8080" }).create({ name: "p", csr: fixture.csrPem });
  await store.stacks.insert({ id: "S", name: "s", pool: pool.id, image: "busybox", environment: [], phases: [{ name: "plan", commands: ["true"] }], repository: null, branch: null, created_at: new Date(clock).toISOString() });
  return { pool: pool.id, stack: "S" };
}

/** Waits for encryption (asynchronous, outside the queue) to hand over `n` schedules. */
async function schedules(sent: Schedule[], n: number): Promise<Schedule[]> {
  const deadline = Date.now() + 5000;
  while (sent.length < n && Date.now() < deadline) await Bun.sleep(5);
  return sent;
}

test("the serial queue runs tasks one at a time, in order; a failure goes to its caller and the next task still runs", async () => {
  const queue = new SerialQueue();
  const trace: string[] = [];
  const task = (name: string, fail = false) => async () => {
    trace.push(`${name} start`);
    await Bun.sleep(1);
    trace.push(`${name} end`);
    if (fail) throw new Error(`${name} failed`);
    return name;
  };
  const results = await Promise.allSettled([queue.run(task("a")), queue.run(task("b", true)), queue.run(task("c"))]);
  expect(trace).toEqual(["a start", "a end", "b start", "b end", "c start", "c end"]);
  expect(results.map((r) => (r.status === "fulfilled" ? r.value : (r.reason as Error).message))).toEqual(["a", "b failed", "c"]);
});

for (const engine of storeEngines()) {
  describe(engine.name, () => {
    let store: Store;
    beforeEach(async () => {
      clock = START;
      store = await engine.open();
    });
    afterEach(async () => {
      await store.close();
    });

    test("messages sent without waiting are applied whole, one after another, in the order they came", async () => {
      const sent: Schedule[] = [];
      const control = controlPlane(store, 0, sent);
      const { pool, stack } = await poolWithStack(store);
      const run = await control.triggerRun(stack, "TRACKED");
      // Nothing awaited in between: each message still sees what the one before it did.
      await Promise.all([
        hello(control, pool, "W"),
        from(control, pool, "W", "run_accepted", { run: run.id }),
        from(control, pool, "W", "phase", { run: run.id, phase: "plan" }),
        from(control, pool, "W", "run_finished", { run: run.id, reason: "ok", exit_code: 0, last_seq: -1 }),
        hello(control, pool, "W2"),
      ]);
      expect(await store.runs.get(run.id)).toMatchObject({ state: "FINISHED", worker: "W" });
      expect((await store.runs.phases(run.id)).map((p) => p.name)).toEqual(["preparing", "plan"]);
      expect((await store.workers.listLive(pool)).map((w) => [w.id, w.current_run])).toEqual([
        ["W", null],
        ["W2", null],
      ]);
    });

    test("a sweep acting on an older read changes nothing: a run accepted meanwhile stays, a worker heard meanwhile stays live", async () => {
      const control = controlPlane(store, 0, []);
      const { pool, stack } = await poolWithStack(store);
      await hello(control, pool, "W");
      const run = await control.triggerRun(stack, "TRACKED");
      const scheduled = (await store.runs.get(run.id))!;
      const silent = (await store.workers.get("W"))!;
      clock += 1000;
      await from(control, pool, "W", "run_accepted", { run: run.id });
      const now = new Date(clock).toISOString();
      expect(await requeueUnconfirmed(store, scheduled, now)).toBeNull();
      expect(await declareWorkerGone(store, silent, true, now)).toBeNull();
      expect(await store.runs.get(run.id)).toMatchObject({ state: "PREPARING", worker: "W" });
      expect(await store.workers.get("W")).toMatchObject({ gone_at: null, current_run: run.id });
      // The same read, still current, is acted on, once.
      const heard = (await store.workers.get("W"))!;
      const changes = await declareWorkerGone(store, heard, true, now);
      expect(changes?.map((c) => [c.run, c.from, c.to.state, c.to.reason])).toEqual([[run.id, "PREPARING", "FAILED", "launcher-crashed"]]);
      expect(await declareWorkerGone(store, heard, true, now)).toBeNull();
      expect(await store.workers.get("W")).toMatchObject({ gone_crashed: true, current_run: null });
    });
  });
}

const pg = postgresTestEnv();

describe.skipIf(!pg)("replicas on one PostgreSQL", () => {
  let db: TestDatabase;
  let stores: Store[];
  beforeEach(async () => {
    clock = START;
    db = await createTestDatabase(pg!.url);
    stores = [await openStore(db.url), await openStore(db.url)];
  });
  afterEach(async () => {
    for (const s of stores) await s.close();
    await db.drop();
  });

  test("four replicas dispatching at once give each run to one worker and each worker one run", async () => {
    const sent: Schedule[] = [];
    const replicas = [0, 1, 2, 3].map((i) => controlPlane(stores[i % 2]!, i, sent));
    const { pool, stack } = await poolWithStack(stores[0]!);
    const workers = Array.from({ length: 20 }, (_, i) => `W${String(i).padStart(2, "0")}`);
    // Workers register while nothing is queued, then 60 runs are queued behind the control planes' backs.
    for (const [i, w] of workers.entries()) await hello(replicas[i % 4]!, pool, w);
    await stores[0]!.transaction(async (tx) => {
      for (let i = 0; i < 60; i++) await tx.runs.insert({ id: ulid(), stack, pool, type: "TRACKED", created_at: new Date(clock + i).toISOString() });
    });
    await Promise.all(replicas.flatMap((r) => [r.dispatch(pool), r.dispatch(pool), r.sweep()]));

    const scheduled = await stores[1]!.runs.list({ pool, state: "SCHEDULED" });
    expect(scheduled).toHaveLength(20);
    expect(new Set(scheduled.map((r) => r.worker)).size).toBe(20);
    for (const r of scheduled) expect((await stores[0]!.workers.get(r.worker!))?.current_run).toBe(r.id);
    // The oldest 20 went first (a row another replica held was skipped, not waited for, so not in strict order).
    const queued = await stores[0]!.runs.list({ pool, state: "QUEUED" });
    expect(Math.max(...scheduled.map((r) => Date.parse(r.created_at)))).toBeLessThan(Math.min(...queued.map((r) => Date.parse(r.created_at))) + 20);
    const got = await schedules(sent, 20);
    expect(got).toHaveLength(20);
    expect(new Set(got.map((s) => s.run)).size).toBe(20);
    expect(new Set(got.map((s) => s.worker)).size).toBe(20);
  });

  test("replicas sweeping at once put an unconfirmed schedule back once and give it to one worker", async () => {
    const sent: Schedule[] = [];
    const replicas = [0, 1, 2, 3].map((i) => controlPlane(stores[i % 2]!, i, sent));
    const { pool, stack } = await poolWithStack(stores[0]!);
    await hello(replicas[0]!, pool, "LATE");
    const run = await replicas[1]!.triggerRun(stack, "TRACKED");
    await schedules(sent, 1);
    clock += 61_000;
    // Every worker is heard, so nobody is declared gone; only the schedule has expired.
    await hello(replicas[2]!, pool, "FRESH");
    await from(replicas[3]!, pool, "LATE", "heartbeat", { state: "IDLE", run: null });
    sent.length = 0;
    await Promise.all(replicas.map((r) => r.sweep()));

    const now = await stores[0]!.runs.get(run.id);
    expect(now?.state).toBe("SCHEDULED");
    const got = await schedules(sent, 1);
    await Bun.sleep(50);
    expect(got).toEqual([{ replica: expect.any(Number) as number, worker: now!.worker!, run: run.id }]);
    const holders = (await stores[1]!.workers.listLive(pool)).filter((w) => w.current_run !== null);
    expect(holders.map((w) => [w.id, w.current_run])).toEqual([[now!.worker!, run.id]]);
  });
});
