// Shared pieces of the run supervisor tests: the compiled launcher (the worker bundle needs a real
// executable), a config on a temp scratch dir, a recording sink, run specs, and leftover checks.
import { afterAll, afterEach, expect } from "bun:test";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { loadLauncherConfig, type LauncherConfig } from "../../../src/config/launcher-config.ts";
import { createDockerClient } from "../../../src/docker/client.ts";
import type { DockerClient } from "../../../src/docker/types.ts";
import { silentLogger } from "../../../src/log/logger.ts";
import type { LogChunk, RunSink } from "../../../src/launcher/run-executor.ts";
import { LABEL_MANAGED, LABEL_POOL } from "../../../src/launcher/supervisor/labels.ts";
import { createRunSupervisor, type RunSupervisor, type RunSupervisorDeps } from "../../../src/launcher/supervisor/run-supervisor.ts";
import { parseRunSpec, type RunSpec } from "../../../src/protocol/run-spec.ts";
import { ulid } from "../../../src/protocol/ulid.ts";
import type { DockerTestEnv } from "../../support/env.ts";

export const ROOT = resolve(import.meta.dir, "../../..");
export const LAUNCHER = join(ROOT, "dist/spacelift-launcher-x86_64");

/** Newest modification time under `dir` (.ts files). */
function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(path));
    else if (entry.name.endsWith(".ts")) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

/** Builds the x86_64 launcher when it is missing or older than any source file (a build takes ~2 s). */
export function ensureLauncherBuilt(): void {
  if (existsSync(LAUNCHER) && statSync(LAUNCHER).mtimeMs > newestSource(join(ROOT, "src"))) return;
  const r = spawnSync(join(ROOT, "node_modules/.bin/bun"), ["build/build.ts", "--target", "x86_64"], { cwd: ROOT, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`building the launcher failed: ${r.stdout}${r.stderr}`);
}

export interface Scratch {
  dir: string;
  cleanup(): void;
}

export function scratch(): Scratch {
  const dir = mkdtempSync(join(tmpdir(), "supervisor-test-"));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * After each test no managed container and no workspace is left (in every outcome); after the suite
 * `stop` runs, the scratch dir is removed and the client closed.
 */
export function expectCleanTeardown(docker: DockerClient, dir: () => Scratch | undefined, stop: () => void = () => undefined): void {
  afterEach(async () => {
    expect(await managedContainers(docker)).toEqual([]);
    const d = dir();
    if (d) expect(leftoverWorkspaces(d.dir)).toEqual([]);
  });
  afterAll(async () => {
    stop();
    dir()?.cleanup();
    await docker.close();
  });
}

export function testConfig(env: DockerTestEnv, scratchDir: string, extra: Record<string, string> = {}): LauncherConfig {
  return loadLauncherConfig({ DOCKER_HOST: env.host, SPACELIFT_LAUNCHER_SCRATCH_DIR: scratchDir, ...extra }, { requireCredentials: false });
}

export function dockerClient(env: DockerTestEnv): DockerClient {
  return createDockerClient({ host: env.host });
}

/** A fresh run id (unique per test process: ULIDs are monotonic). */
export function runId(): string {
  return ulid();
}

export function spec(image: string, phases: Array<{ name: string; commands: string[] }>, extra: Record<string, unknown> = {}): RunSpec {
  return parseRunSpec({
    id: runId(),
    type: "TRACKED",
    stack: { id: "stack-1", name: "Stack", branch: "main", repository: "org/repo" },
    commit: { hash: "abc", branch: "main", author: "Ada", message: "msg" },
    runner_image: image,
    phases,
    ...extra,
  });
}

/** A sink that records everything and checks seq order as chunks arrive. */
export class RecordingSink implements RunSink {
  readonly events: Array<{ phase: string } | { chunk: number }> = [];
  readonly chunks: LogChunk[] = [];
  readonly phases: string[] = [];
  /** Optional delay per chunk, to exercise backpressure. */
  delayMs = 0;

  phase(_run: string, name: string): void {
    this.phases.push(name);
    this.events.push({ phase: name });
  }

  async log(chunk: LogChunk): Promise<void> {
    this.chunks.push(chunk);
    this.events.push({ chunk: chunk.seq });
    if (this.delayMs > 0) await Bun.sleep(this.delayMs);
  }

  text(): string {
    return Buffer.concat(this.chunks.map((c) => c.data)).toString("utf8");
  }

  /** The log text of each phase, in order (launcher lines included). */
  byPhase(): Array<{ phase: string; text: string }> {
    const out: Array<{ phase: string; text: string }> = [];
    for (const event of this.events) {
      if ("phase" in event) out.push({ phase: event.phase, text: "" });
      else {
        const last = out.at(-1);
        const chunk = this.chunks.find((c) => c.seq === event.chunk);
        if (last && chunk) last.text += Buffer.from(chunk.data).toString("utf8");
      }
    }
    return out;
  }
}

export function supervisor(env: DockerTestEnv, config: LauncherConfig, extra: Partial<RunSupervisorDeps> = {}): RunSupervisor {
  return createRunSupervisor({
    docker: dockerClient(env),
    config,
    logger: silentLogger,
    workerId: `test-worker-${crypto.randomUUID()}`,
    poolId: "test-pool",
    selfExecutable: LAUNCHER,
    stopGraceMs: 1000,
    ...extra,
  });
}

/** Managed containers of the test pool still on the daemon (should be none after each test). */
export async function managedContainers(docker: DockerClient, poolId = "test-pool"): Promise<string[]> {
  const list = await docker.containerList({ labels: { [LABEL_MANAGED]: "true", [LABEL_POOL]: poolId }, all: true });
  return list.map((c) => c.id);
}

/** Workspaces left in the scratch dir. */
export function leftoverWorkspaces(scratchDir: string): string[] {
  const dir = join(scratchDir, "workspaces");
  return existsSync(dir) ? readdirSync(dir) : [];
}

/** The parts of Docker's own `GET /containers/{id}/json` the tests check (our client maps fewer). */
export interface RawContainerInfo {
  Config: { Env: string[]; Labels: Record<string, string> };
  HostConfig: { NetworkMode: string; Privileged: boolean; Binds: string[]; Runtime: string };
  Mounts: Array<{ Source: string; Destination: string; RW: boolean }>;
}

export async function containerInspectRaw(env: DockerTestEnv, id: string): Promise<RawContainerInfo> {
  const res = await fetch(`http://docker/containers/${id}/json`, { unix: env.host.replace(/^unix:\/\//, "") } as RequestInit);
  if (!res.ok) throw new Error(`inspect ${id}: ${res.status} ${await res.text()}`);
  return (await res.json()) as RawContainerInfo;
}
