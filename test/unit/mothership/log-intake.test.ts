/**
 * Bounded log input: what the control plane takes of a run's log from a launcher (a peer: anyone
 * with the pool key). A real store and control plane with small caps; messages go in as the wire
 * bytes a launcher would publish, and what the mothership answers is parsed as a launcher would.
 */
import "reflect-metadata";
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { createLogger } from "../../../src/log/logger.ts";
import { ControlPlane } from "../../../src/mothership/control.ts";
import { PoolService } from "../../../src/mothership/pool-service.ts";
import { decodedLength } from "../../../src/mothership/run-log-intake.ts";
import { RunLogReader } from "../../../src/mothership/run-log-reader.ts";
import { openStore, type Store } from "../../../src/mothership/store/index.ts";
import { encodeMessage, makeMessage, parseMessage, type DownlinkMessage, type MessageBody, type UplinkMessage } from "../../../src/protocol/messages.ts";
import { useTestCa } from "./ca-fixture.ts";

const LIMITS = { chunkBytes: 16, runBytes: 64 };

const fixture = useTestCa("log-intake");

let store: Store;
let control: ControlPlane;
let sent: Array<{ worker: string; message: DownlinkMessage }>;
let warnings: Array<Record<string, unknown>>;
let pool = "";
let stack = "";

beforeEach(async () => {
  store = await openStore(":memory:");
  sent = [];
  warnings = [];
  const logger = createLogger({ level: "warn", pretty: false, write: (line) => warnings.push(JSON.parse(line) as Record<string, unknown>) });
  control = new ControlPlane({
    store,
    logger,
    heartbeatSeconds: 10,
    scheduleTimeoutMs: 60_000,
    logLimits: LIMITS,
    outbox: {
      deliver: async (_pool, worker, payload) => {
      const r = parseMessage(payload, "downlink");
      if (r.kind !== "ok") throw new Error("mothership sent an invalid message");
      sent.push({ worker, message: r.message });
      },
    },
  });
  const created = await new PoolService(store, fixture.ca, { brokerEndpoint: "mqtts://127.0.0.1:8883", namespace: "spacelift", commsUrl: "https://127.0.0.1:8080" }).create({ name: "p", csr: fixture.csrPem });
  pool = created.pool.id;
  stack = "S1";
  await store.stacks.insert({ id: stack, name: "s", pool, image: "busybox", environment: [], phases: [{ name: "plan", commands: ["true"] }], repository: null, branch: null, created_at: new Date().toISOString() });
});

afterEach(async () => {
  await store.close();
});

function raw(worker: string, text: string): Promise<void> {
  return control.handleUplink(pool, worker, new TextEncoder().encode(text));
}
async function from<T extends UplinkMessage["type"]>(worker: string, type: T, body: MessageBody<T>): Promise<string> {
  const m: UplinkMessage = makeMessage(type, body);
  await raw(worker, encodeMessage(m));
  return m.id;
}
const chunk = (run: string, seq: number, text: string) => from("W", "log", { run, seq, data: Buffer.from(text).toString("base64") });
const stored = async (run: string) => (await store.runs.logs(run)).map((c) => `${c.seq}:${Buffer.from(c.data).toString()}`);
const replyTo = (id: string) => sent.map((s) => s.message).find((m): m is Extract<DownlinkMessage, { type: "error" }> => m.type === "error" && m.in_reply_to === id);
const lastAck = () => sent.filter((s) => s.message.type === "log_ack").at(-1)?.message as { seq: number } | undefined;
const drain = () => Bun.sleep(5);

/** A run held by worker W, RUNNING. */
async function running(): Promise<string> {
  await from("W", "hello", { metadata: {}, version: "1", arch: "x86_64", state: "IDLE", run: null });
  const run = (await control.triggerRun(stack, "TRACKED")).id;
  await from("W", "run_accepted", { run });
  await from("W", "phase", { run, phase: "plan" });
  expect((await store.runs.get(run))?.state).toBe("RUNNING");
  return run;
}

