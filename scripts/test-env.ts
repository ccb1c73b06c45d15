/**
 * Keeps a test environment running between test runs (for development):
 *   bun scripts/test-env.ts up     start (or reuse) dockerd + mosquitto + registry + postgres + images; prints
 *                                  the variables (a live environment missing only postgres gets one added)
 *   bun scripts/test-env.ts down   stop what `up` started
 * `make test` and the tests themselves reuse a live environment saved here.
 */
import { SHARED_STATE_DIR, addPostgresToSavedTestEnv, loadLiveTestEnv, loadSavedTestEnv, saveTestEnv, setUpTestEnv, tearDownTestEnv } from "./testenv/index.ts";

const log = (m: string) => console.error(`test-env: ${m}`);
const command = process.argv[2];

if (command === "up") {
  let env = (await loadLiveTestEnv(SHARED_STATE_DIR)) ?? (await addPostgresToSavedTestEnv(SHARED_STATE_DIR, log));
  if (!env) {
    // Partly dead: stop what the saved environment still has running before starting afresh.
    const stale = loadSavedTestEnv(SHARED_STATE_DIR);
    if (stale) await tearDownTestEnv(stale);
    env = await setUpTestEnv(SHARED_STATE_DIR, log);
  }
  saveTestEnv(env);
  for (const [k, v] of Object.entries(env.vars)) console.log(`export ${k}='${v}'`);
} else if (command === "down") {
  const env = loadSavedTestEnv(SHARED_STATE_DIR);
  if (env) await tearDownTestEnv(env);
  else log("no live environment");
} else {
  console.error("usage: bun scripts/test-env.ts up|down");
  process.exit(2);
}
