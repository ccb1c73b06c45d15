// Run specs that carry what the documents describe, end to end with the compiled binaries, a real
// mothership and the real dockerd: a stack with a VCS agent pool is cloned through the launcher's
// SPACELIFT_PRIVATEVCS_MAPPING_* at the commit or branch the CLI trigger names; a run-initialization
// policy denies by stack label, verifies a signed token given with --metadata-file against the run's
// commit, and checks --metadata KEY=VALUE; a DESTROY run is a write run (WO mounts, wo_ variables)
// and a PROPOSED one a read-only run; `run list --active` shows runs in progress first, then the queue.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { createHmac } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createDockerClient } from "../../src/docker/client.ts";
import type { DockerClient } from "../../src/docker/types.ts";
import { ensureGitImage } from "../../scripts/testenv/images.ts";
import { buildBinaries, DemoWorld } from "../../scripts/demo/world.ts";
import { dockerTestEnv } from "../support/env.ts";
import { makeRepository, serveDumbHttp, type DumbHttpServer, type TestRepository } from "../support/git-repo.ts";

setDefaultTimeout(180_000);
const docker = dockerTestEnv();

interface RunJson { id: string; state: string; reason: string | null; worker: string | null; commit: string | null; branch: string | null; user_provided_metadata: string[] }

const quiet = () => {};
const SIGNING_SECRET = "e2e-signing-secret-5f1c";

const POLICY = `package spacelift
import future.keywords.in

deny[sprintf("stack label %s may not run on this pool", [l])] { some l in input.run.stack.labels; l == "frozen" }

deny["run is not signed for this commit"] { "signed" in input.run.stack.labels; not signed }
signed {
  some token in input.run.user_provided_metadata
  [valid, _, payload] := io.jwt.decode_verify(token, {"secret": "${SIGNING_SECRET}"})
  valid
  payload.sub == input.run.commit.hash
  payload.spacelift_stack == input.static_run_environment.stack_slug
}

deny["a change ticket (OPS-...) is required"] { "ticketed" in input.run.stack.labels; not ticketed }
ticketed {
  some m in input.run.user_provided_metadata
  json.is_valid(m)
  startswith(json.unmarshal(m).ticket, "OPS-")
}
`;

/** An HS256 JWT, as a CI system would sign a run it asks for. */
function hs256(payload: Record<string, unknown>, secret = SIGNING_SECRET): string {
  const part = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const body = `${part({ alg: "HS256", typ: "JWT" })}.${part(payload)}`;
  return `${body}.${createHmac("sha256", secret).update(body).digest("base64url")}`;
}

