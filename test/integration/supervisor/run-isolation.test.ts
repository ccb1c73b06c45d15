// What the user's commands cannot do inside a run container on the real Docker Engine: read the run's
// instructions (0600 on the host, deleted by the worker before any command runs), forge a phase change
// by printing a marker-shaped line, or leave zombies behind (the worker is PID 1 and reaps them).
import { beforeAll, describe, expect, test } from "bun:test";
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import type { DockerClient } from "../../../src/docker/types.ts";
import type { RunSupervisor } from "../../../src/launcher/supervisor/run-supervisor.ts";
import { INSTRUCTIONS_FILE, workspaceDir } from "../../../src/launcher/supervisor/workspace.ts";
import { dockerTestEnv } from "../../support/env.ts";
import {
  RecordingSink, dockerClient, ensureLauncherBuilt, scratch, spec, supervisor, testConfig,
  type Scratch, expectCleanTeardown } from "./harness.ts";

const env = dockerTestEnv();
const never = new AbortController().signal;

describe.skipIf(env === undefined)("run supervisor: what the run's commands cannot do", () => {
  const docker = env ? dockerClient(env) : (undefined as unknown as DockerClient);
  let dir: Scratch;
  let sup: RunSupervisor;
  /** Mode of the instructions file on the host, seen just before each container start. */
  const modesAtStart: number[] = [];

  beforeAll(async () => {
    ensureLauncherBuilt();
    dir = scratch();
    // Docker as the supervisor sees it, with a look at the workspace right before the container starts.
    const watched = new Proxy(docker, {
      get(target, prop) {
        const value = Reflect.get(target, prop) as unknown;
        if (prop !== "containerStart") return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
        return async (id: string, signal?: AbortSignal) => {
          const { labels } = await target.containerInspect(id);
          const file = join(workspaceDir(dir.dir, labels["io.spacelift.run"]!), INSTRUCTIONS_FILE);
          modesAtStart.push(statSync(file).mode & 0o777);
          return target.containerStart(id, signal);
        };
      },
    });
    sup = supervisor(env!, testConfig(env!, dir.dir), { docker: watched });
    await sup.ready();
  }, 120_000);

  expectCleanTeardown(docker, () => dir);

  test("the instructions are 0600 until the worker starts and gone before the first command, inside and on the host", async () => {
    const sink = new RecordingSink();
    const run = spec(env!.image, [{
      name: "planning",
      commands: [
        `if [ -e /mnt/workspace/${INSTRUCTIONS_FILE} ]; then echo instructions-present; else echo instructions-gone; fi`,
        "echo \"workspace: [$(ls -A /mnt/workspace)]\"",
        "grep -l marker_nonce /proc/1/environ /proc/1/cmdline /proc/self/environ 2>/dev/null || echo nonce-not-in-proc",
        "echo ready; sleep 1",
      ],
    }], { environment: [{ name: "TOKEN", value: "instruction-secret-42", secret: true }] });
    let onHost: boolean | undefined;
    const origLog = sink.log.bind(sink);
    sink.log = async (chunk) => {
      await origLog(chunk);
      onHost ??= sink.text().includes("ready") ? existsSync(join(workspaceDir(dir.dir, run.id), INSTRUCTIONS_FILE)) : undefined;
    };
    const before = modesAtStart.length;
    const result = await sup.execute(run, sink, never);
    expect(result.reason).toBe("ok");
    expect(modesAtStart.slice(before)).toEqual([0o600]);
    expect(sink.byPhase()[1]!.text).toBe("instructions-gone\nworkspace: []\nnonce-not-in-proc\nready\n");
    expect(onHost).toBe(false);
  }, 30_000);

  test("a forged phase marker (the wire format with a made-up nonce, or none) is plain output; only real phases are reported", async () => {
    const sink = new RecordingSink();
    const fake = "0123456789abcdef0123456789abcdef";
    const run = spec(env!.image, [
      {
        name: "planning",
        commands: [
          "echo real-planning",
          `printf '\\n\\036${fake} phase applying\\n'`,
          "printf '\\036phase destroying\\n'",
          // Whatever a command can find of the run's instructions (nothing: they are deleted).
          `n=$(sed -n 's/.*"marker_nonce":"\\([0-9a-f]*\\)".*/\\1/p' /mnt/workspace/${INSTRUCTIONS_FILE} 2>/dev/null); printf '\\n\\036%s phase hacked\\n' "$n"`,
          "echo still-planning",
        ],
      },
      { name: "applying", commands: ["echo real-applying"] },
    ]);
    const result = await sup.execute(run, sink, never);
    expect(result.reason).toBe("ok");
    expect(sink.phases).toEqual(["preparing", "planning", "applying"]);
    const phases = sink.byPhase();
    expect(phases[1]!.text).toBe(
      `real-planning\n\n\x1e${fake} phase applying\n\x1ephase destroying\n\n\x1e phase hacked\nstill-planning\n`,
    );
    expect(phases[2]!.text).toBe("real-applying\n");
  }, 30_000);

  test("an orphan that exits is reaped by the worker (PID 1): no zombie is left, the commands' statuses are kept", async () => {
    const sink = new RecordingSink();
    // The inner shell exits at once; its `sleep` is re-parented to PID 1 and exits 0.1 s later.
    const watch = [
      "p=$(cat /tmp/zpid); i=0",
      "while [ -e /proc/$p ] && [ $i -lt 40 ]; do i=$((i+1)); sleep 0.1; done",
      "[ -e /proc/$p ] && echo \"orphan $(sed 's/.*) //' /proc/$p/stat | cut -d' ' -f1)\" || echo orphan-reaped",
      "ps -o pid,ppid,stat,comm | awk 'NR > 1 && $3 ~ /Z/ { z++ } END { print \"zombies=\" (z + 0) }'",
      "exit 7",
    ].join("\n");
    const run = spec(env!.image, [
      { name: "planning", commands: ["sh -c 'sleep 0.1 & echo $! > /tmp/zpid'", "sleep 0.5", watch] },
    ]);
    const result = await sup.execute(run, sink, never);
    expect(result).toMatchObject({ reason: "failed", exitCode: 7 });
    // The worker's own failure line is on stderr, so its place among the stdout lines is not fixed.
    const stdout = sink.byPhase()[1]!.text.split("\n").filter((l) => !l.startsWith("[spacelift-"));
    expect(stdout.slice(0, 2)).toEqual(["orphan-reaped", "zombies=0"]);
  }, 30_000);
});
