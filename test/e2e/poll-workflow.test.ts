// End to end over HTTP long-poll with the compiled binaries, a real mothership process, a real
// launcher process (SPACELIFT_WORKER_COMMS_PROTOCOL=poll, so no broker connection) and the real
// dockerd: registration, a run that prints a secret (masked in the stored log) FINISHES, a SIGTERM
// leaves in order; a SIGKILLed launcher is declared lost by silence and its run FAILS launcher-crashed.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { createDockerClient } from "../../src/docker/client.ts";
import { LABEL_RUN } from "../../src/launcher/supervisor/labels.ts";
import { buildBinaries, DemoWorld, type Binaries } from "../../scripts/demo/world.ts";
import { dockerTestEnv } from "../support/env.ts";

setDefaultTimeout(120_000);
const docker = dockerTestEnv();

interface RunJson { id: string; state: string; reason: string | null; exit_code: number | null; worker: string | null }
interface WorkerJson { id: string; status: string; metadata: Record<string, string> }

const quiet = () => {};

describe.skipIf(!docker)("operator workflow over HTTP long-poll", () => {
  let bin: Binaries;
  let world: DemoWorld;

  beforeAll(async () => {
    bin = buildBinaries(quiet);
    world = new DemoWorld(bin, docker!.host, quiet);
    await world.startMothership();
    await world.createPool("e2e-poll");
  });

  afterAll(async () => {
    await world?.close();
  });

  const stack = (name: string, phases: string[], extra: string[] = []) => world.stack(name, docker!.image, phases, extra);
  const trigger = (s: string) => world.trigger(s);
  const logs = (run: string) => world.runLogs(run);
  const workers = () => world.workers<WorkerJson>();
  const ended = (run: string, timeoutMs = 60_000) => world.runEnded<RunJson>(run, timeoutMs);

  test("poll launcher -> worker IDLE -> run FINISHED with the secret masked -> SIGTERM, exit 0", async () => {
    const launcher = world.startLauncher({ SPACELIFT_WORKER_COMMS_PROTOCOL: "poll", SPACELIFT_METADATA_transport: "poll" });
    const [w] = await world.waitFor("worker registered", async () => ((await workers()).length === 1 ? await workers() : null));
    expect(w).toMatchObject({ status: "IDLE", metadata: { host: "demo-host", transport: "poll" } });
    expect(launcher.records().find((r) => r.msg === "comms")).toMatchObject({ protocol: "poll" });
    expect(launcher.records().some((r) => r.msg === "connected to the broker")).toBe(false);

    const s = await stack("poll-workflow", ["plan=echo planning with $SECRET_TOKEN", "apply=echo applying; echo done"], ["--secret", "SECRET_TOKEN=tok-poll-51d2"]);
    const run = await trigger(s);
    expect(await ended(run)).toMatchObject({ state: "FINISHED", reason: "ok", exit_code: 0, worker: w!.id });
    const text = await logs(run);
    expect(text).toContain("planning with *****\n");
    expect(text).toContain("applying\ndone\n");
    expect(text).not.toContain("tok-poll-51d2");
    expect((await workers())[0]?.status).toBe("IDLE");

    launcher.signal("SIGTERM");
    expect(await launcher.proc.exited).toBe(0);
    await world.waitFor("no live worker", async () => (await workers()).length === 0);
  });

  test("a poll launcher SIGKILLed mid-run: lost after 3 missed heartbeats, the run FAILS launcher-crashed", async () => {
    const launcher = world.startLauncher({ SPACELIFT_WORKER_COMMS_PROTOCOL: "poll" });
    await world.waitFor("worker registered", async () => ((await workers()).length === 1 ? true : null));
    const run = await trigger(await stack("poll-killed", ["plan=echo start; sleep 60"]));
    await world.waitFor("output", async () => (await logs(run)).includes("start\n"));
    launcher.signal("SIGKILL");
    await launcher.proc.exited;
    // --heartbeat 5: gone within 15 s of silence, plus a sweep.
    expect(await ended(run, 40_000)).toMatchObject({ state: "FAILED", reason: "launcher-crashed" });
    expect(await workers()).toHaveLength(0);
    // The next launcher on the same scratch dir removes the orphaned container and leaves in order.
    const client = createDockerClient({ host: docker!.host });
    try {
      expect(await client.containerList({ labels: { [LABEL_RUN]: run }, all: true })).toHaveLength(1);
      const next = world.startLauncher({ SPACELIFT_WORKER_COMMS_PROTOCOL: "poll" });
      await world.waitFor("worker registered", async () => ((await workers()).length === 1 ? true : null));
      await world.waitFor("orphan removed", async () => (await client.containerList({ labels: { [LABEL_RUN]: run }, all: true })).length === 0);
      await next.stop();
      await world.waitFor("no live worker", async () => (await workers()).length === 0);
    } finally {
      await client.close();
    }
  });
});
