/**
 * Records build/launcher-bytecode-order.txt, the profile `bun build --bytecode-order` lays the launcher's
 * bytecode out by (hot functions first: fewer pages of the executable resident, see docs/performance.md).
 * Runs the x86_64 launcher as an operator does — start, register with a real mothership, one run in Docker,
 * stop — with BUN_BYTECODE_ORDER_OUT set, then rebuilds with the new profile. Needs the test environment's
 * Docker (DOCKER_HOST). A profile from an older build still applies; refresh it when start-up code changes.
 *   bun build/record-bytecode-order.ts
 */
import { copyFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { buildBinaries, DemoWorld, repoRoot } from "../scripts/demo/world.ts";

const image = process.env.TEST_BUSYBOX_IMAGE ?? "spacelift-test/busybox:latest";
const bin = buildBinaries(console.log);
const world = new DemoWorld(bin, process.env.DOCKER_HOST ?? "unix:///var/run/docker.sock", console.log);
const recorded = join(world.dir, "bytecode-order.txt");
try {
  await world.startMothership();
  await world.createPool("bytecode-order");
  const launcher = world.startLauncher({ BUN_BYTECODE_ORDER_OUT: recorded });
  await world.waitFor("the worker bundle", async () => launcher.log().includes('"worker bundle ready"'));
  const stack = await world.stack("order", image, ["hello=echo recording the hot functions"]);
  const run = await world.runEnded<{ state: string }>(await world.trigger(stack));
  if (run.state !== "FINISHED") throw new Error(`the run ended ${run.state}: ${JSON.stringify(run)}`);
  await launcher.stop();
  if (!existsSync(recorded)) throw new Error("the launcher wrote no profile (is it built with --bytecode?)");
  copyFileSync(recorded, join(repoRoot, "build", "launcher-bytecode-order.txt"));
  console.log("wrote build/launcher-bytecode-order.txt; rebuilding with it");
} finally {
  await world.close();
}
buildBinaries(console.log);
