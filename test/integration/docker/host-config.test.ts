// The create options the launcher relies on for isolation, checked from inside real containers: a read-only
// bind, networkMode none, Docker's init as PID 1, no-new-privileges, a memory limit that OOM-kills (and
// inspect reporting it), and force removal of a running container.
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isDockerError } from "../../../src/docker/errors.ts";
import type { ContainerSpec } from "../../../src/docker/types.ts";
import { dockerTestEnv } from "../../support/env.ts";
import { busybox, collect, removeSuiteContainers, testClient } from "./helpers.ts";

const env = dockerTestEnv();
const SUITE = `host-config-${process.pid}`;

describe.skipIf(!env)("container host config", () => {
  const docker = testClient(env!);
  const dir = mkdtempSync(join(tmpdir(), "slwp-host-config-"));
  afterAll(async () => {
    await removeSuiteContainers(docker, SUITE);
    await docker.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Runs `script` to completion; its exit code, output and final state. */
  async function run(script: string, extra: Partial<ContainerSpec> = {}) {
    const id = await docker.containerCreate(busybox(env!, SUITE, script, extra));
    const attached = await docker.containerAttach(id);
    const output = collect(attached.frames);
    await docker.containerStart(id);
    const { exitCode } = await docker.containerWait(id);
    return { exitCode, ...(await output), info: await docker.containerInspect(id) };
  }

  test("a read-only bind can be read but not written", async () => {
    writeFileSync(join(dir, "in.txt"), "from the host\n");
    const mounts = [{ host: dir, container: "/data", readOnly: true }];
    const r = await run("cat /data/in.txt; echo x > /data/new.txt && echo wrote || echo refused", { mounts });
    expect(r.stdout).toBe("from the host\nrefused\n");
    expect(r.stderr).toContain("Read-only file system");
    expect(existsSync(join(dir, "new.txt"))).toBe(false);

    // The same bind without :ro is writable: the refusal above comes from readOnly, not from permissions.
    const rw = await run("echo x > /data/new.txt && echo wrote", { mounts: [{ ...mounts[0]!, readOnly: false }] });
    expect(rw.stdout).toBe("wrote\n");
    expect(existsSync(join(dir, "new.txt"))).toBe(true);
  });

  test('networkMode "none" leaves only the loopback interface', async () => {
    const none = await run("ls /sys/class/net", { networkMode: "none" });
    expect(none.stdout.split(/\s+/).filter(Boolean)).toEqual(["lo"]);
    const bridged = await run("ls /sys/class/net");
    expect(bridged.stdout.split(/\s+/)).toContain("eth0");
  });

  test("init: true puts docker-init at PID 1; without it the command is PID 1", async () => {
    const withInit = await run("cat /proc/1/comm; echo $$", { init: true });
    const [comm, shellPid] = withInit.stdout.trim().split("\n");
    expect(comm).toBe("docker-init");
    expect(shellPid).not.toBe("1");
    const plain = await run("cat /proc/1/comm; echo $$");
    expect(plain.stdout).toBe("sh\n1\n");
  });

  test('securityOpt ["no-new-privileges"] sets NoNewPrivs in the container', async () => {
    const nnp = await run("grep NoNewPrivs /proc/self/status", { securityOpt: ["no-new-privileges"] });
    expect(nnp.stdout.replace(/\s+/g, " ").trim()).toBe("NoNewPrivs: 1");
    const plain = await run("grep NoNewPrivs /proc/self/status");
    expect(plain.stdout.replace(/\s+/g, " ").trim()).toBe("NoNewPrivs: 0");
  });

  test("force remove of a running container: it is gone (inspect is not-found); without force it is a conflict", async () => {
    const id = await docker.containerCreate(busybox(env!, SUITE, "while true; do sleep 0.1; done"));
    await docker.containerStart(id);
    expect((await docker.containerInspect(id)).state.running).toBe(true);
    const refused = await docker.containerRemove(id).catch((e: unknown) => e);
    expect(isDockerError(refused, "conflict")).toBe(true);
    await docker.containerRemove(id, { force: true });
    const gone = await docker.containerInspect(id).catch((e: unknown) => e);
    expect(isDockerError(gone, "not-found")).toBe(true);
  });

  test("going past memoryBytes is an OOM kill that inspect reports", async () => {
    const limit = 16 * 1024 * 1024;
    // dd allocates one 64 MiB block and touches it all: four times the limit, with no swap to spill into.
    // Docker sets OOMKilled from an asynchronous cgroup event that can come after the exit on a loaded
    // host; the kill itself (137) is there every time, the flag within three runs.
    let r = await run("exec dd if=/dev/zero of=/dev/null bs=64M count=1", { memoryBytes: limit });
    for (let i = 0; i < 2 && !r.info.state.oomKilled; i++) {
      expect(r.exitCode).toBe(137);
      r = await run("exec dd if=/dev/zero of=/dev/null bs=64M count=1", { memoryBytes: limit });
    }
    expect(r.info.state.oomKilled).toBe(true);
    expect(r.exitCode).toBe(137);
    // Under the limit the same command completes.
    const fits = await run("exec dd if=/dev/zero of=/dev/null bs=4M count=1", { memoryBytes: limit });
    expect(fits.exitCode).toBe(0);
    expect(fits.info.state.oomKilled).toBe(false);
  });
});
