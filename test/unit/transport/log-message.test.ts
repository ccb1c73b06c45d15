import { describe, expect, test } from "bun:test";
import { encodeMessage, parseMessage } from "../../../src/protocol/messages.ts";
import { logDataBytes, logMessage, wirePayload } from "../../../src/transport/log-message.ts";

function bytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) out[i] = (x = (x * 1103515245 + 12345) >>> 0) >>> 24;
  return out;
}

describe("logMessage", () => {
  test("its prebuilt bytes are the message's JSON, with the chunk's base64, for every padding", () => {
    for (const n of [0, 1, 2, 3, 4, 5, 6, 100, 65535, 65536]) {
      const data = bytes(n, n + 1);
      const message = logMessage("01HRUN", 41, data, new Date("2026-01-02T03:04:05Z"));
      const wire = wirePayload(message);
      expect(Buffer.isBuffer(wire)).toBe(true);
      const parsed = parseMessage(wire, "uplink");
      expect(parsed.kind).toBe("ok");
      if (parsed.kind !== "ok" || parsed.message.type !== "log") throw new Error(`chunk of ${n} bytes: ${JSON.stringify(parsed)}`);
      expect(parsed.message).toMatchObject({ run: "01HRUN", seq: 41, ts: "2026-01-02T03:04:05.000Z", data: Buffer.from(data).toString("base64") });
      // Anything that encodes the message generically (the long-poll transport) gets the same JSON.
      expect(encodeMessage(message)).toBe(wire.toString("utf8"));
      expect(message.data).toBe(Buffer.from(data).toString("base64"));
      expect(logDataBytes(message)).toBe(n);
    }
  });

  test("a view into a larger buffer encodes only its own bytes", () => {
    const backing = bytes(1000, 7);
    const view = backing.subarray(13, 13 + 500);
    const parsed = parseMessage(wirePayload(logMessage("R", 0, view)), "uplink");
    expect(parsed.kind === "ok" && parsed.message.type === "log" ? parsed.message.data : null).toBe(Buffer.from(view).toString("base64"));
  });

  test("other messages go out as their JSON text", () => {
    const message = { v: 1, type: "phase", id: "x", ts: "2026-01-02T03:04:05.000Z", run: "R", phase: "plan" } as const;
    expect(wirePayload(message)).toBe(JSON.stringify(message));
  });
});
