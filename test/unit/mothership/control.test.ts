import "reflect-metadata";
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { silentLogger } from "../../../src/log/logger.ts";
import { ControlPlane } from "../../../src/mothership/control.ts";
import { PoolService } from "../../../src/mothership/pool-service.ts";
import type { Store } from "../../../src/mothership/store/index.ts";
import { encodeMessage, makeMessage, parseMessage, type DownlinkMessage, type MessageBody, type UplinkMessage } from "../../../src/protocol/messages.ts";
import { storeEngines } from "../../support/stores.ts";
import { useTestCa } from "./ca-fixture.ts";

const fixture = useTestCa("control");

let store: Store;
let control: ControlPlane;
let clock: number;
let sent: Array<{ worker: string; message: DownlinkMessage }>;

const pools = () => new PoolService(store, fixture.ca, { brokerEndpoint: "mqtts://127.0.0.1:8883", namespace: "spacelift", commsUrl: "https://127.0.0.1:8080" });

async function pool(name: string): Promise<{ pool: string; stack: string }> {
  const { pool: p } = await pools().create({ name, csr: fixture.csrPem });
  const stack = `S-${name}`;
  await store.stacks.insert({ id: stack, name, pool: p.id, image: "busybox", environment: [], phases: [{ name: "plan", commands: ["true"] }], repository: null, branch: null, created_at: new Date(clock).toISOString() });
  return { pool: p.id, stack };
}

function from<T extends UplinkMessage["type"]>(poolId: string, worker: string, type: T, body: MessageBody<T>): Promise<void> {
  return control.handleUplink(poolId, worker, new TextEncoder().encode(encodeMessage(makeMessage(type, body))));
}

const hello = (p: string, w: string, run: string | null = null) => from(p, w, "hello", { metadata: {}, version: "1", arch: "x86_64", state: run ? "BUSY" : "IDLE", run });

async function schedules(n: number): Promise<Array<{ worker: string; run: string }>> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const s = sent.filter((x) => x.message.type === "schedule").map((x) => ({ worker: x.worker, run: (x.message as { run: string }).run }));
    if (s.length >= n || Date.now() > deadline) return s;
    await Bun.sleep(5);
  }
}