describe.skipIf(!docker)("run specs end to end: VCS agent pool, labels, commit, metadata, DESTROY", () => {
  let world: DemoWorld;
  let client: DockerClient;
  let http: DumbHttpServer;
  let repo: TestRepository;
  let gitImage = "";

  beforeAll(async () => {
    world = new DemoWorld(buildBinaries(quiet), docker!.host, quiet);
    client = createDockerClient({ host: docker!.host });
    gitImage = await ensureGitImage(client, quiet);
    repo = makeRepository(world.dir, join(world.dir, "served/agent/org/repo.git"));
    http = serveDumbHttp(join(world.dir, "served"));
    for (const [dir, marker] of [["wo-mount", "write-mount"], ["ro-mount", "read-only-mount"]] as const) {
      mkdirSync(join(world.dir, dir));
      writeFileSync(join(world.dir, dir, "marker"), `${marker}\n`);
    }
    writeFileSync(join(world.dir, "policy.rego"), POLICY);
    await world.startMothership();
    await world.createPool("run-specs");
    world.startLauncher({
      SPACELIFT_LAUNCHER_SCRATCH_DIR: join(world.dir, "scratch-specs"),
      SPACELIFT_METADATA_role: "specs",
      SPACELIFT_WORKER_NETWORK: "host",
      SPACELIFT_PRIVATEVCS_MAPPING_NAME_0: "corp-gitlab",
      SPACELIFT_PRIVATEVCS_MAPPING_BASE_ENDPOINT_0: `${http.url}/agent`,
      SPACELIFT_LAUNCHER_RUN_INITIALIZATION_POLICY: join(world.dir, "policy.rego"),
      SPACELIFT_WHITELIST_ENVS: "ro_PLAN_ONLY,wo_DEPLOY_KEY",
      PLAN_ONLY: "plan-value",
      DEPLOY_KEY: "deploy-value",
      SPACELIFT_WORKER_WO_EXTRA_MOUNTS: `${join(world.dir, "wo-mount")}:/mnt/wo:ro`,
      SPACELIFT_WORKER_RO_EXTRA_MOUNTS: `${join(world.dir, "ro-mount")}:/mnt/ro:ro`,
    });
    await world.waitFor("the worker", async () => (await world.workers()).length === 1);
  });

  afterAll(async () => {
    await world?.close();
    http?.stop();
    await client?.close();
  });

  const ended = (run: string) => world.runEnded<RunJson>(run, 90_000);
  const trigger = async (stack: string, args: string[] = []) => (await world.cliOk(["run", "trigger", stack, ...args])).trim();
  const stack = (name: string, image: string, phases: string[], extra: string[] = []) => world.stack(name, image, phases, extra);

  test("a stack with a VCS agent pool is cloned through the mapping, at the commit or the branch the trigger names", async () => {
    const s = await stack("vcs", gitImage, ["plan=cat infra/version; git rev-parse HEAD"], [
      "--repository", "https://vcs.example.invalid/org/repo.git", "--branch", "main", "--vcs-pool", "corp-gitlab", "--label", "team:infra",
    ]);
    expect(await world.json(["stack", "show", s])).toMatchObject({ vcs_pool: "corp-gitlab", labels: ["team:infra"], branch: "main" });

    const atCommit = await trigger(s, ["--commit", repo.first]);
    expect(await ended(atCommit)).toMatchObject({ state: "FINISHED", reason: "ok", commit: repo.first, branch: null });
    // Not the head of main (2): exactly the commit the trigger named, fetched from the mapped base URL.
    expect(await world.runLogs(atCommit)).toBe(`[spacelift-worker] cloning ${http.url}/agent/org/repo.git at ${repo.first}\n1\n${repo.first}\n`);

    const onBranch = await trigger(s, ["--branch", "feature"]);
    expect(await ended(onBranch)).toMatchObject({ state: "FINISHED", branch: "feature" });
    const log = await world.runLogs(onBranch);
    expect(log).toEndWith(`\nfeature\n${repo.feature}\n`);
    expect(log).not.toContain("vcs.example.invalid");
    // Only the mapping reached git: the placeholder host was never asked.
    expect(http.requests).toContain("/agent/org/repo.git/info/refs");
  });

  test("the run-initialization policy denies by stack label", async () => {
    const run = await trigger(await stack("frozen", docker!.image, ["plan=echo must not run"], ["--label", "frozen"]));
    expect(await ended(run)).toMatchObject({ state: "FAILED", reason: "policy-denied" });
    const log = await world.runLogs(run);
    expect(log).toContain("denied by the run initialization policy: stack label frozen may not run on this pool");
    expect(log).not.toContain("must not run");
  });

  test("the policy verifies a signed token given with --metadata-file against the run's commit", async () => {
    const s = await stack("signed", docker!.image, ["plan=echo signed run"], ["--label", "signed"]);
    const sha = "7d629c6c3f3b6da07e28a87727f0586e577d98c1";
    const good = world.privateFile("good.jwt", `${hs256({ sub: sha, spacelift_stack: s })}\n`);
    const run = await trigger(s, ["--commit", sha, "--metadata-file", good]);
    expect(await ended(run)).toMatchObject({ state: "FINISHED", reason: "ok", commit: sha });
    expect((await world.showRun<RunJson>(run)).user_provided_metadata).toEqual([hs256({ sub: sha, spacelift_stack: s })]);
    expect(await world.runLogs(run)).toBe("signed run\n");

    const otherCommit = world.privateFile("other.jwt", hs256({ sub: "0000000000000000000000000000000000000000", spacelift_stack: s }));
    const wrongKey = world.privateFile("forged.jwt", hs256({ sub: sha, spacelift_stack: s }, "not-the-secret"));
    for (const args of [["--commit", sha, "--metadata-file", otherCommit], ["--commit", sha, "--metadata-file", wrongKey], ["--commit", sha]]) {
      const denied = await trigger(s, args);
      expect(await ended(denied)).toMatchObject({ state: "FAILED", reason: "policy-denied" });
      expect(await world.runLogs(denied)).toContain("denied by the run initialization policy: run is not signed for this commit");
    }
  });

  test("the policy checks user-provided metadata given as --metadata KEY=VALUE", async () => {
    const s = await stack("ticketed", docker!.image, ["plan=echo ticketed run"], ["--label", "ticketed"]);
    const ok = await trigger(s, ["--metadata", "ticket=OPS-7", "--metadata", "team=infra"]);
    expect(await ended(ok)).toMatchObject({ state: "FINISHED", user_provided_metadata: ['{"ticket":"OPS-7","team":"infra"}'] });
    const denied = await trigger(s, ["--metadata", "ticket=JIRA-1"]);
    expect(await ended(denied)).toMatchObject({ state: "FAILED", reason: "policy-denied" });
    expect(await world.runLogs(denied)).toContain("a change ticket (OPS-...) is required");
    const bad = await world.cli(["run", "trigger", s, "--commit", "not-a-sha"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("--commit must be a commit hash");
  });

  test("a DESTROY run is a write run (WO mounts, wo_ variables); a PROPOSED run a read-only one", async () => {
    const probe = [
      "plan=echo deploy=${DEPLOY_KEY:-none} plan=${PLAN_ONLY:-none}",
      "plan=if [ -f /mnt/wo/marker ]; then cat /mnt/wo/marker; else echo no-wo-mount; fi",
      "plan=if [ -f /mnt/ro/marker ]; then cat /mnt/ro/marker; else echo no-ro-mount; fi",
    ];
    const s = await stack("destroy", docker!.image, probe);
    const destroy = await trigger(s, ["--type", "DESTROY"]);
    expect(await ended(destroy)).toMatchObject({ state: "FINISHED", reason: "ok" });
    expect(await world.runLogs(destroy)).toBe("deploy=deploy-value plan=none\nwrite-mount\nno-ro-mount\n");
    const proposed = await trigger(s, ["--type", "PROPOSED"]);
    expect(await ended(proposed)).toMatchObject({ state: "FINISHED", reason: "ok" });
    expect(await world.runLogs(proposed)).toBe("deploy=none plan=plan-value\nno-wo-mount\nread-only-mount\n");
  });

  test("run list --active: runs in progress first, then the queue in order", async () => {
    const long = await trigger(await stack("long", docker!.image, ["plan=echo started; sleep 30"]));
    await world.waitFor("the long run RUNNING", async () => (await world.showRun<RunJson>(long)).state === "RUNNING", 60_000);
    const quick = await stack("quick", docker!.image, ["plan=true"]);
    const first = await trigger(quick);
    const second = await trigger(quick);
    const active = await world.json<RunJson[]>(["run", "list", "--pool", world.pool, "--active"]);
    expect(active.map((r) => [r.id, r.state])).toEqual([[long, "RUNNING"], [first, "QUEUED"], [second, "QUEUED"]]);
    for (const r of [first, second, long]) await world.cliOk(["run", "cancel", r]);
    expect(await world.json<RunJson[]>(["run", "list", "--pool", world.pool, "--active"])).toSatisfy((runs) => runs.every((r) => r.id === long));
    expect(await ended(long)).toMatchObject({ state: "CANCELED" });
  });
});
