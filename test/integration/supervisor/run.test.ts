// A run end to end on the real Docker Engine, in the busybox test image (no libc: the worker runs from
// the bundle's glibc loader): phases, exit codes, chunk sequencing, the image's ENTRYPOINT, debug
// output and the stdout mirror.
import { beforeAll, describe, expect, test } from "bun:test";
import type { DockerClient } from "../../../src/docker/types.ts";
import type { RunSupervisor } from "../../../src/launcher/supervisor/run-supervisor.ts";
import { dockerTestEnv } from "../../support/env.ts";
import {
  RecordingSink, dockerClient, ensureLauncherBuilt, managedContainers, scratch, spec, supervisor, testConfig,
  type Scratch, expectCleanTeardown } from "./harness.ts";

const env = dockerTestEnv();
const never = new AbortController().signal;

describe.skipIf(env === undefined)("run supervisor: a run in a container", () => {
  const docker = env ? dockerClient(env) : (undefined as unknown as DockerClient);
  let dir: Scratch;
  let sup: RunSupervisor;

  beforeAll(async () => {
    ensureLauncherBuilt();
    dir = scratch();
    sup = supervisor(env!, testConfig(env!, dir.dir));
    await sup.ready();
  }, 120_000);

  expectCleanTeardown(docker, () => dir);

  test("a two-phase run succeeds: phases in order, output in its phase, every seq consecutive", async () => {
    const sink = new RecordingSink();
    const run = spec(env!.image, [
      { name: "planning", commands: ["echo plan-out", "echo plan-err >&2", "printf 'no newline'"] },
      { name: "applying", commands: ["echo apply-1; echo apply-2", "cat /proc/1/cmdline | tr '\\0' ' '"] },
    ]);
    const result = await sup.execute(run, sink, never);
    expect(result).toEqual({ run: run.id, exitCode: 0, reason: "ok", lastSeq: sink.chunks.length - 1, messages: [] });
    expect(sink.phases).toEqual(["preparing", "planning", "applying"]);
    expect(sink.chunks[0]?.seq).toBe(0);
    expect(sink.chunks.map((c) => c.seq)).toEqual(sink.chunks.map((_, i) => i));
    for (const chunk of sink.chunks) expect(chunk.run).toBe(run.id);
    const phases = sink.byPhase();
    expect(phases.map((p) => p.phase)).toEqual(["preparing", "planning", "applying"]);
    expect(phases[1]!.text).toBe("plan-out\nplan-err\nno newline");
    expect(phases[2]!.text).toStartWith("apply-1\napply-2\n");
    // The worker from the bundle is PID 1, started through the bundle's loader.
    expect(phases[2]!.text).toContain("/opt/spacelift-worker/ld-linux-x86-64.so.2 --library-path /opt/spacelift-worker /opt/spacelift-worker/spacelift-launcher worker");
  }, 30_000);

  test("a failing command fails the run with its exit code; later commands never run", async () => {
    const sink = new RecordingSink();
    const run = spec(env!.image, [
      { name: "planning", commands: ["echo before", "exit 42", "echo after-failure"] },
      { name: "applying", commands: ["echo never"] },
    ]);
    const result = await sup.execute(run, sink, never);
    expect(result.reason).toBe("failed");
    expect(result.exitCode).toBe(42);
    expect(result.messages).toEqual(["the run failed with exit code 42"]);
    expect(sink.phases).toEqual(["preparing", "planning"]);
    const text = sink.text();
    expect(text).toContain("before\n");
    expect(text).toContain("command 2 of 3 in phase planning failed with exit status 42");
    expect(text).not.toContain("after-failure");
    expect(text).not.toContain("never");
    expect(text).toEndWith("[spacelift-launcher] the run failed with exit code 42\n");
  }, 30_000);

  test("the image's ENTRYPOINT and CMD are ignored", async () => {
    const image = await imageWithEntrypoint(env!.host, env!.image);
    const sink = new RecordingSink();
    const result = await sup.execute(spec(image, [{ name: "planning", commands: ["echo from-our-worker"] }]), sink, never);
    expect(result.reason).toBe("ok");
    expect(sink.text()).toContain("from-our-worker\n");
    expect(sink.text()).not.toContain("IMAGE-ENTRYPOINT");
  }, 30_000);

  test("a large output arrives complete, in order, in chunks of at most 64 KiB, through a slow sink", async () => {
    const sink = new RecordingSink();
    sink.delayMs = 2;
    // 20,000 numbered lines (~200 KB), interleaved with a little stderr.
    const run = spec(env!.image, [{ name: "planning", commands: ["i=0; while [ $i -lt 20000 ]; do echo \"line $i\"; i=$((i+1)); done; echo done >&2"] }]);
    const result = await sup.execute(run, sink, never);
    expect(result.reason).toBe("ok");
    const text = sink.byPhase()[1]!.text;
    // stdout and stderr are separate pipes: Docker orders neither one against the other nor by line,
    // so the stderr line may land anywhere, even inside a stdout line.
    expect(text.split("done\n")).toHaveLength(2);
    expect(text.replace("done\n", "").split("\n")).toEqual([...Array.from({ length: 20000 }, (_, i) => `line ${i}`), ""]);
    for (const chunk of sink.chunks) expect(chunk.data.length).toBeLessThanOrEqual(64 * 1024);
    expect(sink.chunks.map((c) => c.seq)).toEqual(sink.chunks.map((_, i) => i));
  }, 60_000);

  test("the worker's own failure (missing project root) fails the run with a clear line", async () => {
    const sink = new RecordingSink();
    const run = spec(env!.image, [{ name: "planning", commands: ["echo never"] }], {
      stack: { id: "stack-1", name: "Stack", branch: "main", repository: "org/repo", project_root: "infra/prod" },
    });
    const result = await sup.execute(run, sink, never);
    expect(result).toMatchObject({ reason: "failed", exitCode: 1 });
    expect(sink.text()).toContain('the project root "infra/prod" does not exist in the workspace');
  }, 30_000);
});