describe("chunks of an ended run", () => {
  test("a missing chunk <= last_seq is still taken after the end; one beyond last_seq is refused", async () => {
    const run = await running();
    await chunk(run, 0, "a");
    await chunk(run, 2, "c");
    await from("W", "run_finished", { run, exit_code: 0, reason: "ok", last_seq: 3 });
    expect(await store.runs.get(run)).toMatchObject({ state: "FINISHED", last_seq: 3 });
    await chunk(run, 1, "b");
    await chunk(run, 3, "d");
    await drain();
    expect(lastAck()?.seq).toBe(3);
    const late = await chunk(run, 4, "e");
    await drain();
    expect(replyTo(late)).toMatchObject({ code: "log-refused", message: expect.stringContaining("only chunks up to its last seq 3") });
    // Never to be taken, so acknowledged too: the launcher drops it instead of resending it forever.
    expect(lastAck()?.seq).toBe(4);
    expect(await stored(run)).toEqual(["0:a", "1:b", "2:c", "3:d"]);
    expect((await new RunLogReader(store).page(run, -1, 10)).done).toBe(true);
  });

  test("a run ended without a last_seq (launcher lost) takes nothing until the launcher's late report names one", async () => {
    const run = await running();
    await from("W", "gone", { crashed: true });
    expect(await store.runs.get(run)).toMatchObject({ state: "FAILED", reason: "launcher-crashed", last_seq: null });
    await from("W", "hello", { metadata: {}, version: "1", arch: "x86_64", state: "IDLE", run: null });
    const early = await chunk(run, 0, "a");
    await drain();
    expect(replyTo(early)).toMatchObject({ code: "log-refused", message: expect.stringContaining("takes no more output") });
    // Its last seq is not known yet, so the chunk may still be wanted: not acknowledged.
    expect(lastAck()).toBeUndefined();
    // The next launcher reports the dead one's run, then resends its spool.
    await from("W", "run_finished", { run, exit_code: null, reason: "launcher-crashed", last_seq: 1 });
    expect(await store.runs.get(run)).toMatchObject({ state: "FAILED", reason: "launcher-crashed", last_seq: 1 });
    await chunk(run, 0, "a");
    await chunk(run, 1, "b");
    const beyond = await chunk(run, 2, "c");
    await drain();
    expect(replyTo(beyond)?.code).toBe("log-refused");
    expect(lastAck()?.seq).toBe(2);
    expect(await stored(run)).toEqual(["0:a", "1:b"]);
    // A second report cannot move a known last_seq.
    await from("W", "run_finished", { run, exit_code: null, reason: "launcher-crashed", last_seq: 50 });
    expect((await store.runs.get(run))?.last_seq).toBe(1);
  });
});

describe("seq and size bounds", () => {
  test("seq 1e300 or beyond 2^31 is an invalid message, never stored", async () => {
    const run = await running();
    for (const seq of [1e300, 2 ** 31 + 1, -1, 0.5]) {
      await raw("W", JSON.stringify({ v: 1, type: "log", id: `m-${seq}`, ts: new Date().toISOString(), run, seq, data: "eA==" }));
    }
    await drain();
    expect(sent.filter((s) => s.message.type === "error").map((s) => (s.message as { code: string }).code)).toEqual(["invalid-message", "invalid-message", "invalid-message", "invalid-message"]);
    expect(await store.runs.logCount(run)).toBe(0);
  });

  test("a chunk over the chunk cap is refused and not stored; the run goes on", async () => {
    const run = await running();
    const big = await chunk(run, 0, "x".repeat(LIMITS.chunkBytes + 1));
    await chunk(run, 1, "x".repeat(LIMITS.chunkBytes));
    await drain();
    expect(replyTo(big)).toMatchObject({ code: "log-refused", message: expect.stringContaining("--max-log-chunk-bytes") });
    expect(await stored(run)).toEqual([`1:${"x".repeat(16)}`]);
    expect((await store.runs.get(run))?.state).toBe("RUNNING");
  });

  test("decoded sizes are counted from the base64 alone", () => {
    for (const n of [0, 1, 2, 3, 4, 5, 16, 17, 65536]) expect(decodedLength(Buffer.alloc(n).toString("base64"))).toBe(n);
  });
});

test("a run over its per-run cap ends FAILED log-limit-exceeded, with a note, the launcher told to cancel", async () => {
  const run = await running();
  for (let seq = 0; seq < 4; seq++) await chunk(run, seq, `${seq}`.repeat(16));
  expect(await store.runs.get(run)).toMatchObject({ state: "RUNNING", log_bytes: 64 });
  const over = await chunk(run, 4, "4");
  await drain();
  expect(replyTo(over)).toMatchObject({ code: "log-refused", message: expect.stringContaining("--max-run-log-bytes") });
  const ended = (await store.runs.get(run))!;
  expect(ended).toMatchObject({ state: "FAILED", reason: "log-limit-exceeded", last_seq: 4 });
  expect(ended.messages[0]).toContain("--max-run-log-bytes");
  expect(sent.find((s) => s.message.type === "cancel")).toMatchObject({ worker: "W", message: { run } });
  const log = await stored(run);
  expect(log.slice(0, 4)).toEqual(["0:0000000000000000", "1:1111111111111111", "2:2222222222222222", "3:3333333333333333"]);
  expect(log[4]).toStartWith("4:mothership: the run's log reached the limit of 64 bytes per run");
  // Later output is refused; a resend of a stored chunk is acknowledged so the launcher can drop it.
  const later = await chunk(run, 5, "5");
  await drain();
  expect(replyTo(later)?.code).toBe("log-refused");
  expect(lastAck()?.seq).toBe(5);
  await chunk(run, 0, "0".repeat(16));
  await drain();
  expect(lastAck()?.seq).toBe(4);
  // The launcher's own report of the end changes nothing, and frees the worker.
  await from("W", "run_finished", { run, exit_code: 143, reason: "cancelled", last_seq: 7 });
  expect(await store.runs.get(run)).toMatchObject({ state: "FAILED", reason: "log-limit-exceeded", last_seq: 4 });
  expect((await store.workers.get("W"))?.current_run).toBeNull();
  expect((await new RunLogReader(store).page(run, -1, 100)).done).toBe(true);
  // One warning for the run, however many refusals.
  expect(warnings.filter((w) => typeof w.msg === "string" && w.msg.startsWith("log chunk refused"))).toHaveLength(1);
});
