// A run with a source on the real Docker Engine: the worker clones with the runner image's own git
// (busybox + the host's git, spacelift-test/git) over dumb HTTP from a server on 127.0.0.1, which the
// container reaches through SPACELIFT_WORKER_NETWORK=host. The VCS agent pool mapping rewrites a
// placeholder base URL (vcs.example.invalid, never resolved) before git connects anywhere.
import { beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import type { DockerClient } from "../../../src/docker/types.ts";
import type { RunSupervisor } from "../../../src/launcher/supervisor/run-supervisor.ts";
import { ensureGitImage } from "../../../scripts/testenv/images.ts";
import { dockerTestEnv } from "../../support/env.ts";
import { type DumbHttpServer, type TestRepository, makeRepository, serveDumbHttp } from "../../support/git-repo.ts";
import {
  RecordingSink, dockerClient, ensureLauncherBuilt, scratch, spec, supervisor, testConfig,
  type Scratch, expectCleanTeardown } from "./harness.ts";

const env = dockerTestEnv();
const never = new AbortController().signal;
const stack = { id: "stack-1", name: "Stack", branch: "main", repository: "org/repo", project_root: "infra" };
/** What the phase prints: the checked-out file, where it runs, and the commit git has checked out. */
const probe = [{ name: "planning", commands: ["cat version", "pwd", "git -C /mnt/workspace/source rev-parse HEAD"] }];
const PLACEHOLDER = "https://vcs.example.invalid/org/repo.git";

describe.skipIf(env === undefined)("run supervisor: a run with a git source", () => {
  const docker = env ? dockerClient(env) : (undefined as unknown as DockerClient);
  let dir: Scratch;
  let http: DumbHttpServer;
  let repo: TestRepository;
  let image: string;
  let sup: RunSupervisor;

  beforeAll(async () => {
    ensureLauncherBuilt();
    image = await ensureGitImage(docker, () => {});
    dir = scratch();
    repo = makeRepository(dir.dir, join(dir.dir, "served/agent/org/repo.git"));
    http = serveDumbHttp(join(dir.dir, "served"));
    sup = supervisor(env!, testConfig(env!, dir.dir, {
      SPACELIFT_WORKER_NETWORK: "host",
      SPACELIFT_PRIVATEVCS_MAPPING_NAME_0: "corp-gitlab",
      SPACELIFT_PRIVATEVCS_MAPPING_BASE_ENDPOINT_0: `${http.url}/agent`,
    }));
    await sup.ready();
  }, 120_000);

  expectCleanTeardown(docker, () => dir, () => http?.stop());

  test("the commit is checked out into /mnt/workspace/source and the phases run in the project root", async () => {
    const sink = new RecordingSink();
    const url = `${http.url}/agent/org/repo.git`;
    const run = spec(image, probe, { stack, source: { repository_url: url, branch: "main", commit: repo.first } });
    const result = await sup.execute(run, sink, never);
    expect(result).toMatchObject({ reason: "ok", exitCode: 0 });
    const phases = sink.byPhase();
    expect(phases.map((p) => p.phase)).toEqual(["preparing", "planning"]);
    expect(phases[0]!.text).toContain(`cloning ${url} at ${repo.first}\n`);
    // Not the head of main (2): exactly the scheduled commit.
    expect(phases[1]!.text).toBe(`1\n/mnt/workspace/source/infra\n${repo.first}\n`);
    expect(http.requests).toContain("/agent/org/repo.git/info/refs");
  }, 60_000);

  test("SPACELIFT_PRIVATEVCS_MAPPING_* rewrites the placeholder base URL of a run naming the VCS agent pool", async () => {
    const sink = new RecordingSink();
    const before = http.requests.length;
    const source = { repository_url: PLACEHOLDER, branch: "feature", vcs_agent_pool: "corp-gitlab" };
    const result = await sup.execute(spec(image, probe, { stack, source }), sink, never);
    expect(result).toMatchObject({ reason: "ok", exitCode: 0 });
    expect(sink.byPhase()[1]!.text).toBe(`feature\n/mnt/workspace/source/infra\n${repo.feature}\n`);
    const text = sink.text();
    expect(text).toContain(`cloning ${http.url}/agent/org/repo.git\n`);
    // Only the mapping made the clone work: the placeholder never reached git or the log.
    expect(text).not.toContain("vcs.example.invalid");
    expect(http.requests.slice(before)).toContain("/agent/org/repo.git/info/refs");
  }, 60_000);

  test("an unknown VCS agent pool fails the run with a clear message; git never runs", async () => {
    const sink = new RecordingSink();
    const before = http.requests.length;
    const source = { repository_url: PLACEHOLDER, vcs_agent_pool: "nowhere" };
    const result = await sup.execute(spec(image, probe, { stack, source }), sink, never);
    expect(result).toMatchObject({ reason: "failed", exitCode: 1, messages: ["the run failed with exit code 1"] });
    expect(sink.phases).toEqual(["preparing"]);
    const text = sink.text();
    expect(text).toContain('the run\'s source uses the VCS agent pool "nowhere", which this worker pool does not map');
    expect(text).toContain('mapped pools: "corp-gitlab"');
    expect(text).not.toContain("cloning");
    expect(http.requests.length).toBe(before);
  }, 60_000);

  test("a repository the server does not have fails the run with git's status", async () => {
    const sink = new RecordingSink();
    const source = { repository_url: `${http.url}/agent/org/missing.git` };
    const result = await sup.execute(spec(image, probe, { stack, source }), sink, never);
    expect(result).toMatchObject({ reason: "failed", exitCode: 128 });
    expect(sink.phases).toEqual(["preparing"]);
    expect(sink.text()).toContain("fetching the source failed (git exit status 128)");
  }, 60_000);
});
