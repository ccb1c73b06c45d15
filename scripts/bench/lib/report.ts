/**
 * The one row format of `make bench` (docs/performance.md): every benchmark reports its results as rows
 * `{name, value, unit, baseline, ratio, target, pass}` through `report()`, which prints the row and, under
 * `make bench` (scripts/bench.ts sets BENCH_ROWS_FILE), appends it as a JSON line for the report.
 *
 * A target bounds either the value (`max`/`min`, in the row's unit) or the ratio value/baseline
 * (`maxRatio`/`minRatio`); a row without one is informational and always passes.
 */
import { appendFileSync, readFileSync } from "node:fs";

export interface Row {
  name: string;
  value: number;
  unit: string;
  /** The same quantity measured for the baseline in the same run (null when there is none). */
  baseline: number | null;
  /** value / baseline, rounded to 3 decimals (null without a baseline). */
  ratio: number | null;
  /** Human form of the target, e.g. "<= 45 MB" or ">= 0.70x baseline" (null: informational). */
  target: string | null;
  pass: boolean;
  /** What the baseline is, and anything a reader needs to trust the number (medians, run counts). */
  note?: string;
}

export interface Target {
  max?: number;
  min?: number;
  maxRatio?: number;
  minRatio?: number;
}

export interface Measurement {
  name: string;
  value: number;
  unit: string;
  baseline?: number | null;
  target?: Target;
  note?: string;
}

const round = (x: number, digits = 3) => Math.round(x * 10 ** digits) / 10 ** digits;

/** The row for a measurement: ratio, target text and whether it passes (NaN never passes a target). */
export function toRow(m: Measurement): Row {
  const baseline = m.baseline ?? null;
  const ratio = baseline === null || baseline === 0 || !Number.isFinite(baseline) ? null : round(m.value / baseline);
  const t = m.target ?? {};
  const parts: string[] = [];
  let pass = true;
  if (t.max !== undefined) {
    parts.push(`<= ${t.max} ${m.unit}`);
    pass &&= m.value <= t.max;
  }
  if (t.min !== undefined) {
    parts.push(`>= ${t.min} ${m.unit}`);
    pass &&= m.value >= t.min;
  }
  if (t.maxRatio !== undefined) {
    parts.push(`<= ${t.maxRatio.toFixed(2)}x baseline`);
    pass &&= ratio !== null && ratio <= t.maxRatio;
  }
  if (t.minRatio !== undefined) {
    parts.push(`>= ${t.minRatio.toFixed(2)}x baseline`);
    pass &&= ratio !== null && ratio >= t.minRatio;
  }
  const value = round(m.value, 2);
  return { name: m.name, value, unit: m.unit, baseline: baseline === null ? null : round(baseline, 2), ratio, target: parts.length ? parts.join(", ") : null, pass: parts.length === 0 || (pass && Number.isFinite(m.value)), ...(m.note ? { note: m.note } : {}) };
}

/** Prints the row and records it for scripts/bench.ts; returns it. */
export function report(m: Measurement): Row {
  const row = toRow(m);
  const base = row.baseline === null ? "" : `baseline ${row.baseline} ${row.unit}${row.ratio === null ? "" : ` (${row.ratio}x)`}`;
  const verdict = row.target === null ? "" : `${row.pass ? "ok" : "MISSED"} target ${row.target}`;
  console.log(`${row.name.padEnd(46)} ${`${row.value} ${row.unit}`.padStart(14)}  ${base.padEnd(34)} ${verdict}${row.note ? `  [${row.note}]` : ""}`);
  const file = process.env.BENCH_ROWS_FILE;
  if (file) appendFileSync(file, JSON.stringify(row) + "\n");
  return row;
}

/** The rows appended to a BENCH_ROWS_FILE (one JSON object a line). */
export function readRows(file: string): Row[] {
  let text = "";
  try {
    text = readFileSync(file, "utf8");
  } catch {
    return [];
  }
  return text.split("\n").filter((l) => l.trim() !== "").map((l) => JSON.parse(l) as Row);
}

/** The report as Markdown: one table, the rows that missed their target listed after it. */
export function markdown(rows: Row[], meta: { date: string; commit: string; host: string; failedScripts: string[] }): string {
  const cell = (x: string) => x.replace(/\|/g, "\\|");
  const lines = [
    "# Benchmark report",
    "",
    `${meta.date}, commit ${meta.commit}, ${meta.host}. Timings are medians or best-of as each row's note says; targets and levers are in docs/performance.md.`,
    "",
    "| benchmark | value | baseline | ratio | target | result |",
    "|---|---:|---:|---:|---|---|",
    ...rows.map((r) =>
      `| ${cell(r.name)}${r.note ? ` <br><sub>${cell(r.note)}</sub>` : ""} | ${r.value} ${r.unit} | ${r.baseline === null ? "" : `${r.baseline} ${r.unit}`} | ${r.ratio === null ? "" : `${r.ratio}x`} | ${r.target ?? ""} | ${r.target === null ? "info" : r.pass ? "pass" : "**MISSED**"} |`,
    ),
    "",
  ];
  const missed = rows.filter((r) => !r.pass);
  if (missed.length) lines.push("## Missed targets", "", ...missed.map((r) => `- ${r.name}: ${r.value} ${r.unit}, target ${r.target}`), "");
  if (meta.failedScripts.length) lines.push("## Benchmarks that did not finish", "", ...meta.failedScripts.map((s) => `- ${s}`), "");
  return lines.join("\n");
}
