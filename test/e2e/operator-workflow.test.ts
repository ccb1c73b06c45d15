// End to end with the compiled binaries, a real mothership process, real launcher processes and the
// real dockerd: the documented operator workflow; a run printing 20 MB; a launcher SIGKILLed mid-run (restart: no orphan
// container, run reported failed by the new launcher); the broker restarted mid-run (no log line lost
// or duplicated); SIGTERM during a run (the run finishes, exit 0); two SIGTERMs (the run is cancelled,
// exit 0); three (out at once, the next start removes the container); a spot notice on an idle
// launcher (exit at once) and during a run (the run finishes first).
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createDockerClient } from "../../src/docker/client.ts";
import { LABEL_RUN } from "../../src/launcher/supervisor/labels.ts";
import { buildBinaries, DemoWorld, type Binaries, type LauncherProcess } from "../../scripts/demo/world.ts";
import { startImds } from "../integration/agent/fake-imds.ts";
import { dockerTestEnv } from "../support/env.ts";

setDefaultTimeout(120_000);
const docker = dockerTestEnv();

interface RunJson { id: string; state: string; reason: string | null; exit_code: number | null; worker: string | null }
interface WorkerJson { id: string; status: string; metadata: Record<string, string>; arch: string }

const quiet = () => {};
const numbered = (n: number) => Array.from({ length: n }, (_, i) => `line ${i + 1}\n`).join("");
const signalsSeen = (l: LauncherProcess) => l.records().filter((r) => r.msg === "signal received").length;
const counting = (n: number, pause: string) => `i=1; while [ $i -le ${n} ]; do echo line $i; i=$((i+1)); sleep ${pause}; done`;

