// One launcher's messages handled by two replicas (two control planes, each with its own serial queue, on
// one database): a decision read on one replica and written after the other moved the run on must end
// where one process taking the same messages in the order they applied ends. Each race is made to
// happen: a replica's write (or read) is held until the other has applied its message.
import "reflect-metadata";
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { silentLogger } from "../../../src/log/logger.ts";
import { ControlPlane } from "../../../src/mothership/control.ts";
import { PoolService } from "../../../src/mothership/pool-service.ts";
import type { RunStatus } from "../../../src/mothership/run-lifecycle.ts";
import { openStore, type Store } from "../../../src/mothership/store/index.ts";
import { RunRepo, type StatusExtra } from "../../../src/mothership/store/runs.ts";
import { WorkerRepo } from "../../../src/mothership/store/workers.ts";
import { encodeMessage, makeMessage, parseMessage, type MessageBody, type UplinkMessage } from "../../../src/protocol/messages.ts";
import { postgresTestEnv } from "../../support/env.ts";
import { createTestDatabase } from "../../support/postgres.ts";
import { storeEngines } from "../../support/stores.ts";
import { useTestCa } from "./ca-fixture.ts";

const fixture = useTestCa("control-replica-races");
const START = Date.parse("2026-01-01T00:00:00Z");
let clock = START;

/** What the launcher received, from whichever replica. */
type Received = Array<{ type: string; run?: string }>;

/** Two replicas' stores on one database: two connections to PostgreSQL; on SQLite one handle, repositories of their own. */
async function twoStores(engine: "sqlite" | "postgres"): Promise<{ a: Store; b: Store; close(): Promise<void> }> {
  if (engine === "sqlite") {
    const a = await openStore(":memory:");
    return { a, b: { ...a, runs: new RunRepo(a.sql), workers: new WorkerRepo(a.sql) }, close: () => a.close() };
  }
  const db = await createTestDatabase(postgresTestEnv()!.url);
  const a = await openStore(db.url);
  const b = await openStore(db.url);
  return { a, b, close: async () => (await Promise.all([a.close(), b.close()]), await db.drop()) };
}

function replica(store: Store, received: Received): ControlPlane {
  return new ControlPlane({
    store,
    logger: silentLogger,
    heartbeatSeconds: 10,
    scheduleTimeoutMs: 60_000,
    now: () => new Date(clock),
    outbox: {
      deliver: async (_pool, _worker, payload) => {
        const r = parseMessage(payload, "downlink");
        if (r.kind === "ok") received.push({ type: r.message.type, ...("run" in r.message ? { run: r.message.run } : {}) });
      },
    },
  });
}

function from<T extends UplinkMessage["type"]>(control: ControlPlane, pool: string, type: T, body: MessageBody<T>): Promise<void> {
  return control.handleUplink(pool, "W", new TextEncoder().encode(encodeMessage(makeMessage(type, body))));
}

/** A pool with a stack, worker W registered through `control`, and one run scheduled to it. */
async function scheduledRun(store: Store, control: ControlPlane): Promise<{ pool: string; run: string }> {
  const { pool } = await new PoolService(store, fixture.ca, { brokerEndpoint: "mqtts://127.0.0.1:8883", namespace: "spacelift", commsUrl: "https://127.0.0.1:8080" }).create({ name: "p", csr: fixture.csrPem });
  await store.stacks.insert({ id: "S", name: "s", pool: pool.id, image: "busybox", environment: [], phases: [{ name: "plan", commands: ["true"] }], repository: null, branch: null, created_at: new Date(clock).toISOString() });
  await from(control, pool.id, "hello", { metadata: {}, version: "1", arch: "x86_64", state: "IDLE", run: null });
  const run = await control.triggerRun("S", "TRACKED");
  expect(await store.runs.get(run.id)).toMatchObject({ state: "SCHEDULED", worker: "W" });
  return { pool: pool.id, run: run.id };
}

interface Hold {
  /** Settles once the held call was made: its decision was read. */
  reached: Promise<void>;
  release(): void;
}

