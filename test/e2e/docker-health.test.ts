// A launcher whose Docker goes away, with the compiled binaries, a real mothership and the real dockerd
// behind a relay the test stops and starts (the shared test dockerd itself is never touched): the
// worker stops taking runs and `worker list` says why, runs queued meanwhile go to the healthy worker
// of the same pool, and it takes runs again once Docker answers. Docker cut mid-run: that run FAILS
// system-error with a log naming Docker, the launcher keeps serving, the next run FINISHES.
// Drain and undrain by tag pick the workers each step needs.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { join } from "node:path";
import { createDockerClient } from "../../src/docker/client.ts";
import type { DockerClient } from "../../src/docker/types.ts";
import { LABEL_RUN } from "../../src/launcher/supervisor/labels.ts";
import { buildBinaries, DemoWorld, type LauncherProcess } from "../../scripts/demo/world.ts";
import { DockerRelay } from "../support/docker-relay.ts";
import { dockerTestEnv } from "../support/env.ts";

setDefaultTimeout(180_000);
const docker = dockerTestEnv();

interface RunJson { id: string; state: string; reason: string | null; worker: string | null }
interface WorkerJson { id: string; status: string; problem: string | null; docker: { ok: boolean; message: string }; metadata: Record<string, string> }

const quiet = () => {};

describe.skipIf(!docker)("a launcher whose Docker goes away and comes back", () => {
  let world: DemoWorld;
  let relay: DockerRelay;
  let client: DockerClient;
  let viaRelay: LauncherProcess;
  const ids = { relay: "", direct: "" };

  beforeAll(async () => {
    world = new DemoWorld(buildBinaries(quiet), docker!.host, quiet);
    client = createDockerClient({ host: docker!.host });
    await world.startMothership();
    await world.createPool("docker-health");
    relay = new DockerRelay(join(world.dir, "relay.sock"), docker!.host);
    await relay.start();
    viaRelay = world.startLauncher({ DOCKER_HOST: relay.dockerHost, SPACELIFT_LAUNCHER_SCRATCH_DIR: join(world.dir, "scratch-relay"), SPACELIFT_METADATA_docker: "relay" });
    world.startLauncher({ SPACELIFT_LAUNCHER_SCRATCH_DIR: join(world.dir, "scratch-direct"), SPACELIFT_METADATA_docker: "direct" });
    const both = await world.waitFor("two workers", async () => {
      const w = await workers();
      return w.length === 2 && w.every((x) => x.problem === null) ? w : null;
    });
    ids.relay = both.find((w) => w.metadata.docker === "relay")!.id;
    ids.direct = both.find((w) => w.metadata.docker === "direct")!.id;
  });

  afterAll(async () => {
    await world?.close();
    await relay?.stop();
    await client?.close();
  });

  const workers = () => world.workers<WorkerJson>();
  const worker = async (id: string) => (await workers()).find((w) => w.id === id);
  const ended = (run: string) => world.runEnded<RunJson>(run, 90_000);
  const stack = (name: string, phases: string[]) => world.stack(name, docker!.image, phases);
  const drainDirect = async (action: "drain" | "undrain") => world.cliOk(["worker", action, "--pool", world.pool, "--tag", "docker=direct"]);
  const unreachable = (id: string) =>
    world.waitFor(`worker ${id} to report Docker unreachable`, async () => {
      const w = await worker(id);
      return w?.problem?.startsWith("docker unreachable: ") ? w : null;
    }, 30_000);
  const answering = (id: string) => world.waitFor(`worker ${id} to report Docker back`, async () => (await worker(id))?.problem === null, 30_000);

  test("Docker gone: no runs for that worker, the list says why, queued runs go to the healthy one; Docker back: it takes runs again", async () => {
    await relay.stop();
    const sick = await unreachable(ids.relay);
    expect(sick.docker.ok).toBe(false);
    expect(sick.problem).toContain(`cannot reach Docker at ${relay.dockerHost}`);
    // The table operators read names the reason too.
    const table = await world.cliOk(["worker", "list", "--pool", world.pool]);
    expect(table.split("\n")[0]).toContain("PROBLEM");
    expect(table.split("\n").find((l) => l.startsWith(ids.relay))).toContain("docker unreachable: ");
    expect(viaRelay.records().some((r) => r.msg === "Docker does not answer; taking no runs until it does")).toBe(true);

    const s = await stack("while-down", ["plan=echo ran on a healthy worker"]);
    const runs = [await world.trigger(s), await world.trigger(s), await world.trigger(s)];
    for (const run of runs) expect(await ended(run)).toMatchObject({ state: "FINISHED", worker: ids.direct });
    expect((await worker(ids.relay))?.problem).toStartWith("docker unreachable: ");

    await relay.start();
    await answering(ids.relay);
    expect(await drainDirect("drain")).toContain(`drained 1 worker(s) of pool ${world.pool} with docker=direct`);
    try {
      const run = await world.trigger(s);
      expect(await ended(run)).toMatchObject({ state: "FINISHED", reason: "ok", worker: ids.relay });
      expect(await world.runLogs(run)).toBe("ran on a healthy worker\n");
    } finally {
      expect(await drainDirect("undrain")).toContain("undrained 1 worker(s)");
    }
  });

  test("Docker cut mid-run: the run FAILS system-error naming Docker, the launcher keeps serving, the next run FINISHES", async () => {
    await drainDirect("drain");
    let killed = "";
    try {
      const s = await stack("mid-run", ["plan=echo start; sleep 4; echo end"]);
      killed = await world.trigger(s);
      await world.waitFor("the run's output", async () => (await world.runLogs(killed)).includes("start\n"), 60_000);
      expect((await world.showRun<RunJson>(killed)).worker).toBe(ids.relay);
      await relay.stop();
      expect(await ended(killed)).toMatchObject({ state: "FAILED", reason: "system-error", worker: ids.relay });
      // The first line after the run's own output says what ended it, naming Docker (not only the teardown after it).
      const lines = (await world.runLogs(killed)).split("\n");
      expect(lines[0]).toBe("start");
      expect(lines[1]).toMatch(/^\[spacelift-launcher\] .*Docker (closed the connection|at )/);
      // The launcher is still there, knows Docker is gone, and says so.
      expect(viaRelay.proc.exitCode).toBeNull();
      await unreachable(ids.relay);

      await relay.start();
      await answering(ids.relay);
      const next = await world.trigger(await stack("after", ["plan=echo Docker is back"]));
      expect(await ended(next)).toMatchObject({ state: "FINISHED", reason: "ok", worker: ids.relay });
      expect(await world.runLogs(next)).toBe("Docker is back\n");
      expect(viaRelay.proc.exitCode).toBeNull();
    } finally {
      await drainDirect("undrain");
      // The container of the cut run could not be removed while Docker was gone: the test removes it.
      if (killed) for (const c of await client.containerList({ labels: { [LABEL_RUN]: killed }, all: true })) await client.containerRemove(c.id, { force: true });
    }
  });
});