describe.skipIf(!docker)("operator workflow with the compiled binaries", () => {
  let bin: Binaries;
  let world: DemoWorld;

  beforeAll(async () => {
    bin = buildBinaries(quiet);
    world = new DemoWorld(bin, docker!.host, quiet);
    await world.startMothership();
    await world.createPool("e2e");
  });

  afterAll(async () => {
    await world?.close();
  });

  const stack = (name: string, phases: string[], extra: string[] = []) => world.stack(name, docker!.image, phases, extra);
  const trigger = (s: string) => world.trigger(s);
  const show = (run: string) => world.showRun<RunJson>(run);
  const logs = (run: string) => world.runLogs(run);
  const workers = () => world.workers<WorkerJson>();
  const ended = (run: string, timeoutMs = 60_000) => world.runEnded<RunJson>(run, timeoutMs);
  const registered = async (count: number) => world.waitFor("worker registered", async () => ((await workers()).length === count ? await workers() : null));

  test("openssl CSR -> pool -> token -> launcher -> worker IDLE with metadata -> run FINISHED, secret masked in the stored logs, never in the clear in the database", async () => {
    const launcher = world.startLauncher({ SPACELIFT_METADATA_instance_id: "i-0e2e" });
    const [w] = await registered(1);
    expect(w).toMatchObject({ status: "IDLE", metadata: { host: "demo-host", instance_id: "i-0e2e" }, arch: process.arch === "arm64" ? "aarch64" : "x86_64" });
    const s = await stack("workflow", ["plan=echo planning with $SECRET_TOKEN", "apply=echo applying; echo done"], ["--secret-file", `SECRET_TOKEN=${world.privateFile("secret-token", "tok-e2e-8c1f\n")}`]);
    const run = await trigger(s);
    expect(await ended(run)).toMatchObject({ state: "FINISHED", reason: "ok", exit_code: 0, worker: w!.id });
    const text = await logs(run);
    expect(text).toContain("planning with *****\n");
    expect(text).toContain("applying\ndone\n");
    expect(text).not.toContain("tok-e2e-8c1f");
    // The run got the value (masked above), while the database and the mothership's output hold it only sealed.
    expect(world.secretLeaks("tok-e2e-8c1f")).toEqual([]);
    expect((await workers())[0]?.status).toBe("IDLE");

    // SIGTERM during a run: it finishes, the launcher says goodbye and exits 0.
    const long = await trigger(await stack("sigterm", ["plan=echo start; sleep 2; echo end"]));
    await world.waitFor("RUNNING", async () => (await show(long)).state === "RUNNING");
    launcher.signal("SIGTERM");
    expect(await launcher.proc.exited).toBe(0);
    expect(await show(long)).toMatchObject({ state: "FINISHED", reason: "ok" });
    expect(await logs(long)).toBe("start\nend\n");
    await world.waitFor("no live worker", async () => (await workers()).length === 0);
  });

  test("a run that prints 20 MB: it FINISHES and every byte is in the store, in order", async () => {
    const launcher = world.startLauncher();
    await registered(1);
    const line = "e2e large log line 0123456789abcdefghijklmnopqrstuvwxyz";
    const run = await trigger(await stack("large", [`plan=yes '${line}' | head -c ${20 * 1024 * 1024}; echo; echo end-of-output`]));
    expect(await ended(run)).toMatchObject({ state: "FINISHED", reason: "ok", exit_code: 0 });
    const text = await logs(run);
    const lines = text.split("\n");
    expect(lines.slice(-3)).toEqual([expect.stringMatching(/^e2e large/), "end-of-output", ""]);
    expect(text.length).toBe(20 * 1024 * 1024 + "\nend-of-output\n".length);
    expect(new Set(lines.slice(0, -4))).toEqual(new Set([line]));
    launcher.signal("SIGTERM");
    expect(await launcher.proc.exited).toBe(0);
    await world.waitFor("no live worker", async () => (await workers()).length === 0);
  });

  test("launcher SIGKILLed mid-run: the run FAILS launcher-crashed; the next launcher removes the orphan container and reports its run", async () => {
    const first = world.startLauncher();
    await registered(1);
    const run = await trigger(await stack("killed", [`plan=${counting(600, "0.05")}`]));
    await world.waitFor("output", async () => (await logs(run)).includes("line 5\n"));
    first.signal("SIGKILL");
    await first.proc.exited;
    expect(await ended(run, 20_000)).toMatchObject({ state: "FAILED", reason: "launcher-crashed" });
    const client = createDockerClient({ host: docker!.host });
    try {
      expect(await client.containerList({ labels: { [LABEL_RUN]: run }, all: true })).toHaveLength(1);
      const second = world.startLauncher();
      await registered(1);
      await world.waitFor("orphan removed", async () => (await client.containerList({ labels: { [LABEL_RUN]: run }, all: true })).length === 0);
      // The new launcher itself found the container, removed it and reported the run (not only the
      // mothership acting on the dead one's Last Will).
      await world.waitFor("the orphan reported", async () => second.records().some((r) => r.msg === "run of a launcher that is gone reported as crashed" && r.run === run));
      expect(second.records().some((r) => r.msg === "removed an orphaned run container" && r.run === run)).toBe(true);
      expect((await show(run)).state).toBe("FAILED");
      // Everything the dead launcher spooled reached the store once, in order.
      const stored = await logs(run);
      expect(stored).toContain("line 5\n");
      expect(numbered(600).startsWith(stored)).toBe(true);
      await second.stop();
      await world.waitFor("no live worker", async () => (await workers()).length === 0);
    } finally {
      await client.close();
    }
  });

  test("broker restarted mid-run: the run FINISHES and every line is stored exactly once", async () => {
    const launcher = world.startLauncher();
    await registered(1);
    const run = await trigger(await stack("broker-restart", [`plan=${counting(300, "0.02")}`]));
    await world.waitFor("output", async () => (await logs(run)).includes("line 30\n"));
    await world.stopMothership();
    await Bun.sleep(2_000);
    await world.startMothership();
    expect(await ended(run)).toMatchObject({ state: "FINISHED", reason: "ok" });
    const text = await world.waitFor("every line", async () => {
      const t = await logs(run);
      return t.includes("line 300\n") ? t : null;
    });
    expect(text).toBe(numbered(300));
    await launcher.stop();
    await world.waitFor("no live worker", async () => (await workers()).length === 0);
  });

  test("two SIGTERMs mid-run: the run is CANCELED, the launcher exits 0", async () => {
    const launcher = world.startLauncher();
    await registered(1);
    const run = await trigger(await stack("two-sigterms", ["plan=echo start; sleep 30; echo end"]));
    await world.waitFor("output", async () => (await logs(run)).includes("start\n"));
    launcher.signal("SIGTERM");
    await world.waitFor("the first signal", async () => signalsSeen(launcher) === 1);
    launcher.signal("SIGTERM");
    expect(await launcher.proc.exited).toBe(0);
    expect(await ended(run, 20_000)).toMatchObject({ state: "CANCELED", reason: "cancelled" });
    const text = await logs(run);
    expect(text).toStartWith("start\n");
    expect(text).toContain("[spacelift-launcher] the launcher is stopping: the run was cancelled\n");
    expect(text).not.toContain("end\n");
    await world.waitFor("no live worker", async () => (await workers()).length === 0);
  });

  test("three SIGTERMs mid-run: the launcher exits at once, non-zero; the next start removes the container and reports the run", async () => {
    const first = world.startLauncher();
    await registered(1);
    // The command ignores SIGTERM, so the container outlives the stop the second signal begins.
    const run = await trigger(await stack("three-sigterms", ["plan=trap '' TERM; echo start; sleep 30; echo end"]));
    await world.waitFor("output", async () => (await logs(run)).includes("start\n"));
    for (let n = 1; n <= 3; n++) {
      first.signal("SIGTERM");
      await world.waitFor(`signal ${n}`, async () => signalsSeen(first) === n || first.proc.exitCode !== null);
    }
    const signalled = performance.now();
    expect(await first.proc.exited).not.toBe(0);
    expect(performance.now() - signalled).toBeLessThan(3_000);
    expect(first.records().some((r) => r.msg === "third stop signal: exiting at once")).toBe(true);
    const client = createDockerClient({ host: docker!.host });
    try {
      expect(await client.containerList({ labels: { [LABEL_RUN]: run }, all: true })).toHaveLength(1);
      const second = world.startLauncher();
      await world.waitFor("container removed", async () => (await client.containerList({ labels: { [LABEL_RUN]: run }, all: true })).length === 0);
      await world.waitFor("the orphan reported", async () => second.records().some((r) => r.msg === "run of a launcher that is gone reported as crashed" && r.run === run));
      expect(await ended(run, 20_000)).toMatchObject({ state: "FAILED", reason: "launcher-crashed" });
      expect(await logs(run)).not.toContain("end\n");
      await second.stop();
      await world.waitFor("no live worker", async () => (await workers()).length === 0);
    } finally {
      await client.close();
    }
  });

  test("spot interruption notice during a run: the run FINISHES with its whole log, then the launcher leaves, exit 0", async () => {
    const imds = startImds();
    // The run waits at a gate the test opens once the launcher has taken the notice (polled every 5 s).
    const gate = join(world.dir, "spot-gate");
    mkdirSync(gate, { recursive: true });
    try {
      const launcher = world.startLauncher({ SPACELIFT_INSTANCE_METADATA_ENDPOINT: imds.url, SPACELIFT_WORKER_EXTRA_MOUNTS: `${gate}:/mnt/gate:ro` });
      await registered(1);
      const run = await trigger(await stack("spot-drain", ["plan=echo start; until [ -e /mnt/gate/open ]; do sleep 0.1; done; sleep 1; echo end"]));
      await world.waitFor("RUNNING", async () => (await show(run)).state === "RUNNING");
      imds.announce();
      await imds.served;
      await world.waitFor("the notice taken", async () => launcher.records().some((r) => r.msg === "spot interruption notice: draining"));
      // Draining, not gone: the run is still going.
      expect(launcher.proc.exitCode).toBeNull();
      expect((await show(run)).state).toBe("RUNNING");
      writeFileSync(join(gate, "open"), "");
      expect(await launcher.proc.exited).toBe(0);
      expect(await show(run)).toMatchObject({ state: "FINISHED", reason: "ok", exit_code: 0 });
      expect(await logs(run)).toBe("start\nend\n");
      await world.waitFor("no live worker", async () => (await workers()).length === 0);
    } finally {
      imds.stop();
    }
  });

  test("spot interruption notice (IMDSv2 on loopback): an idle launcher leaves at once, exit 0", async () => {
    const imds = startImds();
    try {
      const launcher = world.startLauncher({ SPACELIFT_INSTANCE_METADATA_ENDPOINT: imds.url });
      await registered(1);
      imds.announce();
      expect(await launcher.proc.exited).toBe(0);
      expect(launcher.log()).toContain("spot interruption notice");
      await world.waitFor("no live worker", async () => (await workers()).length === 0);
    } finally {
      imds.stop();
    }
  });
});
