// The whole container lifecycle through our client against the real dockerd, on the imported busybox image.
import { afterAll, describe, expect, test } from "bun:test";
import { dockerTestEnv } from "../../support/env.ts";
import { isDockerError, type DockerError } from "../../../src/docker/errors.ts";
import { busybox, collect, removeSuiteContainers, testClient, TEST_LABEL } from "./helpers.ts";

const env = dockerTestEnv();
const SUITE = `lifecycle-${process.pid}`;

describe.skipIf(!env)("container lifecycle", () => {
  const docker = testClient(env!);
  afterAll(async () => {
    await removeSuiteContainers(docker, SUITE);
    await docker.close();
  });

  test("ping negotiates an API version and version answers", async () => {
    const { apiVersion } = await docker.ping();
    expect(apiVersion).toMatch(/^1\.\d+$/);
    const v = await docker.version();
    expect(v.os).toBe("linux");
  });

  test("create, attach, start, wait, inspect and remove a busybox container", async () => {
    const id = await docker.containerCreate(
      busybox(env!, SUITE, 'echo "hello $GREETING"; pwd; id -u; echo oops >&2; exit 3', {
        env: { GREETING: "world" }, workingDir: "/tmp", user: "65534", labels: { [TEST_LABEL]: SUITE, "io.spacelift-test.run": "r1" },
      }),
    );
    const attached = await docker.containerAttach(id);
    const output = collect(attached.frames);
    await docker.containerStart(id);
    const { exitCode } = await docker.containerWait(id);
    expect(exitCode).toBe(3);
    const out = await output;
    expect(out.stdout).toBe("hello world\n/tmp\n65534\n");
    expect(out.stderr).toBe("oops\n");

    const info = await docker.containerInspect(id);
    expect(info.state.running).toBe(false);
    expect(info.state.exitCode).toBe(3);
    expect(info.state.oomKilled).toBe(false);
    expect(info.labels["io.spacelift-test.run"]).toBe("r1");

    const listed = await docker.containerList({ labels: { [TEST_LABEL]: SUITE, "io.spacelift-test.run": "r1" } });
    expect(listed.map((c) => c.id)).toEqual([id]);

    const logs = await collect(docker.containerLogs(id));
    expect(logs.stdout).toBe(out.stdout);

    await docker.containerRemove(id);
    const gone = await docker.containerInspect(id).catch((e: unknown) => e);
    expect(isDockerError(gone, "not-found")).toBe(true);
  });

  test("stop sends SIGTERM, then SIGKILL after the timeout", async () => {
    const id = await docker.containerCreate(busybox(env!, SUITE, "trap 'echo got-term; exit 0' TERM; while true; do sleep 0.1; done"));
    const attached = await docker.containerAttach(id);
    const output = collect(attached.frames);
    await docker.containerStart(id);
    await Bun.sleep(300);
    await docker.containerStop(id, 5);
    expect((await docker.containerWait(id)).exitCode).toBe(0);
    expect((await output).stdout).toBe("got-term\n");

    const stubborn = await docker.containerCreate(busybox(env!, SUITE, "trap '' TERM; while true; do sleep 0.1; done"));
    await docker.containerStart(stubborn);
    await Bun.sleep(300);
    await docker.containerStop(stubborn, 1);
    expect((await docker.containerWait(stubborn)).exitCode).toBe(137);
  });

  test("kill delivers the named signal; kill of a stopped container is a conflict", async () => {
    const id = await docker.containerCreate(busybox(env!, SUITE, "trap 'exit 42' USR1; while true; do sleep 0.1; done"));
    await docker.containerStart(id);
    await Bun.sleep(300);
    await docker.containerKill(id, "SIGUSR1");
    expect((await docker.containerWait(id)).exitCode).toBe(42);
    const err = await docker.containerKill(id, "SIGKILL").catch((e: unknown) => e);
    expect(isDockerError(err, "conflict")).toBe(true);
  });

  test("follow logs stream output as it is produced", async () => {
    const id = await docker.containerCreate(busybox(env!, SUITE, "for i in 1 2 3; do echo line$i; sleep 0.1; done"));
    await docker.containerStart(id);
    const logs = await collect(docker.containerLogs(id, { follow: true }));
    expect(logs.stdout).toBe("line1\nline2\nline3\n");
  });

  test("errors carry stable codes: unknown image, unknown container (also on attach), unknown network", async () => {
    const noImage = await docker.containerCreate({ image: "spacelift-test/does-not-exist:nope" }).catch((e: unknown) => e);
    expect(isDockerError(noImage, "not-found")).toBe(true);
    const noContainer = await docker.containerStart("no-such-container-here").catch((e: unknown) => e);
    expect(isDockerError(noContainer, "not-found")).toBe(true);
    const noAttach = await docker.containerAttach("no-such-container-here").catch((e: unknown) => e);
    expect(isDockerError(noAttach, "not-found")).toBe(true);
    expect((noAttach as DockerError).status).toBe(404);
    expect((noAttach as Error).message).toStartWith("attach to container no-such-container-here: ");
    expect((noAttach as Error).message).toContain("no-such-container-here"); // the daemon's own message
    const noNetwork = await docker.networkInspect("no-such-network-here").catch((e: unknown) => e);
    expect(isDockerError(noNetwork, "not-found")).toBe(true);
    expect((await docker.networkInspect("bridge")).driver).toBe("bridge");
  });

  test("an aborted call rejects with code aborted", async () => {
    const ac = new AbortController();
    ac.abort();
    const err = await docker.containerList({ labels: { [TEST_LABEL]: SUITE }, signal: ac.signal }).catch((e: unknown) => e);
    expect(isDockerError(err, "aborted")).toBe(true);
  });
});
