/**
 * The launcher image built by build/container/build.ts from a release of the built binary (no base
 * image, no network) with the test dockerd (a binary that does not match its SHA256SUMS is refused),
 * then run as a container the way the docs show: the Docker socket bind-mounted (its group added for
 * the image's UID 1983), the scratch dir bind-mounted at the same path, the token and key as read-only
 * files through the _FILE variables, host network to reach a real mothership on loopback. It
 * registers, runs a stack to FINISHED and drains on `docker stop`.
 * What this cannot check: the Dockerfile itself (debian:bookworm-slim is not pulled here; the image it
 * makes has the same binary, user, scratch dir and entrypoint) and an aarch64 image on this host.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { createHash } from "node:crypto";
import { basename, join } from "node:path";
import { buildLauncherImage, IMAGE_UID } from "../../build/container/build.ts";
import { DemoWorld, dist } from "../../scripts/demo/world.ts";
import { dockerTestEnv, hostCapability } from "../support/env.ts";

const docker = dockerTestEnv();
const ARCH = process.arch === "arm64" ? "aarch64" : "x86_64";
const launcher = join(dist, `spacelift-launcher-${ARCH}`);
const mothership = join(dist, `mothership-${ARCH}`);
const ready =
  docker !== undefined &&
  hostCapability(`a unix DOCKER_HOST, root and built ${launcher} and ${mothership}`, docker.host.startsWith("unix://") && process.getuid?.() === 0 && existsSync(launcher) && existsSync(mothership));

interface WorkerJson { id: string; status: string; metadata: Record<string, string> }
interface RunJson { state: string; reason: string | null; worker: string | null }

/** The Engine API of the test dockerd (the socket path is the host's, so it can be bind-mounted too). */
function engine(path: string, init: RequestInit = {}): Promise<Response> {
  return fetch(`http://docker${path}`, { ...init, unix: docker!.host.slice("unix://".length) });
}

async function engineJson<T>(path: string, init: RequestInit = {}): Promise<T> {
  const res = await engine(path, { ...init, headers: { "content-type": "application/json" } });
  const text = await res.text();
  if (!res.ok) throw new Error(`${init.method ?? "GET"} ${path}: ${res.status} ${text}`);
  return (text ? JSON.parse(text) : {}) as T;
}

