import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { newSecretKey, SecretBox } from "../../../src/mothership/secret-box.ts";
import { openStore } from "../../../src/mothership/store/index.ts";
import { ulid } from "../../../src/protocol/ulid.ts";

let dir = "";
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "store-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const pool = (id: string, serial: string) => ({ id, name: id, description: "", certificate: "PEM", certificate_serial: serial, key_type: "RSA-4096", created_at: "2026-01-01T00:00:00.000Z" });

test("a reopened file keeps everything, in WAL mode, and migrations do not run twice", () => {
  const path = join(dir, "m.db");
  const secrets = new SecretBox([newSecretKey()]);
  const s1 = openStore(path, { secrets });
  s1.pools.insert(pool("P1", "AB"));
  s1.stacks.insert({ id: "S1", name: "s", pool: "P1", image: "img", environment: [{ name: "K", value: "secret-v", secret: true }], phases: [{ name: "plan", commands: ["a", "b"] }], repository: null, branch: null, created_at: "t" });
  const run = s1.runs.insert({ id: "R1", stack: "S1", pool: "P1", type: "TASK", created_at: "t" });
  s1.runs.appendLog(run.id, 0, new TextEncoder().encode("x"));
  s1.close();
  const s2 = openStore(path, { secrets });
  expect((s2.db.query("PRAGMA journal_mode").get() as { journal_mode: string }).journal_mode).toBe("wal");
  expect(s2.pools.get("P1")?.certificate_serial).toBe("AB");
  // Read back sealed; opened only on request (for the run spec).
  expect(s2.stacks.get("S1")?.environment).toEqual([{ name: "K", value: "", secret: true, sealed: expect.stringMatching(/^v1:/) }]);
  expect(s2.stacks.reveal(s2.stacks.get("S1")!).environment).toEqual([{ name: "K", value: "secret-v", secret: true }]);
  expect(s2.runs.get("R1")).toMatchObject({ state: "QUEUED", type: "TASK", log_acked: 0 });
  expect(s2.runs.logs("R1").map((c) => new TextDecoder().decode(c.data))).toEqual(["x"]);
  s2.close();
});

test("certificate serials: current accepted, replaced and deleted ones revoked", () => {
  const s = openStore(":memory:");
  s.pools.insert(pool("P1", "AA"));
  expect(s.pools.isCurrentSerial("P1", "AA")).toBe(true);
  expect(s.pools.isCurrentSerial("P2", "AA")).toBe(false);
  s.pools.replaceCertificate("P1", "PEM2", "BB", "EC-P-256", "t");
  expect(s.pools.isCurrentSerial("P1", "AA")).toBe(false);
  expect(s.pools.isCurrentSerial("P1", "BB")).toBe(true);
  s.pools.delete("P1", "t");
  expect(s.pools.isCurrentSerial("P1", "BB")).toBe(false);
  expect(s.pools.revokedSerials()).toEqual(["AA", "BB"]);
});

test("ulids sort in creation order, also within one millisecond", () => {
  const ids = Array.from({ length: 200 }, () => ulid(1_700_000_000_000));
  expect([...ids].sort()).toEqual(ids);
  expect(new Set(ids).size).toBe(200);
  expect(ids[0]).toMatch(/^[0-7][0-9A-HJKMNP-TV-Z]{25}$/);
});
