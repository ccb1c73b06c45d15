/**
 * `make test`: run `make check` (type checker and linter), build the binaries, bring up the test
 * environment (reusing a live one), run every test (unit + integration) with Bun's runner, tear down
 * what was started, and print `N passed, M failed`.
 *   bun scripts/test.ts [bun test args...]   (default: every test under test/)
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { withTestEnv } from "./testenv/index.ts";

const bun = process.execPath;
const log = (m: string) => console.error(`test: ${m}`);

// CI runs only `make test`: a type error or a floating promise must fail it like a failing test.
const check = spawnSync(bun, ["scripts/check.ts"], { stdio: "inherit" });
if (check.status !== 0) {
  log("`make check` failed (type errors or lint findings above); fix them, then run the tests again");
  console.error("0 passed, 1 failed");
  process.exit(check.status || 1);
}

const build = spawnSync(bun, ["build/build.ts"], { stdio: "inherit" });
if (build.status !== 0) process.exit(build.status ?? 1);

// Ctrl-C reaches the test runner too; stay alive long enough to stop what we started.
process.on("SIGINT", () => log("interrupted; cleaning up"));

const reportDir = mkdtempSync(join(tmpdir(), "slwp-junit-"));
const report = join(reportDir, "junit.xml");
let status: number;
try {
  status = await withTestEnv(log, async (env) => {
    const extra = process.argv.slice(2);
    // Integration tests start containers and brokers: a minute per test, not Bun's default 5 s.
    const r = spawnSync(bun, ["test", "--timeout=60000", "--reporter=junit", `--reporter-outfile=${report}`, ...(extra.length ? extra : ["test/"])], {
      stdio: "inherit",
      env: { ...process.env, ...env.vars },
    });
    return r.status ?? 1;
  });
} catch (err) {
  console.error(`test: the test environment could not be set up: ${(err as Error).message}`);
  console.error("0 passed, 1 failed");
  process.exit(1);
}

const summary = readSummary(report);
rmSync(reportDir, { recursive: true, force: true });
if (summary) {
  const skipped = summary.skipped > 0 ? `, ${summary.skipped} skipped` : "";
  console.log(`${summary.tests - summary.failures - summary.skipped} passed, ${summary.failures} failed${skipped}`);
  if (process.env.CI === "true" && summary.skipped > 0) {
    console.error("test: tests were skipped under CI=true; every test must run in CI");
    status = status || 1;
  }
} else if (status === 0) {
  console.error("test: the test runner wrote no report");
  status = 1;
}
process.exit(status);

function readSummary(file: string): { tests: number; failures: number; skipped: number } | undefined {
  try {
    const xml = readFileSync(file, "utf8");
    const root = /<testsuites\b[^>]*>/.exec(xml)?.[0] ?? "";
    const attr = (name: string) => Number(new RegExp(`\\b${name}="(\\d+)"`).exec(root)?.[1] ?? 0);
    return { tests: attr("tests"), failures: attr("failures") + attr("errors"), skipped: attr("skipped") };
  } catch {
    return undefined;
  }
}