describe.skipIf(!ready)("launcher container image (cannot check: the Dockerfile's debian base, an aarch64 image)", () => {
  const log = (m: string) => console.error(`container test: ${m}`);
  const dir = mkdtempSync(join(tmpdir(), "launcher-container-"));
  const scratch = join(dir, "scratch");
  const secrets = join(dir, "secrets");
  const tag = `spacelift-launcher-test:${process.pid}`;
  let world: DemoWorld;
  let image = "";
  let container = "";

  beforeAll(async () => {
    chmodSync(dir, 0o755);
    world = new DemoWorld({ mothership, launcher }, docker!.host, log);
    await world.startMothership();
    await world.createPool("container");
    // A release of the built launcher (dist/ may be rebuilt meanwhile): the binary and its SHA256SUMS.
    const release = join(dir, "release");
    mkdirSync(release);
    copyFileSync(launcher, join(release, basename(launcher)));
    writeFileSync(join(release, "SHA256SUMS"), `${createHash("sha256").update(readFileSync(launcher)).digest("hex")}  ${basename(launcher)}\n`);
    image = await buildLauncherImage({ binary: join(release, basename(launcher)), tag, dockerHost: docker!.host, log });
    // What a Kubernetes Secret volume (or `docker run -v`) gives the container: one read-only file each.
    mkdirSync(scratch, { mode: 0o755 });
    chownSync(scratch, IMAGE_UID, IMAGE_UID);
    mkdirSync(secrets, { mode: 0o755 });
    writeFileSync(join(secrets, "token"), `${world.token}\n`, { mode: 0o400 });
    writeFileSync(join(secrets, "pool-private-key"), readFileSync(join(world.dir, "spacelift.key")), { mode: 0o400 });
    for (const f of ["token", "pool-private-key"]) chownSync(join(secrets, f), IMAGE_UID, IMAGE_UID);
  }, 120_000);

  afterAll(async () => {
    if (container) await engine(`/containers/${container}?force=true`, { method: "DELETE" }).then((r) => r.arrayBuffer()).catch(() => {});
    if (image) await engine(`/images/${encodeURIComponent(image)}?force=true`, { method: "DELETE" }).then((r) => r.arrayBuffer()).catch(() => {});
    await world?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test("a binary that does not match the SHA256SUMS beside it is refused before anything is imported", async () => {
    const tampered = join(dir, "tampered");
    mkdirSync(tampered);
    // A valid ELF header of this architecture, and nothing else: not the released binary.
    writeFileSync(join(tampered, basename(launcher)), readFileSync(launcher).subarray(0, 4096));
    copyFileSync(join(dir, "release", "SHA256SUMS"), join(tampered, "SHA256SUMS"));
    const refused = await buildLauncherImage({ binary: join(tampered, basename(launcher)), tag: `${tag}-tampered`, dockerHost: docker!.host }).then(() => "built", (e: unknown) => String(e));
    expect(refused).toContain(`${basename(launcher)} does not match ${join(tampered, "SHA256SUMS")}`);
    expect((await engine(`/images/${encodeURIComponent(`${tag}-tampered`)}/json`).then(async (r) => { await r.arrayBuffer(); return r.status; }))).toBe(404);
  });

  test("the image's configuration: the launcher as entrypoint, UID 1983, the scratch dir", async () => {
    const info = await engineJson<{ Config: { User: string; Entrypoint: string[]; Env: string[]; WorkingDir: string } }>(`/images/${encodeURIComponent(image)}/json`);
    expect(info.Config).toMatchObject({ User: `${IMAGE_UID}:${IMAGE_UID}`, Entrypoint: ["/usr/local/bin/spacelift-launcher"], WorkingDir: "/opt/spacelift" });
    expect(info.Config.Env).toContain("SPACELIFT_LAUNCHER_SCRATCH_DIR=/opt/spacelift");
  });

  test("as a container on the host's Docker: registers, runs a stack to FINISHED, drains on docker stop", async () => {
    const socket = docker!.host.slice("unix://".length);
    const created = await engineJson<{ Id: string }>(`/containers/create?name=launcher-test-${process.pid}`, {
      method: "POST",
      body: JSON.stringify({
        Image: image,
        Env: [
          "SPACELIFT_TOKEN_FILE=/run/secrets/spacelift/token",
          "SPACELIFT_POOL_PRIVATE_KEY_FILE=/run/secrets/spacelift/pool-private-key",
          `SPACELIFT_LAUNCHER_SCRATCH_DIR=${scratch}`,
          "DOCKER_HOST=unix:///var/run/docker.sock",
          "SPACELIFT_INSTANCE_METADATA_ENDPOINT=off",
          "SPACELIFT_METADATA_deployment=container",
        ],
        HostConfig: {
          NetworkMode: "host",
          Binds: [`${socket}:/var/run/docker.sock`, `${scratch}:${scratch}`, `${secrets}:/run/secrets/spacelift:ro`],
          GroupAdd: [String(statSync(socket).gid)],
        },
      }),
    });
    container = created.Id;
    await engineJson(`/containers/${container}/start`, { method: "POST" });
    const output = async () => Buffer.from(await (await engine(`/containers/${container}/logs?stdout=1&stderr=1`)).arrayBuffer()).toString("utf8");

    const [worker] = await world
      .waitFor("the containerized launcher to register", async () => {
        const workers = (await world.workers<WorkerJson>()).filter((w) => w.metadata.deployment === "container");
        return workers.length > 0 ? workers : null;
      }, 60_000)
      .catch(async (error: unknown) => { throw new Error(`${String(error)}\n${JSON.stringify(await world.workers<WorkerJson>())}\n${await output()}`); });
    expect(worker).toMatchObject({ status: "IDLE" });

    const stack = await world.stack("in-container", docker!.image, ["plan=echo planned in $PWD", "apply=echo applied"]);
    const run = await world.trigger(stack);
    expect(await world.runEnded<RunJson>(run, 90_000), await output()).toMatchObject({ state: "FINISHED", reason: "ok", worker: worker!.id });
    expect(await world.runLogs(run)).toContain("applied\n");
    // The run's workspace and the worker bundle are under the scratch dir, written by the image's user.
    expect(statSync(join(scratch, "bundle")).uid).toBe(IMAGE_UID);

    // docker stop sends SIGTERM: the launcher drains, says goodbye and exits 0.
    await engineJson(`/containers/${container}/stop?t=60`, { method: "POST" });
    const state = await engineJson<{ State: { ExitCode: number; Status: string } }>(`/containers/${container}/json`);
    const text = await output();
    expect(state.State, text).toMatchObject({ Status: "exited", ExitCode: 0 });
    await world.waitFor("the worker to leave", async () => (await world.workers<WorkerJson>()).length === 0, 30_000);
    // Neither the token nor the key shows in what the launcher printed.
    expect(text).not.toContain(world.token.slice(0, 40));
    expect(text).not.toContain(readFileSync(join(world.dir, "spacelift.key"), "utf8").split("\n")[1]!);
  }, 180_000);
});