describe.skipIf(env === undefined)("run supervisor: debug output and the stdout mirror", () => {
  test("SPACELIFT_DEBUG prints the container spec and the commands, secrets masked; the mirror writes JSON lines", async () => {
    ensureLauncherBuilt();
    const dir = scratch();
    const docker = dockerClient(env!);
    const lines: string[] = [];
    try {
      const config = testConfig(env!, dir.dir, {
        SPACELIFT_DEBUG: "true",
        SPACELIFT_RUN_LOGS_ON_STANDARD_OUTPUT_ENABLED: "true",
        SPACELIFT_MASK_ENVS: "LAUNCHER_SECRET",
        LAUNCHER_SECRET: "launcher-secret-value",
      });
      const sup = supervisor(env!, config, { stdout: (line) => lines.push(line), now: () => new Date("2030-01-02T03:04:05.000Z") });
      await sup.ready();
      const sink = new RecordingSink();
      const run = spec(env!.image, [{ name: "planning", commands: ["echo token=run-secret-value", "echo $LAUNCHER_SECRET"] }], {
        environment: [{ name: "TOKEN", value: "run-secret-value", secret: true }, { name: "PLAIN", value: "plain-value" }],
      });
      const result = await sup.execute(run, sink, never);
      expect(result.reason).toBe("ok");
      const text = sink.text();
      expect(text).toContain("[spacelift-launcher] container spec: {");
      expect(text).toContain('"io.spacelift.run": "' + run.id + '"');
      expect(text).toContain('"PLAIN": "plain-value"');
      expect(text).toContain('"LAUNCHER_SECRET": "*****"');
      expect(text).toContain("[spacelift-launcher] [planning] $ echo token=*****");
      expect(text).toContain("token=*****\n*****\n");
      expect(text).not.toContain("secret-value");
      const records = lines.map((l) => JSON.parse(l) as Record<string, string>);
      expect(records).toContainEqual({ run_ulid: run.id, stack_id: "stack-1", ts: "2030-01-02T03:04:05.000Z", msg: "token=*****" });
      expect(lines.join("\n")).not.toContain("secret-value");
      expect(await managedContainers(docker)).toEqual([]);
    } finally {
      dir.cleanup();
      await docker.close();
    }
  }, 60_000);
});

/** Commits a busybox container into an image whose ENTRYPOINT would print a marker and fail. */
async function imageWithEntrypoint(host: string, base: string): Promise<string> {
  const socket = host.replace(/^unix:\/\//, "");
  const api = async (path: string, init: RequestInit = {}): Promise<Response> => {
    const res = await fetch(`http://docker/v1.41${path}`, { ...init, unix: socket } as RequestInit);
    if (res.status >= 300) throw new Error(`${path}: ${res.status} ${await res.text()}`);
    return res;
  };
  const repo = "spacelift-test/entrypoint";
  const created = (await (await api("/containers/create", {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ Image: base, Cmd: ["true"] }),
  })).json()) as { Id: string };
  try {
    const changes = ['ENTRYPOINT ["/bin/sh", "-c", "echo IMAGE-ENTRYPOINT; exit 3"]', 'CMD ["IMAGE-CMD"]'];
    const query = new URLSearchParams({ container: created.Id, repo, tag: "latest" });
    for (const change of changes) query.append("changes", change);
    await api(`/commit?${query.toString()}`, { method: "POST" });
  } finally {
    await api(`/containers/${created.Id}?force=1`, { method: "DELETE" });
  }
  return `${repo}:latest`;
}
