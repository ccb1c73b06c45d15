// A runner image with `USER 1983` (spacelift-test/git-nonroot: busybox, the host's git and the user
// spacelift) on the real Docker Engine, cloning a source over dumb HTTP: the container starts as root,
// the instructions are root-only 0600 until the worker took them and gone before git runs, and git and
// the commands run as 1983 with its HOME and USER, writing to a workspace it owns.
import { beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import type { ContainerSpec, DockerClient } from "../../../src/docker/types.ts";
import type { RunSupervisor } from "../../../src/launcher/supervisor/run-supervisor.ts";
import { INSTRUCTIONS_FILE, workspaceDir } from "../../../src/launcher/supervisor/workspace.ts";
import { NONROOT_UID, ensureNonRootGitImage } from "../../../scripts/testenv/images.ts";
import { dockerTestEnv } from "../../support/env.ts";
import { type DumbHttpServer, type TestRepository, makeRepository, serveDumbHttp } from "../../support/git-repo.ts";
import { runUnprivileged } from "../../support/unprivileged.ts";
import {
  RecordingSink, dockerClient, ensureLauncherBuilt, expectCleanTeardown, scratch, spec, supervisor, testConfig, type Scratch,
} from "./harness.ts";

const env = dockerTestEnv();
const never = new AbortController().signal;
const stack = { id: "stack-1", name: "Stack", branch: "main", repository: "org/repo", project_root: "infra" };

/** What the instructions file looked like on the host at the moment the container was started. */
interface AtStart {
  mode: number;
  uid: number;
  /** Whether nobody (65534) could open it for reading. */
  readableByNobody: boolean;
  nonce: string;
}

describe.skipIf(env === undefined)("run supervisor: a runner image that runs as a non-root user", () => {
  const docker = env ? dockerClient(env) : (undefined as unknown as DockerClient);
  let dir: Scratch;
  let http: DumbHttpServer;
  let repo: TestRepository;
  let image: string;
  let sup: RunSupervisor;
  const created: ContainerSpec[] = [];
  const atStart = new Map<string, AtStart>();

  beforeAll(async () => {
    ensureLauncherBuilt();
    image = await ensureNonRootGitImage(env!.host, () => {});
    dir = scratch();
    // Only the file's own mode may keep other users out, not a private temp dir above it.
    chmodSync(dir.dir, 0o755);
    repo = makeRepository(dir.dir, join(dir.dir, "served/org/repo.git"));
    http = serveDumbHttp(join(dir.dir, "served"));
    // The real client; create and start are observed on their way to the daemon.
    const observed = new Proxy(docker, {
      get(target, prop, receiver) {
        if (prop === "containerCreate") {
          return (s: ContainerSpec, signal?: AbortSignal) => {
            created.push(s);
            return target.containerCreate(s, signal);
          };
        }
        if (prop === "containerStart") {
          return (id: string, signal?: AbortSignal) => {
            const run = created.at(-1)!.labels!["io.spacelift.run"]!;
            const path = join(workspaceDir(dir.dir, run), INSTRUCTIONS_FILE);
            const st = statSync(path);
            const probe = runUnprivileged(`require("node:fs").readFileSync(${JSON.stringify(path)}); console.log("read")`);
            const nonce = (JSON.parse(readFileSync(path, "utf8")) as { marker_nonce: string }).marker_nonce;
            // Refused for its permissions, not for any other reason the child could fail.
            const refused = probe.status !== 0 && /EACCES|permission denied/i.test(probe.stderr);
            atStart.set(run, { mode: st.mode & 0o7777, uid: st.uid, readableByNobody: probe.stdout.includes("read") || !refused, nonce });
            return target.containerStart(id, signal);
          };
        }
        const value: unknown = Reflect.get(target, prop, receiver);
        return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    sup = supervisor(env!, testConfig(env!, dir.dir, { SPACELIFT_WORKER_NETWORK: "host" }), { docker: observed });
    await sup.ready();
  }, 180_000);

  expectCleanTeardown(docker, () => dir, () => http?.stop());

  test("git and the commands run as 1983 with its HOME and USER, write the workspace it owns, and never see the instructions", async () => {
    const sink = new RecordingSink();
    const probe = [{
      name: "planning",
      commands: [
        "echo uid=$(id -u) gid=$(id -g) home=$HOME user=$USER",
        "cat version",
        "stat -c 'source-owner=%u' /mnt/workspace/source/infra/version",
        "stat -c 'workspace-owner=%u:%g' /mnt/workspace",
        "echo written > /mnt/workspace/out && cat /mnt/workspace/out",
        "touch $HOME/.cache-probe && echo home-writable",
        // The instructions are gone, and nothing holding them is left anywhere readable.
        `test ! -e /mnt/workspace/${INSTRUCTIONS_FILE} && echo instructions-gone`,
        "echo copies=$(find / /mnt/workspace -xdev -name '.spacelift-run*' 2>/dev/null | wc -l)",
        "echo nonce-files=$(grep -rls marker_nonce /mnt /tmp /home /root /etc 2>/dev/null | wc -l)",
        // PID 1 (the worker) stays root: the user can neither read its memory nor its environment.
        "cat /proc/1/environ >/dev/null 2>&1 && echo environ-readable || echo environ-denied",
        "stat -c 'worker-uid=%u' /proc/1",
      ],
    }];
    const run = spec(image, probe, { stack, source: { repository_url: `${http.url}/org/repo.git`, branch: "main", commit: repo.first } });
    const result = await sup.execute(run, sink, never);
    expect(result).toMatchObject({ reason: "ok", exitCode: 0 });
    const phases = sink.byPhase();
    expect(phases.map((p) => p.phase)).toEqual(["preparing", "planning"]);
    expect(phases[1]!.text).toBe([
      `uid=${NONROOT_UID} gid=${NONROOT_UID} home=/home/spacelift user=spacelift`,
      "1",
      `source-owner=${NONROOT_UID}`,
      `workspace-owner=${NONROOT_UID}:${NONROOT_UID}`,
      "written",
      "home-writable",
      "instructions-gone",
      "copies=0",
      "nonce-files=0",
      "environ-denied",
      "worker-uid=0",
      "",
    ].join("\n"));

    // The container started as root; the image's user came through the instructions only.
    const container = created.find((c) => c.labels?.["io.spacelift.run"] === run.id)!;
    expect(container.user).toBe("0");
    // Before start: root's 0600 file, which another user cannot open.
    expect(atStart.get(run.id)).toMatchObject({ mode: 0o600, uid: 0, readableByNobody: false });
    // The nonce never reached the log (markers were parsed out; nothing printed it).
    expect(sink.text()).not.toContain(atStart.get(run.id)!.nonce);
  }, 90_000);

  test("the run's own HOME wins over the user's home; a plain stack without a source runs as 1983 too", async () => {
    const sink = new RecordingSink();
    const run = spec(image, [{ name: "planning", commands: ["echo $(id -u) $HOME", "pwd"] }], {
      environment: [{ name: "HOME", value: "/tmp", secret: false }],
    });
    const result = await sup.execute(run, sink, never);
    expect(result).toMatchObject({ reason: "ok", exitCode: 0 });
    expect(sink.byPhase()[1]!.text).toBe(`${NONROOT_UID} /tmp\n/mnt/workspace\n`);
  }, 60_000);
});
