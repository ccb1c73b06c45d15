// The worker as PID 1 in a fresh PID namespace (`unshare --pid --fork --mount-proc`, needs root):
// an orphaned grandchild that exits must not stay a zombie, and reaping must not steal the exit
// status of the worker's own commands. (The same in a real run container:
// test/integration/supervisor/run-isolation.test.ts.)
import { afterEach, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { hostCapability } from "../../support/env.ts";
import { type Sandbox, runSpec, runWorker, sandbox, startWorker, waitForFile, writeInstructions } from "./harness.ts";

const UNSHARE = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"];
// Skipped only outside CI; under CI=true a host that cannot do this fails the suite.
const canUnshare = hostCapability(
  `${UNSHARE.join(" ")} (root, util-linux)`,
  Bun.spawnSync([...UNSHARE, "true"], { stdout: "ignore", stderr: "ignore" }).exitCode === 0,
);

let box: Sandbox | undefined;
afterEach(() => box?.cleanup());

/**
 * Phase 1 leaves an orphan: the inner shell exits at once, its `sleep` is re-parented to PID 1
 * and exits 0.2 s later. Phase 2 watches that pid for up to 4 s and writes what it saw, then
 * exits 7 (whose status the worker must still report).
 */
function orphanRun(dir: string): Record<string, unknown> {
  const watch = [
    `p=$(cat ${dir}/zpid); i=0; s=`,
    "while [ $i -lt 40 ]; do",
    `  s=$(sed 's/.*) //' /proc/$p/stat 2>/dev/null | cut -d' ' -f1)`,
    `  if [ -z "$s" ]; then echo gone > ${dir}/result; exit 7; fi`,
    "  i=$((i+1)); sleep 0.1",
    "done",
    `echo "state=$s" > ${dir}/result; exit 7`,
  ].join("\n");
  return runSpec([
    { name: "planning", commands: [`echo "pid $$"; sh -c 'sleep 0.2 & echo $! > ${dir}/zpid'`] },
    { name: "applying", commands: [watch] },
  ]);
}

describe.skipIf(!canUnshare)("worker as PID 1", () => {
  test("reaps an orphaned zombie grandchild and keeps its own commands' exit status", async () => {
    box = sandbox();
    writeInstructions(box, orphanRun(box.dir));
    const result = await runWorker(box, { wrap: UNSHARE });
    expect(result.code).toBe(7);
    expect(readFileSync(join(box.dir, "result"), "utf8")).toBe("gone\n");
    // The commands really ran under a worker that is PID 1 (its child got pid 2 or so).
    expect(result.stdout).toMatch(/pid \d+\n/);
  });

  test("without reaping the orphan stays a zombie (the test above can fail)", async () => {
    box = sandbox();
    writeInstructions(box, orphanRun(box.dir));
    const result = await runWorker(box, { wrap: UNSHARE, args: ["--reap", "off"] });
    expect(result.code).toBe(7);
    expect(readFileSync(join(box.dir, "result"), "utf8")).toBe("state=Z\n");
  });

  test("forwards SIGTERM although PID 1 ignores unhandled signals", async () => {
    box = sandbox();
    const ready = join(box.dir, "ready");
    writeInstructions(box, runSpec([{ name: "planning", commands: [`trap 'exit 5' TERM; touch ${ready}; while :; do sleep 0.05; done`] }]));
    // unshare does not forward signals, so signal the namespace's PID 1 from outside by its host pid.
    const { proc, result: run } = startWorker(box, { wrap: UNSHARE });
    try {
      await waitForFile(ready);
      const worker = findWorkerPid(box.specPath);
      expect(worker).not.toBeNull();
      process.kill(worker as number, "SIGTERM");
    } finally {
      // Whatever failed above, leave nothing running (--kill-child takes the worker along).
      setTimeout(() => proc.kill("SIGKILL"), 10_000).unref();
    }
    const result = await run;
    expect(result.code).toBe(5);
  });
});

/** The host pid of the worker started with `--spec specPath` (the unshare'd child). */
function findWorkerPid(specPath: string): number | null {
  const r = Bun.spawnSync(["pgrep", "-f", "--", `--spec ${specPath}`], { stdout: "pipe" });
  const pids = r.stdout.toString().trim().split("\n").filter(Boolean).map(Number);
  for (const pid of pids) {
    const comm = readFileSync(`/proc/${pid}/comm`, "utf8").trim();
    if (comm !== "unshare") return pid;
  }
  return null;
}
