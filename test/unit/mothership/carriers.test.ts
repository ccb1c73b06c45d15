// Carriers: every message is signed once, before any carrier, for its (pool, worker); it goes the way
// the worker last spoke (the fallback before that); a worker that changes carrier is released from
// the old one; a reset pool is forgotten with its workers named by carrier; memory is bounded.
import { describe, expect, test } from "bun:test";
import { silentLogger } from "../../../src/log/logger.ts";
import { Carriers, isCarrierId, type CarrierBook } from "../../../src/mothership/carriers.ts";
import type { Outbox } from "../../../src/mothership/outbox.ts";

function recording(): Outbox & { got: string[]; released: string[] } {
  const got: string[] = [];
  const released: string[] = [];
  return {
    got,
    released,
    deliver: (pool, worker, message) => {
      got.push(`${pool}/${worker}:${message}`);
      return Promise.resolve();
    },
    release: (pool, worker) => void released.push(`${pool}/${worker}`),
  };
}

function setup(maxWorkers?: number) {
  const mqtt = recording();
  const poll = recording();
  const signed: string[] = [];
  const carriers = new Carriers({
    sign: (pool, worker, message) => {
      signed.push(message);
      return `signed(${pool},${worker},${message})`;
    },
    outboxes: { "external-broker": mqtt, poll },
    fallback: "external-broker",
    maxWorkers,
    logger: silentLogger,
  });
  return { mqtt, poll, signed, carriers };
}

describe("carriers", () => {
  test("a worker not heard from goes to the fallback; after it spoke, the way it spoke; signed once for its own pool and worker", async () => {
    const { mqtt, poll, signed, carriers } = setup();
    await carriers.deliver("P", "W", "m1");
    await carriers.spoke("P", "W", "poll");
    await carriers.deliver("P", "W", "m2");
    await carriers.deliver("P", "V", "m3");
    expect(mqtt.got).toEqual(["P/W:signed(P,W,m1)", "P/V:signed(P,V,m3)"]);
    expect(poll.got).toEqual(["P/W:signed(P,W,m2)"]);
    expect(signed).toEqual(["m1", "m2", "m3"]);
  });

  test("the same worker id in another pool is another worker", async () => {
    const { mqtt, poll, carriers } = setup();
    await carriers.spoke("A", "W", "poll");
    await carriers.deliver("B", "W", "x");
    expect(poll.got).toEqual([]);
    expect(mqtt.got).toEqual(["B/W:signed(B,W,x)"]);
  });

  test("changing carrier releases the old one; speaking again the same way does not", async () => {
    const { mqtt, poll, carriers } = setup();
    await carriers.spoke("P", "W", "poll");
    await carriers.spoke("P", "W", "poll");
    expect(poll.released).toEqual([]);
    await carriers.spoke("P", "W", "external-broker");
    expect(poll.released).toEqual(["P/W"]);
    expect(mqtt.released).toEqual([]);
    expect(await carriers.carrierOf("P", "W")).toBe("external-broker");
  });

  test("messages to one worker reach its carrier in the order sent, however long each lookup of its carrier takes", async () => {
    const poll = recording();
    const delays = [30, 0, 10, 0];
    const book: CarrierBook = {
      spoke: async () => null,
      carrierOf: async () => {
        await Bun.sleep(delays.shift() ?? 0);
        return "poll";
      },
      forgetPool: async () => new Map(),
    };
    const carriers = new Carriers({ sign: (_p, _w, m) => m, outboxes: { mqtt: recording(), poll }, fallback: "mqtt", book, logger: silentLogger });
    await Promise.all(["m1", "m2", "m3", "m4"].map((m) => carriers.deliver("P", "W", m)));
    expect(poll.got).toEqual(["P/W:m1", "P/W:m2", "P/W:m3", "P/W:m4"]);
  });

  test("a signing failure rejects and reaches no carrier", async () => {
    const mqtt = recording();
    const carriers = new Carriers({ sign: () => { throw new Error("no signer"); }, outboxes: { mqtt }, fallback: "mqtt", logger: silentLogger });
    const refused = await carriers.deliver("P", "W", "m").then(() => null, (err: unknown) => err);
    expect(String(refused)).toContain("no signer");
    expect(mqtt.got).toEqual([]);
  });

  test("forgetPool names the pool's workers by carrier and forgets only them", async () => {
    const { carriers } = setup();
    await carriers.spoke("P", "W1", "poll");
    await carriers.spoke("P", "W2", "external-broker");
    await carriers.spoke("P", "W3", "external-broker");
    await carriers.spoke("Q", "W4", "poll");
    expect(Object.fromEntries(await carriers.forgetPool("P"))).toEqual({ poll: ["W1"], "external-broker": ["W2", "W3"] });
    expect(await carriers.carrierOf("P", "W1")).toBe("external-broker");
    expect(await carriers.carrierOf("Q", "W4")).toBe("poll");
  });

  test("memory is bounded: the least recently heard worker is forgotten first", async () => {
    const { carriers } = setup(2);
    await carriers.spoke("P", "W1", "poll");
    await carriers.spoke("P", "W2", "poll");
    await carriers.spoke("P", "W1", "poll");
    await carriers.spoke("P", "W3", "poll");
    expect(await Promise.all(["W1", "W2", "W3"].map((w) => carriers.carrierOf("P", w)))).toEqual(["poll", "external-broker", "poll"]);
  });

  test("an unknown carrier is a programming error; ids with MQTT separators or wildcards are no carrier ids", async () => {
    const { carriers } = setup();
    expect(() => carriers.spoke("P", "W", "pigeon")).toThrow("unknown carrier");
    expect(["01HZX", "a.b-c_d"].every(isCarrierId)).toBe(true);
    expect(["a/b", "+", "#", "", "x".repeat(129)].some(isCarrierId)).toBe(false);
  });
});
