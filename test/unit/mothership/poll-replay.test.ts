// The replay cache of signed long-poll requests: a nonce is refused while its request could still
// verify and forgotten after, pools are separate, and a pool at its bound is refused rather than grown.
import { describe, expect, test } from "bun:test";
import { ReplayCache } from "../../../src/mothership/poll-replay.ts";

const T0 = 1_800_000_000;

describe("replay cache", () => {
  test("a nonce is fresh once, replayed while its timestamp is in the window, and forgotten after", () => {
    let now = T0 * 1000;
    const c = new ReplayCache({ now: () => now, windowSeconds: 300 });
    expect(c.check("P", "n1", T0)).toBe("fresh");
    expect(c.check("P", "n1", T0)).toBe("replayed");
    now += 300_000;
    expect(c.check("P", "n1", T0)).toBe("replayed");
    now += 2_000;
    // By now the timestamp check refuses the request; the nonce may go.
    expect(c.check("P", "n2", T0 + 302)).toBe("fresh");
    expect(c.size()).toBe(1);
    // A request stamped in the future is remembered until its own timestamp leaves the window.
    expect(c.check("P", "future", T0 + 302 + 300)).toBe("fresh");
    now += 500_000;
    expect(c.check("P", "future", T0 + 602)).toBe("replayed");
  });

  test("pools are separate: the same nonce in another pool is another request", () => {
    const c = new ReplayCache({ now: () => T0 * 1000 });
    expect(c.check("A", "n", T0)).toBe("fresh");
    expect(c.check("B", "n", T0)).toBe("fresh");
    expect(c.check("A", "n", T0)).toBe("replayed");
  });

  test("a pool at its bound is refused rather than grown, and others are not affected", () => {
    let now = T0 * 1000;
    const c = new ReplayCache({ now: () => now, maxPerPool: 3 });
    for (const n of ["a", "b", "c"]) expect(c.check("P", n, T0)).toBe("fresh");
    expect(c.check("P", "d", T0)).toBe("full");
    expect(c.size()).toBe(3);
    expect(c.check("Q", "a", T0)).toBe("fresh");
    // Once they expire the pool is served again.
    now += 302_000;
    expect(c.check("P", "d", T0 + 302)).toBe("fresh");
    expect(c.size()).toBe(1);
  });
});