/** Holds the first call of `fn` on `target` for which `when` holds, until released. */
function hold<T extends object, K extends keyof T>(target: T, fn: K, when: (...args: never[]) => boolean = () => true): Hold {
  const original = (target[fn] as (...args: unknown[]) => Promise<unknown>).bind(target);
  let reached!: () => void;
  let release!: () => void;
  const h = { reached: new Promise<void>((r) => (reached = r)), released: new Promise<void>((r) => (release = r)) };
  let held = false;
  target[fn] = (async (...args: never[]) => {
    if (!held && when(...args)) {
      held = true;
      reached();
      await h.released;
    }
    return original(...args);
  }) as T[K];
  return { reached: h.reached, release };
}

/** Holds the replica's first status write matching `when`, decided on the run as read before it. */
const holdWrite = (store: Store, when: (next: RunStatus, extra: StatusExtra) => boolean) =>
  hold(store.runs, "applyStatus", (_read: unknown, next: RunStatus, _now: unknown, extra: StatusExtra = {}) => when(next, extra));

/** What a run ended as, for comparing replicas with one process. */
async function outcome(store: Store, run: string) {
  const r = (await store.runs.get(run))!;
  const w = (await store.workers.get("W"))!;
  return {
    run: { state: r.state, reason: r.reason, exit_code: r.exit_code, phase: r.phase, last_seq: r.last_seq, cancel_requested: r.cancel_requested, log_acked: r.log_acked, ended: r.finished_at !== null },
    phases: (await store.runs.phases(run)).map((p) => p.name),
    log: Buffer.concat((await store.runs.logs(run)).map((c) => c.data)).toString(),
    worker: { gone: w.gone_at !== null, current_run: w.current_run === null ? null : "held" },
  };
}

/** The same messages through one control plane, in the order given. */
async function oneProcess(steps: Array<(c: ControlPlane, pool: string, run: string) => Promise<void>>) {
  const store = await openStore(":memory:");
  try {
    const control = replica(store, []);
    const { pool, run } = await scheduledRun(store, control);
    for (const step of steps) await step(control, pool, run);
    return await outcome(store, run);
  } finally {
    await store.close();
  }
}

const chunk = (c: ControlPlane, pool: string, run: string, seq: number) => from(c, pool, "log", { run, seq, data: Buffer.from(`line ${seq}\n`).toString("base64") });

