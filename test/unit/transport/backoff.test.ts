import { describe, expect, test } from "bun:test";
import { backoffDelay, DEFAULT_BACKOFF } from "../../../src/transport/backoff.ts";

describe("reconnect backoff", () => {
  test("grows exponentially up to the ceiling; jitter keeps it in [d/2, d]", () => {
    const p = { initialMs: 100, maxMs: 1_000, factor: 2, jitter: 0.5 };
    const top = (n: number) => backoffDelay(p, n, () => 1);
    const bottom = (n: number) => backoffDelay(p, n, () => 0);
    expect([0, 1, 2, 3, 4, 5].map(top)).toEqual([100, 200, 400, 800, 1000, 1000]);
    expect([0, 1, 2, 3, 4, 5].map(bottom)).toEqual([50, 100, 200, 400, 500, 500]);
  });

  test("two launchers retrying at the same attempt do not pick the same delay", () => {
    const delays = new Set(Array.from({ length: 50 }, () => backoffDelay(DEFAULT_BACKOFF, 3)));
    expect(delays.size).toBeGreaterThan(10);
    for (const d of delays) expect(d).toBeGreaterThanOrEqual(2_000);
    for (const d of delays) expect(d).toBeLessThanOrEqual(4_000);
  });
});
