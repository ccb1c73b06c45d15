// Fault suite: the mothership restarted in the middle of a run whose launcher talks HTTP long-poll
// (compiled binaries, real dockerd). The launcher's polls fail while the mothership is down, its
// uplink waits, its downlink mailbox is gone with the old process; once the mothership is back the
// launcher says hello again, resends what was not acknowledged, and the run FINISHES with every line
// stored exactly once, in order. (The same over MQTT: test/e2e/operator-workflow.test.ts.)
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { buildBinaries, DemoWorld, type Binaries } from "../../scripts/demo/world.ts";
import { dockerTestEnv } from "../support/env.ts";

setDefaultTimeout(180_000);
const docker = dockerTestEnv();

interface RunJson { id: string; state: string; reason: string | null }

const numbered = (n: number) => Array.from({ length: n }, (_, i) => `line ${i + 1}\n`).join("");

describe.skipIf(!docker)("mothership restarted mid-run, long-poll launcher", () => {
  let bin: Binaries;
  let world: DemoWorld;

  beforeAll(async () => {
    bin = buildBinaries(() => {});
    world = new DemoWorld(bin, docker!.host, () => {});
    await world.startMothership();
    await world.createPool("faults-poll-restart");
  });

  afterAll(async () => {
    await world?.close();
  });

  test("down 3 s mid-run: the run FINISHES, every line stored once and in order, the launcher never left", async () => {
    const launcher = world.startLauncher({ SPACELIFT_WORKER_COMMS_PROTOCOL: "poll" });
    await world.waitFor("worker registered", async () => ((await world.workers()).length === 1 ? true : null));
    const stack = await world.stack("poll-restart", docker!.image, ["plan=i=1; while [ $i -le 400 ]; do echo line $i; i=$((i+1)); sleep 0.02; done"]);
    const run = await world.trigger(stack);
    await world.waitFor("output", async () => (await world.runLogs(run)).includes("line 20\n"));
    await world.stopMothership();
    await Bun.sleep(3_000);
    await world.startMothership();
    expect(await world.runEnded<RunJson>(run, 90_000)).toMatchObject({ state: "FINISHED", reason: "ok" });
    const text = await world.waitFor("every line", async () => {
      const t = await world.runLogs(run);
      return t.includes("line 400\n") ? t : null;
    }, 60_000);
    expect(text).toBe(numbered(400));
    expect(launcher.proc.exitCode).toBeNull();
    // Registered again with the new process, and free for the next run.
    await world.waitFor("worker IDLE", async () => ((await world.workers<{ status: string }>())[0]?.status === "IDLE" ? true : null));
    await launcher.stop();
  });
});
