import { describe, expect, test } from "bun:test";
import { DOWNLINK_TYPES, UPLINK_TYPES, encodeMessage, makeMessage, parseMessage } from "../../../src/protocol/messages.ts";

const ts = "2026-01-02T03:04:05.000Z";
const head = (type: string) => ({ v: 1, type, id: "m1", ts });

describe("parseMessage", () => {
  test("every message made by makeMessage parses back to itself", () => {
    const up = [
      makeMessage("hello", { metadata: { instance_id: "i-1" }, version: "1.0.0", arch: "x86_64", state: "IDLE", run: null }),
      makeMessage("heartbeat", { state: "BUSY", run: "r1" }),
      makeMessage("run_accepted", { run: "r1" }),
      makeMessage("run_rejected", { run: "r1", reason: "policy-denied", messages: ["no tasks on Fridays"] }),
      makeMessage("phase", { run: "r1", phase: "plan" }),
      makeMessage("log", { run: "r1", seq: 0, data: Buffer.from("hi\n").toString("base64") }),
      makeMessage("run_finished", { run: "r1", exit_code: 0, reason: "ok", last_seq: 0 }),
      makeMessage("gone", { crashed: false }),
    ];
    for (const m of up) expect(parseMessage(encodeMessage(m), "uplink")).toEqual({ kind: "ok", message: m });
    const down = [
      makeMessage("registered", { worker: "w1", pool: "p1", status: "IDLE", heartbeat_seconds: 15 }),
      makeMessage("schedule", { run: "r1", jwe: "a.b.c.d.e" }),
      makeMessage("cancel", { run: "r1" }),
      makeMessage("drain", {}),
      makeMessage("undrain", {}),
      makeMessage("cycle", {}),
      makeMessage("log_ack", { run: "r1", seq: 41 }),
      makeMessage("error", { in_reply_to: "m1", code: "invalid-message", message: "bad" }),
    ];
    for (const m of down) expect(parseMessage(new TextEncoder().encode(encodeMessage(m)), "downlink")).toEqual({ kind: "ok", message: m });
    expect(new Set([...UPLINK_TYPES, ...DOWNLINK_TYPES]).size).toBe(up.length + down.length);
  });

  test.each([
    ["not JSON", "{nope", "payload is not JSON"],
    ["an array", "[1]", "not a JSON object"],
    ["null", "null", "not a JSON object"],
    ["another version", JSON.stringify({ ...head("heartbeat"), v: 2, state: "IDLE", run: null }), "unsupported protocol version 2"],
    ["no version", JSON.stringify({ type: "heartbeat", id: "x", ts, state: "IDLE", run: null }), "unsupported protocol version"],
    ["no type", JSON.stringify({ v: 1, id: "x", ts }), "no type"],
    ["a bad state", JSON.stringify({ ...head("heartbeat"), state: "SLEEPING", run: null }), "heartbeat: state"],
    ["a negative seq", JSON.stringify({ ...head("log"), run: "r", seq: -1, data: "" }), "log: seq"],
    ["non-base64 log data", JSON.stringify({ ...head("log"), run: "r", seq: 0, data: "%%%" }), "not base64"],
    ["a bad timestamp", JSON.stringify({ ...head("gone"), ts: "yesterday", crashed: true }), "gone: ts"],
    ["an unknown reason", JSON.stringify({ ...head("run_finished"), run: "r", exit_code: 1, reason: "oops", last_seq: 3 }), "reason"],
    ["a downlink type sent uplink", JSON.stringify({ ...head("schedule"), run: "r", jwe: "x" }), "not sent in this direction"],
  ])("%s is invalid, not a throw", (_name, raw, error) => {
    const r = parseMessage(raw, "uplink");
    expect(r.kind).toBe("invalid");
    if (r.kind === "invalid") expect(r.error).toContain(error);
  });

  test("an unknown type is ignored (forward compatibility) and keeps its id", () => {
    const r = parseMessage(JSON.stringify({ ...head("telemetry"), cpu: 3 }), "uplink");
    expect(r).toEqual({ kind: "ignored", type: "telemetry", id: "m1" });
  });

  test("unknown fields are dropped, known ones kept", () => {
    const r = parseMessage(JSON.stringify({ ...head("cancel"), run: "r9", future: true }), "downlink");
    expect(r).toEqual({ kind: "ok", message: { ...head("cancel"), run: "r9" } as never });
  });

  test("invalid reports carry type and id so the mothership can answer with an error", () => {
    const r = parseMessage(JSON.stringify({ ...head("phase"), run: "r" }), "uplink");
    expect(r).toMatchObject({ kind: "invalid", type: "phase", id: "m1" });
  });
});
