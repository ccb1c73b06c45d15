// The benchmark report's one row format (scripts/bench/lib/report.ts): targets on values and on ratios,
// rows without a target, NaN, and the Markdown that lists what missed.
import { describe, expect, test } from "bun:test";
import { markdown, toRow } from "../../../scripts/bench/lib/report.ts";

describe("bench report rows", () => {
  test("a value target passes at the bound and fails past it", () => {
    expect(toRow({ name: "idle", value: 45, unit: "MB", target: { max: 45 } })).toMatchObject({ pass: true, target: "<= 45 MB", baseline: null, ratio: null });
    expect(toRow({ name: "idle", value: 45.01, unit: "MB", target: { max: 45 } }).pass).toBe(false);
    expect(toRow({ name: "rate", value: 9, unit: "MB/s", target: { min: 10 } }).pass).toBe(false);
  });

  test("a ratio target is checked against value/baseline, and fails without a baseline", () => {
    const row = toRow({ name: "log path", value: 7, unit: "MB/s", baseline: 10, target: { minRatio: 0.7 } });
    expect(row).toMatchObject({ ratio: 0.7, pass: true, target: ">= 0.70x baseline" });
    expect(toRow({ name: "log path", value: 6.9, unit: "MB/s", baseline: 10, target: { minRatio: 0.7 } }).pass).toBe(false);
    expect(toRow({ name: "first line", value: 700, unit: "ms", baseline: 200, target: { maxRatio: 3 } }).pass).toBe(false);
    expect(toRow({ name: "no baseline", value: 1, unit: "ms", target: { maxRatio: 3 } }).pass).toBe(false);
  });

  test("a row without a target is information and passes; NaN never meets a target", () => {
    expect(toRow({ name: "info", value: NaN, unit: "MB" })).toMatchObject({ target: null, pass: true });
    expect(toRow({ name: "broken", value: NaN, unit: "MB", target: { max: 45 } }).pass).toBe(false);
  });

  test("the Markdown has one table row per row and lists the missed ones and unfinished benchmarks", () => {
    const rows = [
      toRow({ name: "launcher RSS idle", value: 64.9, unit: "MB", baseline: 25, target: { max: 45 }, note: "a | pipe" }),
      toRow({ name: "policy p50", value: 40, unit: "µs", target: { max: 1000 } }),
    ];
    const md = markdown(rows, { date: "d", commit: "c", host: "h", failedScripts: ["dispatch"] });
    expect(md).toContain("| launcher RSS idle <br><sub>a \\| pipe</sub> | 64.9 MB | 25 MB | 2.596x | <= 45 MB | **MISSED** |");
    expect(md).toContain("| policy p50 | 40 µs |  |  | <= 1000 µs | pass |");
    expect(md).toContain("## Missed targets\n\n- launcher RSS idle: 64.9 MB, target <= 45 MB");
    expect(md).toContain("## Benchmarks that did not finish\n\n- dispatch");
  });
});
