// `spacelift-launcher run-local SPEC.json` as an operator runs it: the compiled launcher, the local
// Docker, no mothership; phases and the masked log on stdout, the run's exit code as its own.
import { afterEach, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { dockerTestEnv } from "../../support/env.ts";
import { silentLogger } from "../../../src/log/logger.ts";
import { createRunSupervisor } from "../../../src/launcher/supervisor/run-supervisor.ts";
import {
  LAUNCHER, dockerClient, ensureLauncherBuilt, leftoverWorkspaces, managedContainers, runId, scratch, testConfig, type Scratch,
} from "./harness.ts";

const env = dockerTestEnv();

describe.skipIf(env === undefined)("spacelift-launcher run-local", () => {
  let dir: Scratch | undefined;

  beforeAll(() => ensureLauncherBuilt(), 120_000);

  afterEach(async () => {
    if (dir === undefined) return;
    const docker = dockerClient(env!);
    try {
      expect(await managedContainers(docker, "local")).toEqual([]);
      expect(leftoverWorkspaces(dir.dir)).toEqual([]);
    } finally {
      await docker.close();
      dir.cleanup();
      dir = undefined;
    }
  });

  function start(phases: Array<{ name: string; commands: string[] }>, environment: unknown[] = []) {
    dir = scratch();
    const specFile = join(dir.dir, "spec.json");
    const id = runId();
    writeFileSync(specFile, JSON.stringify({
      id, type: "TRACKED", runner_image: env!.image, phases, environment,
      stack: { id: "stack-1", name: "Stack", branch: "main", repository: "org/repo" },
      commit: { hash: "abc", branch: "main", author: "Ada", message: "msg" },
    }));
    const proc = Bun.spawn([LAUNCHER, "run-local", specFile], {
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", DOCKER_HOST: env!.host, SPACELIFT_LAUNCHER_SCRATCH_DIR: dir.dir },
      stdout: "pipe",
      stderr: "pipe",
    });
    return { id, proc };
  }

  test("prints phases, the masked log and the result; exits with the run's exit code", async () => {
    const { id, proc } = start(
      [{ name: "planning", commands: ["echo plan $PASSWORD"] }, { name: "applying", commands: ["echo applying", "exit 3"] }],
      [{ name: "PASSWORD", value: "hunter2-hunter2", secret: true }],
    );
    const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    expect(stderr).toBe("");
    expect(code).toBe(3);
    expect(stdout).toStartWith("== phase preparing\n== phase planning\nplan *****\n== phase applying\napplying\n");
    expect(stdout).toContain("command 2 of 2 in phase applying failed with exit status 3");
    expect(stdout).toEndWith(`\n== run ${id} finished: failed, exit code 3\n`);
    expect(stdout).not.toContain("hunter2");
  }, 60_000);

  test("a launcher killed with SIGKILL mid-run leaves a container that the next start removes and reports", async () => {
    const { id, proc } = start([{ name: "planning", commands: ["echo waiting; sleep 60"] }]);
    const reader = proc.stdout.getReader();
    let seen = "";
    while (!seen.includes("waiting\n")) {
      const { value, done } = await reader.read();
      if (done) break;
      seen += new TextDecoder().decode(value);
    }
    proc.kill("SIGKILL");
    await proc.exited;
    const docker = dockerClient(env!);
    try {
      expect((await managedContainers(docker, "local")).length).toBe(1);
      expect(leftoverWorkspaces(dir!.dir)).toEqual([id]);
      // The next launcher (a new worker id) cleans up at start.
      const next = createRunSupervisor({
        docker, config: testConfig(env!, dir!.dir), logger: silentLogger, workerId: "next-start", poolId: "local", selfExecutable: LAUNCHER,
      });
      await next.ready();
      const reported: string[] = [];
      expect(await next.cleanupOrphans(async (run) => void reported.push(run))).toBe(1);
      expect(reported).toEqual([id]);
    } finally {
      await docker.close();
    }
  }, 60_000);

  test("SIGINT cancels the run and still cleans up", async () => {
    const { id, proc } = start([{ name: "planning", commands: ["echo waiting; sleep 60"] }]);
    const reader = proc.stdout.getReader();
    let seen = "";
    while (!seen.includes("waiting\n")) {
      const { value, done } = await reader.read();
      if (done) break;
      seen += new TextDecoder().decode(value);
    }
    proc.kill("SIGINT");
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      seen += new TextDecoder().decode(value);
    }
    const code = await proc.exited;
    expect(seen).toContain("[spacelift-launcher] the run was cancelled\n");
    expect(seen).toContain(`== run ${id} finished: cancelled, exit code 143\n`);
    expect(code).toBe(143);
  }, 60_000);
});
