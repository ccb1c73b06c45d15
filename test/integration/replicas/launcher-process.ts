/**
 * A test launcher in a process of its own, so a test can SIGKILL it (no goodbye, no Last Will sent
 * cleanly, nothing flushed): the real agent and transport with the shell executor, as the carrier
 * tests use in process. The token comes in REPLICA_TEST_TOKEN (never argv); argv: key path, scratch
 * dir, `mqtt` or `poll`. Prints `{"worker": ID}` once it runs, then lives until killed or stopped.
 */
import { startAgent } from "../agent/harness.ts";
import { ShellExecutor } from "../agent/shell-executor.ts";

const [keyPath, scratch, protocol] = process.argv.slice(2);
const token = process.env.REPLICA_TEST_TOKEN;
if (!keyPath || !scratch || (protocol !== "mqtt" && protocol !== "poll") || !token) {
  console.error("usage: REPLICA_TEST_TOKEN=... bun launcher-process.ts KEY_PATH SCRATCH mqtt|poll");
  process.exit(2);
}
const a = await startAgent({ token, keyPath, scratch, executor: new ShellExecutor(), protocol });
console.log(JSON.stringify({ worker: a.worker }));
process.exit(await a.exit);
