// Downlink mailboxes of poll workers: acknowledgement by cursor, cursors of an older mailbox, the
// bound, one waiting poll per worker, and which workers have a mailbox at all. No network.
import { describe, expect, test } from "bun:test";
import { silentLogger } from "../../../src/log/logger.ts";
import { MemoryMailboxes } from "../../../src/mothership/poll-mailbox.ts";

const never = new AbortController().signal;

function boxes(o: { limit?: number; now?: () => number } = {}) {
  return new MemoryMailboxes({ logger: silentLogger, ...o });
}

describe("poll mailboxes", () => {
  test("only workers that opened a mailbox get one; MQTT workers are left to the broker", async () => {
    const m = boxes();
    expect(await m.offer("P", "W", "x")).toBe(false);
    await m.open("P", "W");
    expect(await m.offer("P", "W", "x")).toBe(true);
    expect(await m.offer("OTHER", "W", "x")).toBe(false);
    await m.forget("OTHER", "W");
    expect(await m.offer("P", "W", "x")).toBe(true);
    await m.forget("P", "W");
    expect(await m.offer("P", "W", "x")).toBe(false);
  });

  test("the same worker id in another pool is another mailbox: opening, polling and forgetting it leave this one alone", async () => {
    const m = boxes({ now: () => 1_000 });
    await m.open("B", "W");
    await m.offer("B", "W", "for-b");
    await m.open("A", "W");
    await m.offer("A", "W", "for-a");
    expect((await m.take("A", "W", 0, 100, 0, never)).entries.map((e) => e.payload)).toEqual(["for-a"]);
    await m.forget("A", "W");
    expect((await m.take("B", "W", 0, 100, 0, never)).entries.map((e) => e.payload)).toEqual(["for-b"]);
    // A waiting poll of B is not ended by a poll of A for the same id.
    const waiting = m.take("B", "W", 1_001, 100, 5_000, never);
    await m.take("A", "W", 0, 100, 10, never);
    await m.offer("B", "W", "later");
    expect((await waiting).entries.map((e) => e.payload)).toEqual(["later"]);
    await m.dropPool("A");
    expect(await m.offer("B", "W", "still")).toBe(true);
  });

  test("messages stay until a poll's cursor covers them", async () => {
    const m = boxes({ now: () => 1_000 });
    await m.open("P", "W");
    await m.offer("P", "W", "a");
    await m.offer("P", "W", "b");
    const first = await m.take("P", "W", 0, 100, 0, never);
    expect(first.entries.map((e) => e.payload)).toEqual(["a", "b"]);
    expect(first.cursor).toBe(1_002);
    expect((await m.take("P", "W", 0, 100, 0, never)).entries).toHaveLength(2);
    const half = await m.take("P", "W", 1_001, 100, 0, never);
    expect(half.entries.map((e) => e.payload)).toEqual(["b"]);
    expect(await m.take("P", "W", 1_002, 100, 0, never)).toEqual({ entries: [], cursor: 1_002 });
  });

  test("a cursor from the future (another mailbox) acknowledges nothing; the answer gives the real one", async () => {
    const m = boxes({ now: () => 5_000 });
    await m.open("P", "W");
    await m.offer("P", "W", "a");
    const r = await m.take("P", "W", 9_999_999, 100, 0, never);
    expect(r.entries.map((e) => e.payload)).toEqual(["a"]);
    expect(r.cursor).toBe(5_001);
  });

  test("bounded: the oldest go first; an answer holds at most `max`", async () => {
    const m = boxes({ limit: 3 });
    await m.open("P", "W");
    for (const p of ["1", "2", "3", "4", "5"]) await m.offer("P", "W", p);
    const r = await m.take("P", "W", 0, 2, 0, never);
    expect(r.entries.map((e) => e.payload)).toEqual(["3", "4"]);
  });

  test("a waiting poll answers when a message arrives; a newer poll ends an older one", async () => {
    const m = boxes();
    await m.open("P", "W");
    const older = m.take("P", "W", 0, 100, 10_000, never);
    const newer = m.take("P", "W", 0, 100, 10_000, never);
    expect((await older).entries).toEqual([]);
    await m.offer("P", "W", "hi");
    expect((await newer).entries.map((e) => e.payload)).toEqual(["hi"]);
  });

  test("an aborted poll (the client went away) returns at once; dropPool ends waiting polls", async () => {
    const m = boxes();
    await m.open("P", "W");
    const ac = new AbortController();
    const waiting = m.take("P", "W", 0, 100, 10_000, ac.signal);
    ac.abort();
    expect((await waiting).entries).toEqual([]);
    const dropped = m.take("P", "W", 0, 100, 10_000, never);
    await m.dropPool("P");
    expect((await dropped).entries).toEqual([]);
    expect(await m.offer("P", "W", "x")).toBe(false);
  });

  test("sweep removes mailboxes nobody polled for a while", async () => {
    let now = 0;
    const m = new MemoryMailboxes({ logger: silentLogger, idleMs: 1_000, now: () => now });
    await m.open("P", "W");
    now = 2_000;
    await m.sweep();
    expect(await m.offer("P", "W", "x")).toBe(false);
  });
});
