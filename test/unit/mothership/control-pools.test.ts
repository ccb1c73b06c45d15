// A worker id belongs to the pool that registered it: whatever another pool says in its name (hello,
// heartbeat, run messages, gone) is answered with worker-pool-mismatch on the SENDER's own topic, and
// the worker's row, status, runs and schedule stay as they were. In-memory store, real pool certificates.
import "reflect-metadata";
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { silentLogger } from "../../../src/log/logger.ts";
import { ControlPlane } from "../../../src/mothership/control.ts";
import { PoolService } from "../../../src/mothership/pool-service.ts";
import type { Store } from "../../../src/mothership/store/index.ts";
import { encodeMessage, makeMessage, parseMessage, type DownlinkMessage, type MessageBody, type UplinkMessage } from "../../../src/protocol/messages.ts";
import { storeEngines } from "../../support/stores.ts";
import { useTestCa } from "./ca-fixture.ts";

const fixture = useTestCa("control-pools");

let store: Store;
let control: ControlPlane;
let sent: Array<{ pool: string; worker: string; message: DownlinkMessage }>;
const clock = Date.parse("2026-01-01T00:00:00Z");

async function pool(name: string): Promise<{ pool: string; stack: string }> {
  const { pool: p } = await new PoolService(store, fixture.ca, { brokerEndpoint: "mqtts://127.0.0.1:8883", namespace: "spacelift", commsUrl: "https://127.0.0.1:8080" }).create({ name, csr: fixture.csrPem });
  const stack = `S-${name}`;
  await store.stacks.insert({ id: stack, name, pool: p.id, image: "busybox", environment: [], phases: [{ name: "plan", commands: ["true"] }], repository: null, branch: null, created_at: new Date(clock).toISOString() });
  return { pool: p.id, stack };
}

function from<T extends UplinkMessage["type"]>(poolId: string, worker: string, type: T, body: MessageBody<T>): Promise<void> {
  return control.handleUplink(poolId, worker, new TextEncoder().encode(encodeMessage(makeMessage(type, body))));
}
const hello = (p: string, w: string, metadata: Record<string, string> = {}) => from(p, w, "hello", { metadata, version: "1", arch: "x86_64", state: "IDLE", run: null });
const to = (p: string, w: string) => sent.filter((s) => s.pool === p && s.worker === w).map((s) => (s.message.type === "error" ? `error:${s.message.code}` : s.message.type));

for (const engine of storeEngines()) {
  describe(engine.name, () => {
    beforeEach(async () => {
      store = await engine.open();
      sent = [];
      control = new ControlPlane({
        store,
        logger: silentLogger,
        heartbeatSeconds: 10,
        scheduleTimeoutMs: 60_000,
        now: () => new Date(clock),
        outbox: {
          deliver: async (pool, worker, payload) => {
          const r = parseMessage(payload, "downlink");
          if (r.kind !== "ok") throw new Error("mothership sent an invalid message");
          sent.push({ pool, worker, message: r.message });
          },
        },
      });
    });

    afterEach(async () => {
      await store.close();
    });

    describe("worker ids across pools", () => {
      test("every message from pool A naming B's worker is refused to A alone; B's row and running run do not change", async () => {
        const a = await pool("a");
        const b = await pool("b");
        await hello(b.pool, "W", { team: "b" });
        const run = await control.triggerRun(b.stack, "TRACKED");
        await from(b.pool, "W", "run_accepted", { run: run.id });
        await from(b.pool, "W", "phase", { run: run.id, phase: "plan" });
        expect((await store.runs.get(run.id))?.state).toBe("RUNNING");
        await Bun.sleep(20);
        const row = await store.workers.get("W");
        const toB = to(b.pool, "W").length;

        await hello(a.pool, "W", { team: "a" });
        await from(a.pool, "W", "heartbeat", { state: "IDLE", run: null });
        await from(a.pool, "W", "log", { run: run.id, seq: 0, data: "Zm9yZ2Vk" });
        await from(a.pool, "W", "run_finished", { run: run.id, exit_code: 0, reason: "ok", last_seq: 0 });
        await from(a.pool, "W", "gone", { crashed: true });
        await Bun.sleep(20);

        expect(to(a.pool, "W")).toEqual(Array(5).fill("error:worker-pool-mismatch"));
        expect(to(b.pool, "W")).toHaveLength(toB);
        expect(await store.workers.get("W")).toEqual(row);
        expect(await store.runs.get(run.id)).toMatchObject({ state: "RUNNING", worker: "W", reason: null });
        expect(await store.runs.logs(run.id)).toEqual([]);
      });

      test("a SCHEDULED run of B is not sent to A, and B's gone worker is not revived by A", async () => {
        const a = await pool("a");
        const b = await pool("b");
        await hello(b.pool, "W");
        const run = await control.triggerRun(b.stack, "TRACKED");
        await Bun.sleep(20);
        expect((await store.runs.get(run.id))?.state).toBe("SCHEDULED");
        await hello(a.pool, "W");
        await Bun.sleep(20);
        expect(to(a.pool, "W")).toEqual(["error:worker-pool-mismatch"]);
        expect(await store.runs.get(run.id)).toMatchObject({ state: "SCHEDULED", worker: "W" });

        await control.cancelRun(run.id);
        await from(b.pool, "W", "run_finished", { run: run.id, exit_code: 1, reason: "cancelled", last_seq: -1 });
        await from(b.pool, "W", "gone", { crashed: false });
        expect((await store.workers.get("W"))?.gone_at).not.toBeNull();
        await hello(a.pool, "W");
        expect(await store.workers.get("W")).toMatchObject({ pool: b.pool });
        expect((await store.workers.get("W"))?.gone_at).not.toBeNull();
        expect(await store.workers.listLive()).toEqual([]);
        // B's next run waits for a live worker of B: no phantom takes it.
        const next = await control.triggerRun(b.stack, "TRACKED");
        expect(await store.runs.get(next.id)).toMatchObject({ state: "QUEUED", worker: null });
      });

      test("the store never moves a worker row to another pool", async () => {
        const a = await pool("a");
        const b = await pool("b");
        const now = new Date(clock).toISOString();
        expect(await store.workers.register({ id: "W", pool: b.pool, metadata: { team: "b" }, version: "1", arch: "x86_64", now })).toMatchObject({ pool: b.pool });
        expect(await store.workers.markGone((await store.workers.get("W"))!, true, now)).toBe(true);
        expect(await store.workers.register({ id: "W", pool: a.pool, metadata: { team: "a" }, version: "2", arch: "aarch64", now })).toBeNull();
        expect(await store.workers.get("W")).toMatchObject({ pool: b.pool, metadata: { team: "b" }, version: "1", arch: "x86_64", gone_crashed: true });
      });
    });
  });
}
