// `spacelift-launcher check` against the real Docker Engine, in-process and as the compiled binary:
// a valid configuration exits 0 and prints the effective configuration with the token and key redacted;
// bad values are one line each naming the variable, without a stack trace or any part of the secrets.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { main, type Io } from "../../../src/launcher/main.ts";
import { dockerTestEnv } from "../../support/env.ts";
import { leaks, makeCredentials } from "../../unit/config/pki-fixtures.ts";

const docker = dockerTestEnv();
const root = join(import.meta.dir, "../../..");
const binary = join(root, "dist/spacelift-launcher-x86_64");

function capture(): Io & { out: string; err: string } {
  const io = { out: "", err: "", stdout: (t: string) => void (io.out += t), stderr: (t: string) => void (io.err += t) };
  return io;
}

describe.skipIf(!docker)("spacelift-launcher check", () => {
  let creds: Awaited<ReturnType<typeof makeCredentials>>;
  let base: Record<string, string>;
  beforeAll(async () => {
    creds = await makeCredentials("rsa");
    base = { SPACELIFT_TOKEN: creds.token, SPACELIFT_POOL_PRIVATE_KEY: creds.keyB64, DOCKER_HOST: docker!.host, PATH: process.env.PATH ?? "/usr/bin" };
    if (!existsSync(binary)) spawnSync(process.execPath, ["build/build.ts", "--target", "x86_64"], { cwd: root });
  });
  afterAll(() => undefined);

  test("a valid configuration with a reachable Docker exits 0 and redacts the secrets", async () => {
    const io = capture();
    const code = await main(["check"], { ...base, SPACELIFT_METADATA_asg_id: "asg-1" }, io);
    expect(io.err).toBe("");
    expect(code).toBe(0);
    expect(io.out).toContain("configuration valid");
    expect(io.out).toMatch(/Docker\s+reachable: Docker \S+, API 1\.\d+/);
    expect(io.out).toMatch(/SPACELIFT_TOKEN\s+<redacted>/);
    expect(io.out).toMatch(/SPACELIFT_LAUNCHER_LOGS_TIMEOUT\s+7m/);
    expect(leaks(io.out, creds.token)).toBe(false);
    expect(leaks(io.out, creds.keyB64, creds.key.traditional)).toBe(false);
  });

  test("Docker unreachable: a DOCKER_HOST line and exit 1", async () => {
    const io = capture();
    const code = await main(["check"], { ...base, DOCKER_HOST: "unix:///nonexistent/docker.sock" }, io);
    expect(code).toBe(1);
    expect(io.err).toMatch(/^DOCKER_HOST: .*cannot reach Docker at unix:\/\/\/nonexistent\/docker.sock/m);
    expect(io.out).toContain("configuration NOT valid");
  });

  test("an invalid configuration still reports an unreachable Docker, in the same run", async () => {
    const io = capture();
    const code = await main(["check"], { ...base, DOCKER_HOST: "unix:///nonexistent/docker.sock", SPACELIFT_LAUNCHER_LOGS_TIMEOUT: "7 minutes" }, io);
    expect(code).toBe(1);
    expect(io.err).toMatch(/^SPACELIFT_LAUNCHER_LOGS_TIMEOUT: /m);
    expect(io.err).toMatch(/^DOCKER_HOST: .*cannot reach Docker at unix:\/\/\/nonexistent\/docker.sock/m);
    expect(io.err.trimEnd().split("\n").at(-1)).toBe("configuration invalid: 2 problems");
  });

  test("an unknown worker network is reported on SPACELIFT_WORKER_NETWORK", async () => {
    const io = capture();
    expect(await main(["check"], { ...base, SPACELIFT_WORKER_NETWORK: "no-such-network" }, io)).toBe(1);
    expect(io.err).toContain('SPACELIFT_WORKER_NETWORK: Docker has no network "no-such-network"');
  });

  test("the compiled binary: bad values are one line each, exit non-zero, no stack trace, no secret", () => {
    const r = spawnSync(binary, ["check"], {
      encoding: "utf8",
      env: { ...base, SPACELIFT_POOL_PRIVATE_KEY: creds.keyB64.slice(0, 40), SPACELIFT_LAUNCHER_RUN_TIMEOUT: "-1s", SPACELIFT_WORKER_EXTRA_MOUNTS: "/a:/b,,/c:/d" },
    });
    expect(r.status).toBe(1);
    const lines = r.stderr.trimEnd().split("\n");
    expect(lines.at(-1)).toBe("configuration invalid: 3 problems");
    expect(lines.slice(0, -1).map((l) => l.split(":")[0]).sort()).toEqual([
      "SPACELIFT_LAUNCHER_RUN_TIMEOUT", "SPACELIFT_POOL_PRIVATE_KEY", "SPACELIFT_WORKER_EXTRA_MOUNTS",
    ]);
    expect(r.stderr).not.toMatch(/^\s+at /m);
    expect(leaks(r.stderr, creds.token)).toBe(false);
    expect(leaks(r.stderr, creds.keyB64, creds.key.traditional)).toBe(false);
  });
});
