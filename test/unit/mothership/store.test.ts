// Every repository on both engines (SQLite always, PostgreSQL when the test environment has it): the
// same calls give the same answers whichever one holds the data.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { RunStatus } from "../../../src/mothership/run-lifecycle.ts";
import { newSecretKey, SecretBox } from "../../../src/mothership/secret-box.ts";
import { openStore, type Store } from "../../../src/mothership/store/index.ts";
import { ulid } from "../../../src/protocol/ulid.ts";
import { postgresTestEnv } from "../../support/env.ts";
import { createTestDatabase } from "../../support/postgres.ts";
import { storeEngines } from "../../support/stores.ts";

let dir = "";
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "store-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const pool = (id: string, serial: string) => ({ id, name: id, description: "", certificate: "PEM", certificate_serial: serial, key_type: "RSA-4096", created_at: "2026-01-01T00:00:00.000Z" });
const stack = (id: string, environment: Array<{ name: string; value: string; secret: boolean }> = []) =>
  ({ id, name: "s", pool: "P1", image: "img", environment, phases: [{ name: "plan", commands: ["a", "b"] }], repository: null, branch: null, created_at: "t" });
const status = (state: RunStatus["state"], worker: string | null = null): RunStatus => ({ state, reason: null, exit_code: null, worker, cancel_requested: false });
const reg = (id: string, now: string, p = "P1") => ({ id, pool: p, metadata: { zone: "a" }, version: "1.0", arch: "amd64", now });
const bytes = (s: string) => new TextEncoder().encode(s);
/** Writes a status over the run as it is now. */
const write = async (s: Store, id: string, st: RunStatus, now: string, extra?: { phase?: string; messages?: string[]; last_seq?: number }) =>
  expect(await s.runs.applyStatus((await s.runs.get(id))!, st, now, extra)).toBe(true);

/** Two stores on one place (a SQLite file, or a PostgreSQL database of its own). */
async function sharedLocation(engine: "sqlite" | "postgres"): Promise<{ location: string; drop(): Promise<void> }> {
  if (engine === "sqlite") return { location: join(dir, `${ulid()}.db`), drop: async () => {} };
  const db = await createTestDatabase(postgresTestEnv()!.url);
  return { location: db.url, drop: db.drop };
}

test("ulids sort in creation order, also within one millisecond", () => {
  const ids = Array.from({ length: 200 }, () => ulid(1_700_000_000_000));
  expect([...ids].sort()).toEqual(ids);
  expect(new Set(ids).size).toBe(200);
  expect(ids[0]).toMatch(/^[0-7][0-9A-HJKMNP-TV-Z]{25}$/);
});

