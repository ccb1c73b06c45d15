// Stopping a run on the real Docker Engine: the logs timeout, the wall-clock timeout and cancel all go
// through SIGTERM (forwarded by the worker to the command), grace, SIGKILL, and leave nothing behind.
import { beforeAll, describe, expect, test } from "bun:test";
import type { DockerClient } from "../../../src/docker/types.ts";
import type { RunSupervisor } from "../../../src/launcher/supervisor/run-supervisor.ts";
import { dockerTestEnv } from "../../support/env.ts";
import {
  RecordingSink, dockerClient, ensureLauncherBuilt, scratch, spec, supervisor, testConfig,
  type Scratch, expectCleanTeardown } from "./harness.ts";

const env = dockerTestEnv();
const never = new AbortController().signal;

describe.skipIf(env === undefined)("run supervisor: timeouts and cancel", () => {
  const docker = env ? dockerClient(env) : (undefined as unknown as DockerClient);
  let dir: Scratch;
  let sup: RunSupervisor;

  beforeAll(async () => {
    ensureLauncherBuilt();
    dir = scratch();
    // The launcher's limits are long; each run shortens them through its own spec.
    sup = supervisor(env!, testConfig(env!, dir.dir, { SPACELIFT_LAUNCHER_LOGS_TIMEOUT: "1m", SPACELIFT_LAUNCHER_RUN_TIMEOUT: "5m" }));
    await sup.ready();
  }, 120_000);

  expectCleanTeardown(docker, () => dir);

  test("no output for the logs timeout stops the run: timeout-logs, the command got SIGTERM", async () => {
    const sink = new RecordingSink();
    const run = spec(env!.image, [{ name: "planning", commands: ["echo started; trap 'echo got-term; exit 143' TERM; sleep 30 & wait"] }], {
      timeouts: { logs_ms: 1000 },
    });
    const started = performance.now();
    const result = await sup.execute(run, sink, never);
    expect(performance.now() - started).toBeLessThan(10_000);
    expect(result.reason).toBe("timeout-logs");
    expect(result.exitCode).toBe(143);
    expect(result.messages).toEqual(["the run printed nothing for 1s (logs timeout); stopping it"]);
    const text = sink.text();
    expect(text).toContain("started\n");
    expect(text).toContain("[spacelift-launcher] the run printed nothing for 1s (logs timeout); stopping it\n");
    expect(text).toContain("got-term\n");
  }, 30_000);

  test("steady output keeps a run alive past the logs timeout", async () => {
    const sink = new RecordingSink();
    const run = spec(env!.image, [{ name: "planning", commands: ["for i in 1 2 3 4 5; do echo tick $i; sleep 0.4; done"] }], {
      timeouts: { logs_ms: 1000 },
    });
    const result = await sup.execute(run, sink, never);
    expect(result.reason).toBe("ok");
    expect(sink.text()).toContain("tick 5\n");
  }, 30_000);

  test("the wall-clock timeout stops a chatty run: timeout-run; a command ignoring SIGTERM is killed after the grace", async () => {
    const sink = new RecordingSink();
    const run = spec(env!.image, [{ name: "planning", commands: ["trap '' TERM; while true; do echo busy; sleep 0.2; done"] }], {
      timeouts: { run_ms: 1500, logs_ms: 1000 },
    });
    const started = performance.now();
    const result = await sup.execute(run, sink, never);
    const elapsed = performance.now() - started;
    expect(result.reason).toBe("timeout-run");
    // SIGTERM reaches the worker, which forwards it; the shell ignores it, so SIGKILL ends it after the grace.
    expect(result.exitCode).toBe(137);
    expect(elapsed).toBeGreaterThan(1500 + 900);
    expect(elapsed).toBeLessThan(15_000);
    expect(sink.text()).toContain("[spacelift-launcher] the run reached its time limit of 1.5s; stopping it\n");
  }, 30_000);

  test("abort while a command runs: cancelled, the command stopped", async () => {
    const sink = new RecordingSink();
    const ctl = new AbortController();
    const run = spec(env!.image, [{ name: "planning", commands: ["echo running; sleep 30"] }, { name: "applying", commands: ["echo never"] }]);
    const origLog = sink.log.bind(sink);
    sink.log = async (chunk) => {
      await origLog(chunk);
      if (Buffer.from(chunk.data).toString().includes("running")) ctl.abort("cancelled");
    };
    const result = await sup.execute(run, sink, ctl.signal);
    expect(result.reason).toBe("cancelled");
    expect(result.exitCode).toBe(143);
    expect(result.messages).toEqual(["the run was cancelled"]);
    expect(sink.phases).toEqual(["preparing", "planning"]);
    expect(sink.text()).toContain("[spacelift-launcher] the run was cancelled\n");
    expect(sink.text()).not.toContain("never");
  }, 30_000);

  test("a signal aborted before execute: cancelled, no container ever created", async () => {
    const sink = new RecordingSink();
    const ctl = new AbortController();
    ctl.abort("launcher-stopping");
    const result = await sup.execute(spec(env!.image, [{ name: "planning", commands: ["echo never"] }]), sink, ctl.signal);
    expect(result).toMatchObject({ reason: "cancelled", exitCode: null, messages: ["the launcher is stopping: the run was cancelled"] });
    expect(sink.phases).toEqual(["preparing"]);
    expect(sink.text()).not.toContain("never");
  }, 30_000);
});
