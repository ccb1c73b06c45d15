/**
 * `make bench`: every benchmark in scripts/bench/, each a separate Bun process, inside the test environment
 * (reused when live). Each reports rows through scripts/bench/lib/report.ts; this collects them into
 * dist/bench/report.json (the rows) and dist/bench/report.md, prints the rows that missed their target and
 * exits 1 when any did or a benchmark did not finish. Targets and what moves them: docs/performance.md.
 *   bun scripts/bench.ts [name...]   (e.g. docker-client)
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { markdown, readRows } from "./bench/lib/report.ts";
import { withTestEnv } from "./testenv/index.ts";

const root = join(import.meta.dir, "..");
const dir = join(import.meta.dir, "bench");
const out = join(root, "dist", "bench");
const rowsFile = join(out, "rows.jsonl");
const wanted = process.argv.slice(2);
const all = readdirSync(dir).filter((f) => f.endsWith(".ts") && !f.endsWith(".d.ts")).sort();
const selected = wanted.length ? all.filter((f) => wanted.includes(f.replace(/\.ts$/, ""))) : all;
if (selected.length === 0) {
  console.error(`no benchmark matches ${wanted.join(", ")}; available: ${all.map((f) => f.replace(/\.ts$/, "")).join(", ")}`);
  process.exit(2);
}

mkdirSync(out, { recursive: true });
rmSync(rowsFile, { force: true });
const failedScripts = await withTestEnv((m) => console.error(`bench: ${m}`), async (env) => {
  const bad: string[] = [];
  for (const file of selected) {
    console.log(`\n== ${file.replace(/\.ts$/, "")}`);
    const r = spawnSync(process.execPath, [join(dir, file)], { stdio: "inherit", env: { ...process.env, ...env.vars, BENCH_ROWS_FILE: rowsFile } });
    if (r.status !== 0) bad.push(file.replace(/\.ts$/, ""));
  }
  return bad;
});

const rows = readRows(rowsFile);
rmSync(rowsFile, { force: true });
const commit = spawnSync("git", ["rev-parse", "--short=12", "HEAD"], { cwd: root, encoding: "utf8" }).stdout.trim() || "unknown";
writeFileSync(join(out, "report.json"), JSON.stringify(rows, null, 2) + "\n");
writeFileSync(join(out, "report.md"), markdown(rows, { date: new Date().toISOString(), commit, host: `${hostname()}, ${process.arch}`, failedScripts }));
console.log(`\nwrote ${join(out, "report.json")} and report.md: ${rows.length} rows`);

const missed = rows.filter((r) => !r.pass);
for (const r of missed) console.error(`MISSED ${r.name}: ${r.value} ${r.unit}, target ${r.target}`);
if (failedScripts.length) console.error(`benchmarks that did not finish: ${failedScripts.join(", ")}`);
if (missed.length || failedScripts.length) process.exit(1);
console.log("every row met its target");