for (const engine of storeEngines()) {
  describe(engine.name, () => {
    let stores: { a: Store; b: Store; close(): Promise<void> };
    const received: Received = [];
    let A: ControlPlane;
    let B: ControlPlane;
    beforeEach(async () => {
      clock = START;
      received.length = 0;
      stores = await twoStores(engine.name);
      A = replica(stores.a, received);
      B = replica(stores.b, received);
    });
    afterEach(async () => {
      await stores.close();
    });

    test("accepted via A lands after B's phase, logs through both, a phase via A lands after B's finish: as one process", async () => {
      const { pool, run } = await scheduledRun(stores.a, A);
      const accepted = holdWrite(stores.a, (next) => next.state === "PREPARING");
      const acceptance = from(A, pool, "run_accepted", { run });
      await accepted.reached;
      await from(B, pool, "phase", { run, phase: "plan" });
      accepted.release();
      await acceptance;
      await Promise.all(Array.from({ length: 10 }, (_, seq) => chunk(seq % 2 ? A : B, pool, run, seq)));
      const late = holdWrite(stores.a, (_next, extra) => extra.phase === "apply");
      const phase = from(A, pool, "phase", { run, phase: "apply" });
      await late.reached;
      await from(B, pool, "run_finished", { run, reason: "ok", exit_code: 0, last_seq: 9 });
      late.release();
      await phase;

      const got = await outcome(stores.b, run);
      expect(got).toMatchObject({ run: { state: "FINISHED", reason: "ok", last_seq: 9, log_acked: 9, ended: true }, phases: ["plan"], worker: { current_run: null } });
      expect(got).toEqual(
        await oneProcess([
          (c, p, r) => from(c, p, "phase", { run: r, phase: "plan" }),
          (c, p, r) => from(c, p, "run_accepted", { run: r }),
          ...Array.from({ length: 10 }, (_, seq) => (c: ControlPlane, p: string, r: string) => chunk(c, p, r, seq)),
          (c, p, r) => from(c, p, "run_finished", { run: r, reason: "ok", exit_code: 0, last_seq: 9 }),
          (c, p, r) => from(c, p, "phase", { run: r, phase: "apply" }),
        ]),
      );
      expect(received.filter((m) => m.type === "log_ack")).toHaveLength(10);
    });

    test("the sweep on A read W silent, then B applied its finish: W stays live, the run finished, as one process", async () => {
      const first = await scheduledRun(stores.a, A);
      await from(A, first.pool, "run_accepted", { run: first.run });
      clock += 31_000;
      const read = hold(stores.a.workers, "silentSince");
      const sweep = A.sweep();
      await read.reached;
      await from(B, first.pool, "run_finished", { run: first.run, reason: "ok", exit_code: 0, last_seq: -1 });
      read.release();
      await sweep;
      expect(await outcome(stores.a, first.run)).toEqual(
        await oneProcess([
          (c, p, r) => from(c, p, "run_accepted", { run: r }),
          (c, p, r) => from(c, p, "run_finished", { run: r, reason: "ok", exit_code: 0, last_seq: -1 }),
          (c) => c.sweep(),
        ]),
      );
      expect((await stores.b.workers.get("W"))?.gone_at).toBeNull();
    });

    test("B read W live, then the sweep on A declared it gone before B's finish applied: the run failed, W asked to say hello, as one process", async () => {
      const { pool, run } = await scheduledRun(stores.a, A);
      await from(A, pool, "run_accepted", { run });
      clock += 31_000;
      const heard = hold(stores.b.workers, "touch");
      const finish = from(B, pool, "run_finished", { run, reason: "ok", exit_code: 0, last_seq: 4 });
      await heard.reached;
      await A.sweep();
      heard.release();
      await finish;
      const got = await outcome(stores.b, run);
      expect(got).toMatchObject({ run: { state: "FAILED", reason: "launcher-crashed", last_seq: null }, worker: { gone: true, current_run: null } });
      expect(received.at(-1)).toEqual({ type: "error" });
      clock = START;
      const single = await oneProcess([
        (c, p, r) => from(c, p, "run_accepted", { run: r }),
        async (c) => {
          clock += 31_000;
          await c.sweep();
        },
        (c, p, r) => from(c, p, "run_finished", { run: r, reason: "ok", exit_code: 0, last_seq: 4 }),
      ]);
      expect(got).toEqual(single);
    });

    test("a cancel via A while B applies the acceptance, either order: the run keeps its state and cancel request, the launcher gets its cancel", async () => {
      // B decided the acceptance on the run before the cancel; A's cancel lands first.
      const { pool, run } = await scheduledRun(stores.a, A);
      const accepted = holdWrite(stores.b, (next) => next.state === "PREPARING");
      const acceptance = from(B, pool, "run_accepted", { run });
      await accepted.reached;
      await A.cancelRun(run);
      accepted.release();
      await acceptance;
      expect(await stores.a.runs.get(run)).toMatchObject({ state: "PREPARING", cancel_requested: true, worker: "W" });
      expect(received.filter((m) => m.type === "cancel")).toContainEqual({ type: "cancel", run });

      // A decided the cancel on the scheduled run; B's acceptance lands first. The cancel goes out once.
      await from(A, pool, "run_finished", { run, reason: "cancelled", exit_code: null, last_seq: -1 });
      const next = (await A.triggerRun("S", "TRACKED")).id;
      received.length = 0;
      const cancel = holdWrite(stores.a, (next) => next.cancel_requested);
      const canceling = A.cancelRun(next);
      await cancel.reached;
      await from(B, pool, "run_accepted", { run: next });
      cancel.release();
      expect(await canceling).toMatchObject({ id: next, state: "PREPARING", cancel_requested: true });
      expect(received.filter((m) => m.type === "cancel")).toEqual([{ type: "cancel", run: next }]);
    });
  });
}