for (const engine of storeEngines()) {
  describe(engine.name, () => {
    let s: Store;
    const key = newSecretKey();
    const secrets = new SecretBox([key]);
    beforeAll(async () => {
      s = await engine.open({ secrets });
      await s.pools.insert(pool("P1", "P1-SERIAL"));
    });
    afterAll(async () => {
      await s.close();
    });

    test("a reopened store keeps everything (SQLite in WAL mode), and migrations do not run twice", async () => {
      const place = await sharedLocation(engine.name);
      try {
        const s1 = await openStore(place.location, { secrets });
        expect(s1.engine).toBe(engine.name);
        await s1.pools.insert(pool("P1", "AB"));
        await s1.stacks.insert({ ...stack("S1", [{ name: "K", value: "secret-v", secret: true }]) });
        const run = await s1.runs.insert({ id: "R1", stack: "S1", pool: "P1", type: "TASK", created_at: "t" });
        await s1.runs.appendLog(run.id, 0, bytes("x"));
        await s1.close();
        const s2 = await openStore(place.location, { secrets });
        if (engine.name === "sqlite") expect((await s2.sql.get<{ journal_mode: string }>("PRAGMA journal_mode"))?.journal_mode).toBe("wal");
        expect((await s2.pools.get("P1"))?.certificate_serial).toBe("AB");
        // Read back sealed; opened only on request (for the run spec).
        expect((await s2.stacks.get("S1"))?.environment).toEqual([{ name: "K", value: "", secret: true, sealed: expect.stringMatching(/^v1:/) }]);
        expect(s2.stacks.reveal((await s2.stacks.get("S1"))!).environment).toEqual([{ name: "K", value: "secret-v", secret: true }]);
        expect(await s2.runs.get("R1")).toMatchObject({ state: "QUEUED", type: "TASK", log_acked: 0, log_bytes: 1 });
        expect((await s2.runs.logs("R1")).map((c) => new TextDecoder().decode(c.data))).toEqual(["x"]);
        await s2.close();
      } finally {
        await place.drop();
      }
    });

    test("certificate serials: current accepted, replaced and deleted ones revoked", async () => {
      await s.pools.insert(pool("C1", "AA"));
      expect(await s.pools.isCurrentSerial("C1", "AA")).toBe(true);
      expect(await s.pools.isCurrentSerial("C2", "AA")).toBe(false);
      await s.pools.replaceCertificate("C1", "PEM2", "BB", "EC-P-256", "t1");
      expect(await s.pools.isCurrentSerial("C1", "AA")).toBe(false);
      expect(await s.pools.isCurrentSerial("C1", "BB")).toBe(true);
      expect((await s.pools.get("C1"))?.key_type).toBe("EC-P-256");
      await s.pools.delete("C1", "t2");
      expect(await s.pools.isCurrentSerial("C1", "BB")).toBe(false);
      expect(await s.pools.get("C1")).toBeNull();
      expect(await s.pools.revokedSerials()).toEqual(["AA", "BB"]);
      expect(await s.pools.revocations()).toEqual([{ serial: "AA", revoked_at: "t1" }, { serial: "BB", revoked_at: "t2" }]);
      expect(await s.pools.ids()).toEqual(["P1"]);
      expect((await s.pools.list()).map((p) => p.id)).toEqual(["P1"]);
    });

    test("workers: register, reconnect, another pool's id refused, idle order, claims, health, gone", async () => {
      expect(await s.workers.register(reg("W1", "2026-01-01T00:00:01Z"))).toMatchObject({ id: "W1", drained: false, cycling: false, docker_ok: true, gone_crashed: null, metadata: { zone: "a" } });
      await s.workers.register(reg("W2", "2026-01-01T00:00:02Z"));
      expect(await s.workers.register(reg("W1", "2026-01-01T00:00:03Z", "OTHER"))).toBeNull();
      expect((await s.workers.get("W1"))?.last_seen).toBe("2026-01-01T00:00:01Z");
      expect((await s.workers.nextIdle("P1"))?.id).toBe("W1");
      expect((await s.workers.claimNextIdle("P1"))?.id).toBe("W1");
      await s.workers.assign("W1", "RX", "2026-01-01T00:01:00Z");
      expect((await s.workers.nextIdle("P1"))?.id).toBe("W2");
      // Freed only of the run it holds: a release for another run (an older read) changes nothing.
      expect(await s.workers.release("W1", "RY")).toBe(false);
      expect((await s.workers.get("W1"))?.current_run).toBe("RX");
      expect(await s.workers.release("W1", "RX")).toBe(true);
      // W2 was never assigned: it goes before W1, the most recently assigned.
      expect((await s.workers.nextIdle("P1"))?.id).toBe("W2");
      await s.workers.setDrained("W2", true);
      expect((await s.workers.get("W2"))?.drained).toBe(true);
      expect((await s.workers.nextIdle("P1"))?.id).toBe("W1");
      expect(await s.workers.setDockerHealth("W1", false, "no socket")).toBe(true);
      expect(await s.workers.setDockerHealth("W1", false, "no socket")).toBe(false);
      expect(await s.workers.nextIdle("P1")).toBeNull();
      expect(await s.workers.claimNextIdle("P1")).toBeNull();
      await s.workers.setCycling("W1");
      expect(await s.workers.touch("W1", "2026-01-01T00:05:00Z")).toBe(true);
      expect((await s.workers.silentSince("2026-01-01T00:04:00Z")).map((w) => w.id)).toEqual(["W2"]);
      expect((await s.workers.listLive("P1")).map((w) => w.id)).toEqual(["W1", "W2"]);
      // Gone as read: not once heard from since, nor twice.
      const silent = (await s.workers.get("W2"))!;
      await s.workers.touch("W2", "2026-01-01T00:06:00Z");
      expect(await s.workers.markGone(silent, true, "t")).toBe(false);
      expect((await s.workers.get("W2"))?.gone_at).toBeNull();
      const heard = (await s.workers.get("W2"))!;
      expect(await s.workers.markGone(heard, true, "t")).toBe(true);
      expect(await s.workers.markGone(heard, true, "t")).toBe(false);
      expect(await s.workers.touch("W2", "2026-01-01T00:07:00Z")).toBe(false);
      expect(await s.workers.get("W2")).toMatchObject({ gone_at: "t", gone_crashed: true });
      await s.workers.deletePool("P1", "t2");
      expect(await s.workers.get("W1")).toMatchObject({ gone_at: "t2", gone_crashed: false, cycling: true, docker_ok: false });
      expect(await s.workers.listLive()).toEqual([]);
      // Back from the dead on reconnect, its drain kept.
      expect(await s.workers.register(reg("W2", "t3"))).toMatchObject({ gone_at: null, gone_crashed: null, drained: true });
    });

    test("runs: queue head and claim, active order, transitions, phases in arrival order", async () => {
      await s.stacks.insert(stack("S-runs"));
      for (const id of ["RA", "RB", "RC"]) await s.runs.insert({ id, stack: "S-runs", pool: "Q", type: "TRACKED", created_at: `2026-01-01T00:00:0${id.at(-1) === "A" ? 1 : id.at(-1) === "B" ? 2 : 3}Z`, branch: "main", user_provided_metadata: ["k=v"] });
      expect(await s.runs.get("RA")).toMatchObject({ state: "QUEUED", branch: "main", commit_sha: null, user_provided_metadata: ["k=v"], cancel_requested: false, messages: [], log_acked: -1, last_seq: null });
      expect((await s.runs.headOfQueue("Q"))?.id).toBe("RA");
      expect((await s.runs.claimHeadOfQueue("Q"))?.id).toBe("RA");
      await write(s, "RA", status("SCHEDULED", "W9"), "2026-01-01T00:01:00Z");
      expect((await s.runs.headOfQueue("Q"))?.id).toBe("RB");
      await write(s, "RB", status("PREPARING", "W9"), "2026-01-01T00:02:00Z");
      await write(s, "RB", status("RUNNING", "W9"), "2026-01-01T00:03:00Z", { phase: "plan", messages: ["m1"], last_seq: 4 });
      await write(s, "RB", status("RUNNING", "W9"), "2026-01-01T00:04:00Z", { phase: "apply" });
      expect((await s.runs.heldBy("W9")).map((r) => r.id).sort()).toEqual(["RA", "RB"]);
      expect((await s.runs.scheduledBefore("2026-01-01T00:05:00Z")).map((r) => r.id)).toEqual(["RA"]);
      expect((await s.runs.list({ active: true, pool: "Q" })).map((r) => r.id)).toEqual(["RA", "RB", "RC"]);
      expect((await s.runs.list({ state: "QUEUED", stack: "S-runs" })).map((r) => r.id)).toEqual(["RC"]);
      expect((await s.runs.phases("RB")).map((p) => [p.name, p.ended_at])).toEqual([["preparing", "2026-01-01T00:03:00Z"], ["plan", "2026-01-01T00:04:00Z"], ["apply", null]]);
      await write(s, "RB", { ...status("FAILED", "W9"), exit_code: 3 }, "2026-01-01T00:06:00Z");
      await write(s, "RB", { ...status("FAILED", "W9"), exit_code: 3 }, "2026-01-01T00:07:00Z");
      expect(await s.runs.get("RB")).toMatchObject({ state: "FAILED", exit_code: 3, phase: "apply", messages: ["m1"], last_seq: 4, finished_at: "2026-01-01T00:06:00Z" });
      expect((await s.runs.phases("RB")).at(-1)?.ended_at).toBe("2026-01-01T00:06:00Z");
      await s.runs.recordLateLastSeq("RB", "W9", 9);
      expect((await s.runs.get("RB"))?.last_seq).toBe(4);
      await write(s, "RC", { ...status("CANCELED"), cancel_requested: true }, "t");
      expect(await s.runs.get("RC")).toMatchObject({ state: "CANCELED", cancel_requested: true });
      // A run that ended without a last seq learns it from the worker it ended on, and only from it.
      await write(s, "RA", { ...status("FAILED", "W9"), reason: "launcher-crashed" }, "t");
      await s.runs.recordLateLastSeq("RA", "W8", 7);
      expect((await s.runs.get("RA"))?.last_seq).toBeNull();
      await s.runs.recordLateLastSeq("RA", "W9", 9);
      expect((await s.runs.get("RA"))?.last_seq).toBe(9);
      expect(await s.runs.claimHeadOfQueue("Q")).toBeNull();
    });

    test("status writes apply only over the revision read; an event is decided again on what another writer left", async () => {
      await s.runs.insert({ id: "RV", stack: "S-runs", pool: "Q", type: "TRACKED", created_at: "t" });
      await write(s, "RV", status("SCHEDULED", "W1"), "t1");
      const scheduled = (await s.runs.get("RV"))!;
      // Another writer (a replica) moves the run on; a write decided on the older read does nothing.
      const cancel = await s.runs.applyEvent(scheduled, { type: "cancel" }, "t2");
      expect(cancel).toMatchObject({ from: { state: "SCHEDULED", cancel_requested: false }, to: { state: "SCHEDULED", cancel_requested: true } });
      expect(await s.runs.applyStatus(scheduled, status("PREPARING", "W1"), "t3")).toBe(false);
      expect(await s.runs.get("RV")).toMatchObject({ state: "SCHEDULED", cancel_requested: true, revision: scheduled.revision + 1 });
      // The same event through applyEvent reads again and keeps the cancel request.
      expect(await s.runs.applyEvent(scheduled, { type: "accepted" }, "t3", {}, "W1")).toMatchObject({ from: { cancel_requested: true }, to: { state: "PREPARING", cancel_requested: true } });
      const preparing = (await s.runs.get("RV"))!;
      await write(s, "RV", { ...status("FINISHED", "W1"), reason: "ok", exit_code: 0 }, "t4");
      // A phase decided on the older read no longer applies: the run ended.
      expect(await s.runs.applyEvent(preparing, { type: "phase", phase: "plan" }, "t5", { phase: "plan" }, "W1")).toBeNull();
      expect(await s.runs.get("RV")).toMatchObject({ state: "FINISHED", phase: null, finished_at: "t4" });
      expect((await s.runs.phases("RV")).map((p) => p.name)).toEqual(["preparing"]);
      // A launcher's event applies only while its worker holds the run.
      await s.runs.insert({ id: "RH", stack: "S-runs", pool: "Q", type: "TRACKED", created_at: "t" });
      await write(s, "RH", status("SCHEDULED", "W1"), "t1");
      const held = (await s.runs.get("RH"))!;
      await write(s, "RH", status("QUEUED"), "t2");
      await write(s, "RH", status("SCHEDULED", "W2"), "t3");
      expect(await s.runs.applyEvent(held, { type: "accepted" }, "t4", {}, "W1")).toBeNull();
      expect(await s.runs.get("RH")).toMatchObject({ state: "SCHEDULED", worker: "W2" });
    });

    test("logs: out of order and resent chunks, the watermark, bytes counted, notes after the last chunk", async () => {
      await s.runs.insert({ id: "RL", stack: "S-runs", pool: "Q", type: "TASK", created_at: "t" });
      expect(await s.runs.appendLog("RL", 1, bytes("b"))).toBe(-1);
      expect(await s.runs.appendLog("RL", 0, bytes("a"))).toBe(1);
      expect(await s.runs.appendLog("RL", 0, bytes("a"))).toBe(1);
      expect(await s.runs.appendLog("RL", 3, bytes("dd"))).toBe(1);
      expect(await s.runs.hasLog("RL", 3)).toBe(true);
      expect(await s.runs.hasLog("RL", 2)).toBe(false);
      expect(await s.runs.appendNote("RL", "rejected")).toBe(4);
      expect(await s.runs.get("RL")).toMatchObject({ log_acked: 1, log_bytes: 1 + 1 + 2 + "rejected\n".length });
      expect(await s.runs.logCount("RL")).toBe(4);
      const binary = new Uint8Array([0, 255, 10, 128]);
      expect(await s.runs.appendLog("RL", 2, binary)).toBe(4);
      const chunks = await s.runs.logs("RL", 0, 2);
      expect(chunks.map((c) => c.seq)).toEqual([1, 2]);
      expect(chunks[1]?.data).toEqual(binary);
      expect(chunks[1]?.data).toBeInstanceOf(Uint8Array);
      expect(new TextDecoder().decode((await s.runs.logs("RL", 3))[0]?.data)).toBe("rejected\n");
      expect(await s.runs.logCount("nope")).toBe(0);
    });

    test("stacks: secrets sealed, listed by pool, resealed under a new key, deleted", async () => {
      await s.stacks.insert({ ...stack("S-sec", [{ name: "A", value: "1", secret: false }, { name: "B", value: "two", secret: true }]), labels: ["x"], vcs_pool: "vcs" });
      expect(await s.stacks.get("S-sec")).toMatchObject({ labels: ["x"], vcs_pool: "vcs", phases: [{ name: "plan", commands: ["a", "b"] }] });
      expect((await s.stacks.list("P1")).map((x) => x.id)).toContain("S-sec");
      expect(await s.stacks.list("none")).toEqual([]);
      expect((await s.stacks.sealedKeyIds()).keyIds).toEqual(new Set([secrets.currentKeyId]));
      // A rotation: the new key first, the old one after it to open the values sealed under it.
      const fresh = newSecretKey();
      const both = new SecretBox([fresh, key]);
      const done = await s.stacks.reseal(both);
      expect(done.values).toBeGreaterThanOrEqual(1);
      expect(await s.stacks.sealedKeyIds()).toEqual({ keyIds: new Set([fresh.id]), plaintext: 0 });
      expect(await s.stacks.reseal(both)).toEqual({ values: 0, stacks: 0 });
      const reopened = await s.stacks.get("S-sec");
      expect(both.open(reopened!.environment[1]!.sealed!, "S-sec", "B")).toBe("two");
      await s.stacks.delete("S-sec");
      expect(await s.stacks.get("S-sec")).toBeNull();
    });

    test("transactions: repositories bound to it, nested calls join, a throw rolls everything back, statements counted", async () => {
      const before = s.stats.statements;
      const failed = await s
        .transaction(async (tx) => {
          await tx.runs.insert({ id: "RT1", stack: "S-runs", pool: "T", type: "TASK", created_at: "t" });
          await tx.runs.appendLog("RT1", 0, bytes("x"));
          expect((await tx.runs.get("RT1"))?.log_acked).toBe(0);
          throw new Error("boom");
        })
        .catch((err: unknown) => err);
      expect(failed).toEqual(new Error("boom"));
      expect(await s.runs.get("RT1")).toBeNull();
      expect(await s.runs.hasLog("RT1", 0)).toBe(false);
      const id = await s.transaction(async (tx) => {
        await tx.runs.insert({ id: "RT2", stack: "S-runs", pool: "T", type: "TASK", created_at: "t" });
        // The store's own repositories, and a transaction inside it, join it (and see what it wrote).
        expect((await s.runs.get("RT2"))?.state).toBe("QUEUED");
        return s.transaction(async () => (await tx.runs.claimHeadOfQueue("T"))?.id);
      });
      expect(id).toBe("RT2");
      expect(s.stats.statements).toBeGreaterThan(before);
    });
  });
}
