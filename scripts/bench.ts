/**
 * `make bench`: every benchmark in scripts/bench/, each a separate Bun process, inside the test environment
 * (reused when live). Benchmarks print ratios against a baseline measured in the same run.
 *   bun scripts/bench.ts [name...]   (e.g. docker-client)
 */
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { withTestEnv } from "./testenv/index.ts";

const dir = join(import.meta.dir, "bench");
const wanted = process.argv.slice(2);
const all = readdirSync(dir).filter((f) => f.endsWith(".ts") && !f.endsWith(".d.ts")).sort();
const selected = wanted.length ? all.filter((f) => wanted.includes(f.replace(/\.ts$/, ""))) : all;
if (selected.length === 0) {
  console.error(`no benchmark matches ${wanted.join(", ")}; available: ${all.map((f) => f.replace(/\.ts$/, "")).join(", ")}`);
  process.exit(2);
}

const failed = await withTestEnv((m) => console.error(`bench: ${m}`), async (env) => {
  const bad: string[] = [];
  for (const file of selected) {
    console.log(`\n== ${file.replace(/\.ts$/, "")}`);
    const r = spawnSync(process.execPath, [join(dir, file)], { stdio: "inherit", env: { ...process.env, ...env.vars } });
    if (r.status !== 0) bad.push(file);
  }
  return bad;
});
if (failed.length) {
  console.error(`benchmarks failed: ${failed.join(", ")}`);
  process.exit(1);
}
