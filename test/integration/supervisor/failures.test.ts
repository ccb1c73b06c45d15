// How runs end before or outside the user's commands, on the real Docker Engine: policy denial, image
// pulls (private registry with auth, unknown image), the default runner image, an invalid runtime, and
// the start-up cleanup of containers left by an earlier process of this launcher.
import { beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { DockerClient } from "../../../src/docker/types.ts";
import { LABEL_LAUNCHER, LABEL_MANAGED, LABEL_POOL, LABEL_RUN, LABEL_WORKER } from "../../../src/launcher/supervisor/labels.ts";
import { launcherIdentity } from "../../../src/launcher/supervisor/launcher-identity.ts";
import type { RunSupervisor } from "../../../src/launcher/supervisor/run-supervisor.ts";
import { dockerTestEnv, registryTestEnv } from "../../support/env.ts";
import {
  RecordingSink, dockerClient, ensureLauncherBuilt, runId, scratch, spec, supervisor, testConfig,
  type Scratch, expectCleanTeardown } from "./harness.ts";

const env = dockerTestEnv();
const registry = registryTestEnv();
const never = new AbortController().signal;

describe.skipIf(env === undefined)("run supervisor: failures and orphans", () => {
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

  test("a policy denial ends the run with policy-denied before any pull or container", async () => {
    const seen: string[] = [];
    const denying = supervisor(env!, testConfig(env!, dir.dir), {
      initPolicy: async (run) => {
        seen.push(run.id);
        return { deny: ["runs on main need approval", "image not allowed"] };
      },
    });
    await denying.ready();
    const sink = new RecordingSink();
    // An image that does not exist: a pull attempt would end in image-pull-failed instead.
    const run = spec(`${registry?.registry.address ?? "127.0.0.1:1"}/spacelift-test/not-there:1`, [{ name: "planning", commands: ["echo never"] }]);
    const result = await denying.execute(run, sink, never);
    expect(seen).toEqual([run.id]);
    expect(result).toEqual({
      run: run.id, exitCode: null, reason: "policy-denied", lastSeq: sink.chunks.length - 1,
      messages: ["denied by the run initialization policy: runs on main need approval", "denied by the run initialization policy: image not allowed"],
    });
    expect(sink.phases).toEqual(["preparing"]);
    expect(sink.text()).toBe(
      "[spacelift-launcher] denied by the run initialization policy: runs on main need approval\n" +
        "[spacelift-launcher] denied by the run initialization policy: image not allowed\n",
    );
    expect(sink.text()).not.toContain("pulling");
  }, 30_000);

  test("a policy that allows lets the run go on", async () => {
    const allowing = supervisor(env!, testConfig(env!, dir.dir), { initPolicy: async () => ({ deny: [] }) });
    await allowing.ready();
    const result = await allowing.execute(spec(env!.image, [{ name: "planning", commands: ["true"] }]), new RecordingSink(), never);
    expect(result.reason).toBe("ok");
  }, 30_000);

  test.skipIf(registry === undefined)("an unknown image ends the run with image-pull-failed and the registry's reason", async () => {
    const sink = new RecordingSink();
    const image = `${registry!.registry.address}/spacelift-test/not-there:1`;
    const result = await sup.execute(spec(image, [{ name: "planning", commands: ["echo never"] }]), sink, never);
    expect(result.reason).toBe("image-pull-failed");
    expect(result.exitCode).toBeNull();
    expect(result.messages).toHaveLength(1);
    expect(result.messages[0]).toStartWith(`cannot pull the runner image ${image}: `);
    expect(sink.text()).toContain(`[spacelift-launcher] cannot pull the runner image ${image}: `);
  }, 30_000);

  test.skipIf(registry === undefined)("an image from a private registry is pulled with the docker config's credentials, progress in the log", async () => {
    const configDir = join(dir.dir, "docker-config");
    mkdirSync(configDir, { recursive: true });
    const { address, username, password, image } = registry!.registry;
    writeFileSync(join(configDir, "config.json"), JSON.stringify({ auths: { [address]: { auth: Buffer.from(`${username}:${password}`).toString("base64") } } }));
    const pulling = supervisor(env!, testConfig(env!, dir.dir, { SPACELIFT_DOCKER_CONFIG_DIR: configDir }), { pullPolicy: "always" });
    await pulling.ready();
    const sink = new RecordingSink();
    const result = await pulling.execute(spec(image, [{ name: "planning", commands: ["echo pulled-and-ran"] }]), sink, never);
    expect(result.reason).toBe("ok");
    const preparing = sink.byPhase()[0]!.text;
    expect(preparing).toContain(`[spacelift-launcher] pulling ${image} (with registry credentials)\n`);
    expect(preparing).toMatch(/\[spacelift-launcher\] (Status: |Digest: |.*Pull complete|.*Already exists)/);
    expect(preparing).not.toContain(password);
    expect(sink.text()).toContain("pulled-and-ran\n");
  }, 60_000);

  test("a run without an image uses SPACELIFT_DEFAULT_RUNNER_IMAGE; without either it is a system-error", async () => {
    const withDefault = supervisor(env!, testConfig(env!, dir.dir, { SPACELIFT_DEFAULT_RUNNER_IMAGE: env!.image }));
    await withDefault.ready();
    const run = spec(env!.image, [{ name: "planning", commands: ["echo default-image"] }]);
    delete (run as { runner_image?: string }).runner_image;
    const sink = new RecordingSink();
    expect((await withDefault.execute(run, sink, never)).reason).toBe("ok");
    expect(sink.text()).toContain("default-image\n");

    const other = { ...run, id: runId() };
    const result = await sup.execute(other, new RecordingSink(), never);
    expect(result).toMatchObject({ reason: "system-error", exitCode: null, messages: ["the run names no runner image and SPACELIFT_DEFAULT_RUNNER_IMAGE is not set"] });
  }, 30_000);

  test("an invalid runtime is a system-error naming Docker's complaint", async () => {
    const bad = supervisor(env!, testConfig(env!, dir.dir, { SPACELIFT_WORKER_RUNTIME: "no-such-runtime" }));
    await bad.ready();
    const sink = new RecordingSink();
    const result = await bad.execute(spec(env!.image, [{ name: "planning", commands: ["echo never"] }]), sink, never);
    expect(result.reason).toBe("system-error");
    expect(result.exitCode).toBeNull();
    expect(result.messages.join(" ")).toContain("no-such-runtime");
    expect(sink.text()).toContain("no-such-runtime");
  }, 30_000);

  test("orphan cleanup removes this launcher's containers (and workspaces) of the pool, whatever worker id they carry, and reports their runs; a sibling launcher's are not touched", async () => {
    const orphanRun = runId();
    const earlierWorkerRun = runId();
    const siblingRun = runId();
    const otherPoolRun = runId();
    const workspace = join(dir.dir, "workspaces", orphanRun);
    mkdirSync(workspace, { recursive: true });
    // The identity a launcher on this scratch dir has had since its first start.
    const me = launcherIdentity(dir.dir);
    expect(launcherIdentity(dir.dir)).toBe(me);
    const labels = (pool: string, launcher: string, worker: string, run: string) =>
      ({ [LABEL_MANAGED]: "true", [LABEL_POOL]: pool, [LABEL_LAUNCHER]: launcher, [LABEL_WORKER]: worker, [LABEL_RUN]: run });
    const orphan = await docker.containerCreate({ image: env!.image, entrypoint: ["/bin/sleep", "60"], labels: labels("test-pool", me, "gone-worker", orphanRun) });
    await docker.containerStart(orphan);
    const earlier = await docker.containerCreate({ image: env!.image, entrypoint: ["/bin/true"], labels: labels("test-pool", me, "older-worker", earlierWorkerRun) });
    // Another launcher of the same pool on this daemon, running its run right now.
    const sibling = await docker.containerCreate({ image: env!.image, entrypoint: ["/bin/sleep", "60"], labels: labels("test-pool", "01HZY8Q3V6X9J2K4M5N6P7R8S9", "live-worker", siblingRun) });
    await docker.containerStart(sibling);
    const foreign = await docker.containerCreate({ image: env!.image, entrypoint: ["/bin/true"], labels: labels("other-pool", me, "gone-worker", otherPoolRun) });
    const starting = supervisor(env!, testConfig(env!, dir.dir), { workerId: "new-worker" });
    try {
      const reported: string[] = [];
      const removed = await starting.cleanupOrphans(async (run) => void reported.push(run));
      expect(removed).toBe(2);
      expect(reported.sort()).toEqual([orphanRun, earlierWorkerRun].sort());
      expect(existsSync(workspace)).toBe(false);
      expect((await docker.containerInspect(sibling)).state.running).toBe(true);
      expect((await docker.containerInspect(foreign)).labels[LABEL_RUN]).toBe(otherPoolRun);
      expect(await starting.cleanupOrphans(async () => {})).toBe(0);
    } finally {
      for (const id of [sibling, foreign, orphan, earlier]) await docker.containerRemove(id, { force: true }).catch(() => undefined);
    }
  }, 30_000);
});