for (const engine of storeEngines()) {
  describe(engine.name, () => {
    beforeEach(async () => {
      store = await engine.open();
      clock = Date.parse("2026-01-01T00:00:00Z");
      sent = [];
      control = new ControlPlane({
        store,
        logger: silentLogger,
        heartbeatSeconds: 10,
        scheduleTimeoutMs: 60_000,
        now: () => new Date(clock),
        outbox: {
          deliver: async (_pool, worker, payload) => {
          const r = parseMessage(payload, "downlink");
          if (r.kind !== "ok") throw new Error("mothership sent an invalid message");
          sent.push({ worker, message: r.message });
          },
        },
      });
    });

    afterEach(async () => {
      await store.close();
    });

    describe("scheduler", () => {
      test("queued runs go oldest first to idle workers of their own pool only", async () => {
        const a = await pool("a");
        const b = await pool("b");
        const r1 = await control.triggerRun(a.stack, "TRACKED");
        const r2 = await control.triggerRun(a.stack, "PROPOSED");
        await hello(b.pool, "WB");
        expect((await store.runs.get(r1.id))?.state).toBe("QUEUED");
        await hello(a.pool, "WA1");
        expect(await store.runs.get(r1.id)).toMatchObject({ state: "SCHEDULED", worker: "WA1" });
        expect((await store.runs.get(r2.id))?.state).toBe("QUEUED");
        await hello(a.pool, "WA2");
        expect(await store.runs.get(r2.id)).toMatchObject({ state: "SCHEDULED", worker: "WA2" });
        const mine = (await schedules(2)).filter((s) => s.run === r1.id || s.run === r2.id);
        // Encryption is asynchronous, so the two publishes may arrive in either order.
        expect(mine.sort((x, y) => x.worker.localeCompare(y.worker))).toEqual([{ worker: "WA1", run: r1.id }, { worker: "WA2", run: r2.id }]);
        expect((await store.workers.get("WB"))?.current_run).toBeNull();
      });

      test("a drained worker gets nothing; undrain dispatches; the worker is free again after finishing", async () => {
        const a = await pool("a");
        await hello(a.pool, "W");
        await control.setDrained("W", true);
        const r = await control.triggerRun(a.stack, "TASK");
        expect((await store.runs.get(r.id))?.state).toBe("QUEUED");
        await control.setDrained("W", false);
        expect((await store.runs.get(r.id))?.state).toBe("SCHEDULED");
        await from(a.pool, "W", "run_accepted", { run: r.id });
        await from(a.pool, "W", "run_finished", { run: r.id, exit_code: 0, reason: "ok", last_seq: -1 });
        expect(await store.runs.get(r.id)).toMatchObject({ state: "FINISHED", reason: "ok" });
        expect((await store.workers.get("W"))?.current_run).toBeNull();
        expect(sent.filter((s) => s.worker === "W").map((s) => s.message.type).slice(0, 3)).toEqual(["registered", "drain", "undrain"]);
      });

      test("a busy rejection puts the run back in the queue", async () => {
        const a = await pool("a");
        await hello(a.pool, "W");
        const r = await control.triggerRun(a.stack, "TRACKED");
        await from(a.pool, "W", "run_rejected", { run: r.id, reason: "busy", messages: [] });
        // Released and immediately offered again to the only idle worker.
        expect((await store.runs.get(r.id))?.state).toBe("SCHEDULED");
        await from(a.pool, "W", "run_rejected", { run: r.id, reason: "policy-denied", messages: ["deny: no"] });
        expect(await store.runs.get(r.id)).toMatchObject({ state: "FAILED", reason: "policy-denied", messages: ["deny: no"] });
      });
    });

    describe("logs", () => {
      test("chunks stored once per (run, seq); acks report the contiguous watermark", async () => {
        const a = await pool("a");
        await hello(a.pool, "W");
        const r = await control.triggerRun(a.stack, "TRACKED");
        for (const seq of [0, 2, 2, 1, 3]) await from(a.pool, "W", "log", { run: r.id, seq, data: Buffer.from(`l${seq}`).toString("base64") });
        await Bun.sleep(10);
        const acks = sent.filter((s) => s.message.type === "log_ack").map((s) => (s.message as { seq: number }).seq);
        expect(acks).toEqual([0, 0, 0, 2, 3]);
        expect((await store.runs.logs(r.id)).map((c) => Buffer.from(c.data).toString())).toEqual(["l0", "l1", "l2", "l3"]);
      });

      test("a worker cannot write logs into a run it does not hold", async () => {
        const a = await pool("a");
        await hello(a.pool, "W1");
        await hello(a.pool, "W2");
        const r = await control.triggerRun(a.stack, "TRACKED");
        const other = (await store.runs.get(r.id))?.worker === "W1" ? "W2" : "W1";
        await from(a.pool, other, "log", { run: r.id, seq: 0, data: "" });
        await Bun.sleep(10);
        expect(await store.runs.logCount(r.id)).toBe(0);
        expect(sent.find((s) => s.worker === other && s.message.type === "error")?.message).toMatchObject({ code: "unknown-run" });
      });
    });

    describe("liveness", () => {
      test("silent workers are declared gone after three heartbeats, not during the restart grace", async () => {
        const a = await pool("a");
        await hello(a.pool, "W");
        const r = await control.triggerRun(a.stack, "TRACKED");
        await from(a.pool, "W", "run_accepted", { run: r.id });
        clock += 29_000;
        await control.sweep();
        expect((await store.workers.get("W"))?.gone_at).toBeNull();
        clock += 2_000;
        await control.sweep();
        expect((await store.workers.get("W"))?.gone_at).not.toBeNull();
        expect(await store.runs.get(r.id)).toMatchObject({ state: "FAILED", reason: "launcher-crashed" });
      });

      test("an unconfirmed schedule goes back to the queue", async () => {
        const a = await pool("a");
        await hello(a.pool, "W");
        const r = await control.triggerRun(a.stack, "TRACKED");
        clock += 61_000;
        await from(a.pool, "W", "heartbeat", { state: "IDLE", run: null });
        await control.sweep();
        // Requeued, then offered again to the same (still idle and live) worker.
        expect(await store.runs.get(r.id)).toMatchObject({ state: "SCHEDULED", worker: "W" });
        // (filtered by run: an earlier test's encryption may still be publishing into this test's list)
        expect((await schedules(2)).filter((s) => s.run === r.id)).toHaveLength(2);
      });

      test("a launcher that comes back saying it holds no run: its result, queued behind the hello, ends the run as it says", async () => {
        const a = await pool("a");
        await hello(a.pool, "W");
        const r = await control.triggerRun(a.stack, "TRACKED");
        await from(a.pool, "W", "run_accepted", { run: r.id });
        await hello(a.pool, "W", null);
        expect(await store.runs.get(r.id)).toMatchObject({ state: "PREPARING", worker: "W" });
        await from(a.pool, "W", "run_finished", { run: r.id, reason: "ok", exit_code: 0, last_seq: -1, messages: [] });
        expect(await store.runs.get(r.id)).toMatchObject({ state: "FINISHED", reason: "ok" });
        expect((await store.workers.get("W"))?.current_run).toBeNull();
      });

      test("a run whose launcher no longer holds it and whose result never comes FAILS after two heartbeats; the worker takes runs again", async () => {
        const a = await pool("a");
        await hello(a.pool, "W");
        const r = await control.triggerRun(a.stack, "TRACKED");
        await from(a.pool, "W", "run_accepted", { run: r.id });
        await from(a.pool, "W", "phase", { run: r.id, phase: "planning" });
        // The result is lost on the way; the launcher's heartbeats say it is idle.
        await from(a.pool, "W", "heartbeat", { state: "IDLE", run: null });
        clock += 10_000;
        await from(a.pool, "W", "heartbeat", { state: "IDLE", run: null });
        expect(await store.runs.get(r.id)).toMatchObject({ state: "RUNNING", worker: "W" });
        clock += 10_000;
        await from(a.pool, "W", "heartbeat", { state: "IDLE", run: null });
        expect(await store.runs.get(r.id)).toMatchObject({ state: "FAILED", reason: "launcher-crashed" });
        expect((await store.runs.get(r.id))?.messages.join(" ")).toContain("result never reached the mothership");
        const next = await control.triggerRun(a.stack, "TRACKED");
        expect(await store.runs.get(next.id)).toMatchObject({ state: "SCHEDULED", worker: "W" });
        // A heartbeat that names the run it holds changes nothing.
        await from(a.pool, "W", "run_accepted", { run: next.id });
        for (let i = 0; i < 3; i++) {
          clock += 10_000;
          await from(a.pool, "W", "heartbeat", { state: "BUSY", run: next.id });
        }
        expect(await store.runs.get(next.id)).toMatchObject({ state: "PREPARING" });
      });

      test("Last Will (gone crashed) fails the worker's run; a clean goodbye of an idle worker fails nothing", async () => {
        const a = await pool("a");
        await hello(a.pool, "W1");
        const r = await control.triggerRun(a.stack, "TRACKED");
        await from(a.pool, "W1", "run_accepted", { run: r.id });
        await from(a.pool, "W1", "gone", { crashed: true });
        expect(await store.runs.get(r.id)).toMatchObject({ state: "FAILED", reason: "launcher-crashed" });
        await hello(a.pool, "W2");
        await from(a.pool, "W2", "gone", { crashed: false });
        expect(await store.workers.listLive(a.pool)).toEqual([]);
      });
    });

    test("a worker declared gone is asked to say hello again before anything else counts", async () => {
      const a = await pool("a");
      await hello(a.pool, "W");
      await from(a.pool, "W", "gone", { crashed: true });
      await from(a.pool, "W", "heartbeat", { state: "IDLE", run: null });
      await Bun.sleep(10);
      expect(sent.filter((s) => s.worker === "W").at(-1)?.message).toMatchObject({ type: "error", code: "unknown-worker" });
      await hello(a.pool, "W");
      expect((await store.workers.listLive(a.pool)).map((w) => w.id)).toEqual(["W"]);
    });
  });
}
