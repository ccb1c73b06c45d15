import { describe, expect, test } from "bun:test";
import { formatGoDuration, MAX_TIMEOUT_MS, parseGoDuration, parseTimeout } from "../../../src/config/duration.ts";

function ms(text: string): number {
  const r = parseGoDuration(text);
  if (!r.ok) throw new Error(`expected ${JSON.stringify(text)} to parse: ${r.problems.join(" | ")}`);
  return r.value;
}

function problem(text: string, parse = parseGoDuration): string {
  const r = parse(text);
  if (r.ok) throw new Error(`expected ${JSON.stringify(text)} to fail, got ${r.value}`);
  expect(r.problems).toHaveLength(1);
  return r.problems[0] ?? "";
}

describe("parseGoDuration: Go's time.ParseDuration grammar", () => {
  test.each([
    ["1h30m", 5_400_000],
    ["1.5h", 5_400_000],
    ["1000s", 1_000_000],
    ["120m", 7_200_000],
    ["300ms", 300],
    [".5s", 500],
    ["1.s", 1000],
    ["+7m", 420_000],
    ["1h1m1s1ms", 3_661_001],
    ["2h45m0.5s", 9_900_500],
    ["1500us", 1.5],
    ["1500µs", 1.5],
    ["1500μs", 1.5],
    ["2000000ns", 2],
    ["0", 0],
    ["0s", 0],
    ["+0", 0],
    ["1.000000000000000000001s", 1000], // digits beyond precision are ignored, as in Go
  ])("%p = %p ms", (text, expected) => {
    expect(ms(text)).toBe(expected);
  });

  test("the maximum Go duration (2^63-1 ns) parses and one more nanosecond does not", () => {
    expect(ms("9223372036854775807ns")).toBeCloseTo(9_223_372_036_854.775, 0);
    expect(problem("9223372036854775808ns")).toContain("out of range");
    expect(problem("2562048h")).toContain("out of range");
  });

  test.each([
    ["7 minutes", "unknown unit"],
    ["1x", "unknown unit"],
    ["1 h", "unknown unit"],
    ["1H", "unknown unit"],
    ["1d", "unknown unit"],
    ["-1s", "negative"],
    ["-0", "negative"],
    ["", "empty"],
    ["1", "without a unit"],
    ["1h30", "without a unit"],
    ["h", "expected a number"],
    [".s", "expected a number"],
    ["+", "no number"],
    ["1h 30m", "unknown unit"],
    [" 1h", "expected a number"],
  ])("%p is an error (%s)", (text, why) => {
    const p = problem(text);
    expect(p).toContain(why);
    // What is wrong, then a good value.
    expect(p).toMatch(/; e\.g\. 90m, 1h30m/);
    expect(p).not.toContain("\n");
  });
});

describe("parseTimeout", () => {
  test("zero is an error: a zero timeout would stop every run at once", () => {
    expect(problem("0", parseTimeout)).toContain("zero");
    expect(problem("0s", parseTimeout)).toContain("zero");
    expect(problem("0h0m", parseTimeout)).toContain("zero");
  });

  test("longer than a JavaScript timer can hold is an error (it would fire immediately)", () => {
    expect(problem("600h", parseTimeout)).toContain("longest supported timeout");
    const max = parseTimeout(formatGoDuration(MAX_TIMEOUT_MS));
    expect(max).toEqual({ ok: true, value: MAX_TIMEOUT_MS });
  });

  test("ordinary values pass through", () => {
    expect(parseTimeout("7m")).toEqual({ ok: true, value: 420_000 });
    expect(parseTimeout("250ms")).toEqual({ ok: true, value: 250 });
  });
});

describe("formatGoDuration", () => {
  test.each([
    [420_000, "7m"],
    [5_400_000, "1h30m"],
    [4_200_000, "1h10m"],
    [300, "300ms"],
    [1500, "1.5s"],
    [0, "0s"],
    [3_661_001, "1h1m1.001s"],
  ])("%p ms -> %p, which parses back to the same value", (value, text) => {
    expect(formatGoDuration(value)).toBe(text);
    expect(ms(text)).toBe(value);
  });
});
