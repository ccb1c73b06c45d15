// Several launchers of one pool on one Docker daemon, with the compiled binaries, a real mothership and
// the real dockerd, each launcher on its own scratch dir: a third one on an occupied scratch dir is
// refused at start; one launcher SIGKILLed mid-run and started again removes exactly its own orphan
// (its run FAILS launcher-crashed) while the other launcher's long run goes on and FINISHES.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createDockerClient } from "../../../src/docker/client.ts";
import type { DockerClient } from "../../../src/docker/types.ts";
import { LABEL_LAUNCHER, LABEL_RUN } from "../../../src/launcher/supervisor/labels.ts";
import { LAUNCHER_ID_FILE } from "../../../src/launcher/supervisor/launcher-identity.ts";
import { buildBinaries, DemoWorld, type LauncherProcess } from "../../../scripts/demo/world.ts";
import { dockerTestEnv } from "../../support/env.ts";

setDefaultTimeout(180_000);
const docker = dockerTestEnv();

interface RunJson { id: string; state: string; reason: string | null; exit_code: number | null; worker: string | null }
interface WorkerJson { id: string; status: string }

const quiet = () => {};
const started = (l: LauncherProcess) => l.records().find((r) => r.msg === "launcher starting") as { worker?: string; launcher?: string } | undefined;

describe.skipIf(!docker)("two launchers of one pool on one Docker daemon", () => {
  let world: DemoWorld;
  let client: DockerClient;

  beforeAll(async () => {
    world = new DemoWorld(buildBinaries(quiet), docker!.host, quiet);
    client = createDockerClient({ host: docker!.host });
    await world.startMothership();
    await world.createPool("fleet");
  });

  afterAll(async () => {
    await client?.close();
    await world?.close();
  });

  const containersOf = async (run: string) => client.containerList({ labels: { [LABEL_RUN]: run }, all: true });
  const workers = () => world.workers<WorkerJson>();
  const show = (run: string) => world.showRun<RunJson>(run);

  test("restarting one after a SIGKILL removes its own orphan only; the other's run finishes", async () => {
    const scratch = { a: join(world.dir, "scratch-a"), b: join(world.dir, "scratch-b") };
    const a = world.startLauncher({ SPACELIFT_LAUNCHER_SCRATCH_DIR: scratch.a });
    const b = world.startLauncher({ SPACELIFT_LAUNCHER_SCRATCH_DIR: scratch.b });
    await world.waitFor("two workers", async () => (await workers()).length === 2);

    // A third launcher on A's scratch dir is a configuration error, said at start.
    const third = world.startLauncher({ SPACELIFT_LAUNCHER_SCRATCH_DIR: scratch.a });
    expect(await third.proc.exited).toBe(1);
    expect(third.log()).toContain(`another launcher (pid ${a.pid}) is using the scratch dir ${scratch.a}; several launchers on one host need one SPACELIFT_LAUNCHER_SCRATCH_DIR each`);
    expect((await workers()).length).toBe(2);

    // The long run goes to one of them (x); the other (y) then gets the run it will be killed in.
    const long = await world.trigger(await world.stack("long", docker!.image, ["plan=echo start; sleep 25; echo end"]));
    const longWorker = await world.waitFor("long run RUNNING", async () => {
      const r = await show(long);
      return r.state === "RUNNING" && r.worker !== null ? r.worker : null;
    });
    const [x, y, yScratch] = started(a)?.worker === longWorker ? [a, b, scratch.b] : [b, a, scratch.a];
    expect(started(x)?.worker).toBe(longWorker);
    const doomed = await world.trigger(await world.stack("doomed", docker!.image, ["plan=echo waiting; sleep 120"]));
    await world.waitFor("doomed output", async () => (await world.runLogs(doomed)).includes("waiting\n"));
    expect((await show(doomed)).worker).toBe(started(y)!.worker!);

    // Each container carries its launcher's identity, the one in that launcher's scratch dir.
    const yIdentity = readFileSync(join(yScratch, LAUNCHER_ID_FILE), "utf8").trim();
    expect((await containersOf(doomed))[0]?.labels[LABEL_LAUNCHER]).toBe(yIdentity);
    expect((await containersOf(long))[0]?.labels[LABEL_LAUNCHER]).toBe(started(x)!.launcher!);
    expect(started(x)!.launcher).not.toBe(yIdentity);

    y.signal("SIGKILL");
    await y.proc.exited;
    expect(await containersOf(doomed)).toHaveLength(1);
    const again = world.startLauncher({ SPACELIFT_LAUNCHER_SCRATCH_DIR: yScratch });
    await world.waitFor("the orphan removed and reported", async () =>
      again.records().some((r) => r.msg === "run of a launcher that is gone reported as crashed" && r.run === doomed) && (await containersOf(doomed)).length === 0);
    // Same identity after the restart; only its own container was removed.
    expect(started(again)?.launcher).toBe(yIdentity);
    const removed = again.records().filter((r) => r.msg === "removed an orphaned run container").map((r) => r.run);
    expect(removed).toEqual([doomed]);
    expect(await world.runEnded<RunJson>(doomed, 30_000)).toMatchObject({ state: "FAILED", reason: "launcher-crashed" });

    // The sibling's run was never touched: still running now, and it finishes with all its output.
    expect(await containersOf(long)).toHaveLength(1);
    expect((await show(long)).state).toBe("RUNNING");
    expect(await world.runEnded<RunJson>(long, 60_000)).toMatchObject({ state: "FINISHED", reason: "ok", exit_code: 0, worker: longWorker });
    expect(await world.runLogs(long)).toBe("start\nend\n");
    expect(x.proc.exitCode).toBeNull();

    await x.stop();
    await again.stop();
    await world.waitFor("no live worker", async () => (await workers()).length === 0);
  });
});
