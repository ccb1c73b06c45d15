// Fault suite: the mothership SIGKILLed in the middle of a run that prints a line about every
// millisecond, then started again on the same data dir (compiled binaries, real dockerd), over both
// carriers. Nothing is lost and nothing is doubled: every line is stored exactly once, in order, and
// the run FINISHES; the launcher never left.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { buildBinaries, DemoWorld, type Binaries } from "../../scripts/demo/world.ts";
import { dockerTestEnv } from "../support/env.ts";

setDefaultTimeout(240_000);
const docker = dockerTestEnv();

interface RunJson { id: string; state: string; reason: string | null }

const LINES = 4000;
const numbered = (n: number) => Array.from({ length: n }, (_, i) => `line ${i + 1}\n`).join("");
// busybox sh: one line, then a 1 ms pause.
const PRINT = `plan=i=1; while [ $i -le ${LINES} ]; do echo line $i; usleep 1000; i=$((i+1)); done`;

describe.skipIf(!docker)("mothership SIGKILLed mid-run", () => {
  let bin: Binaries;
  let world: DemoWorld;

  beforeAll(async () => {
    bin = buildBinaries(() => {});
    world = new DemoWorld(bin, docker!.host, () => {});
    await world.startMothership();
    await world.createPool("faults-mothership-sigkill");
  });

  afterAll(async () => {
    await world?.close();
  });

  for (const protocol of ["mqtt", "poll"] as const) {
    test(`${protocol}: a line every millisecond, the mothership killed and back after 2 s: every line stored once, in order, run FINISHED`, async () => {
      const launcher = world.startLauncher({ SPACELIFT_WORKER_COMMS_PROTOCOL: protocol });
      await world.waitFor("worker registered", async () => ((await world.workers()).length === 1 ? true : null));
      const stack = await world.stack(`sigkill-${protocol}`, docker!.image, [PRINT]);
      const run = await world.trigger(stack);
      await world.waitFor("output", async () => (await world.runLogs(run)).includes("line 300\n"));
      await world.killMothership();
      await Bun.sleep(2_000);
      await world.startMothership();
      expect(await world.runEnded<RunJson>(run, 120_000)).toMatchObject({ state: "FINISHED", reason: "ok" });
      const text = await world.waitFor("every line", async () => {
        const t = await world.runLogs(run);
        return t.includes(`line ${LINES}\n`) ? t : null;
      }, 90_000);
      expect(text).toBe(numbered(LINES));
      expect(launcher.proc.exitCode).toBeNull();
      await world.waitFor("worker IDLE", async () => ((await world.workers<{ status: string }>())[0]?.status === "IDLE" ? true : null));
      await launcher.stop();
      await world.waitFor("no live worker", async () => ((await world.workers()).length === 0 ? true : null));
    });
  }
});
