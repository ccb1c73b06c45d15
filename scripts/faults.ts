/**
 * `make faults`: the fault suite at full strength. The fuzzers of test/faults/ get 10,000 inputs per
 * parser (FAULT_ITERATIONS) and a fresh seed, printed first (FAULT_SEED=... replays a run exactly);
 * then the fault tests with real parts run: the spool out of space, the mothership restarted mid-run
 * (MQTT and long-poll), Mosquitto gone 10 s mid-run, a launcher SIGKILLed mid-run and started again.
 * `make test` runs test/faults/ too, with 2,000 inputs per parser and a fixed seed.
 *   bun scripts/faults.ts [bun test args...]   (default: everything above)
 */
import { spawnSync } from "node:child_process";
import { withTestEnv } from "./testenv/index.ts";

const bun = process.execPath;
const log = (m: string) => console.error(`faults: ${m}`);

/** The fault tests outside test/faults/ (they live beside the features they exercise). */
const WITH_REAL_PARTS = [
  "test/integration/agent/agent-faults.test.ts",
  "test/integration/carriers/mosquitto.test.ts",
  "test/integration/fleet/two-launchers.test.ts",
  "test/e2e/operator-workflow.test.ts",
  "test/e2e/poll-workflow.test.ts",
];

const seed = process.env.FAULT_SEED ?? String(Math.floor(Math.random() * 2 ** 31));
const iterations = process.env.FAULT_ITERATIONS ?? "10000";
log(`FAULT_SEED=${seed} FAULT_ITERATIONS=${iterations} (set FAULT_SEED to replay this run)`);

const build = spawnSync(bun, ["build/build.ts"], { stdio: "inherit" });
if (build.status !== 0) process.exit(build.status ?? 1);

const status = await withTestEnv(log, async (env) => {
  const extra = process.argv.slice(2);
  const r = spawnSync(bun, ["test", "--timeout=300000", ...(extra.length > 0 ? extra : ["test/faults/", ...WITH_REAL_PARTS])], {
    stdio: "inherit",
    env: { ...process.env, ...env.vars, FAULT_SEED: seed, FAULT_ITERATIONS: iterations },
  });
  return r.status ?? 1;
});
if (status !== 0) log(`failed; replay with FAULT_SEED=${seed} FAULT_ITERATIONS=${iterations} make faults`);
process.exit(status);
