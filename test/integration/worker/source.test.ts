import { afterEach, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { makeRepository } from "../../support/git-repo.ts";
import { type Sandbox, runSpec, runWorker, sandbox, writeInstructions } from "./harness.ts";

let box: Sandbox;
afterEach(() => box.cleanup());

const stack = { id: "s", name: "S", branch: "main", repository: "org/repo", project_root: "infra" };
const readVersion = [{ name: "planning", commands: ["cat version", "pwd"] }];

describe("worker source", () => {
  test("clones the branch head into the source dir and runs in the project root", async () => {
    box = sandbox();
    const bare = join(box.dir, "remote/org/repo.git");
    makeRepository(box.dir, bare);
    writeInstructions(box, runSpec(readVersion, { stack, source: { repository_url: `file://${bare}`, branch: "feature" } }));
    const result = await runWorker(box);
    expect(result.stderr).toContain(`cloning file://${bare}`);
    expect(result.code).toBe(0);
    expect(result.events).toEqual([{ phase: "planning" }, { out: `feature\n${join(box.workspace, "source/infra")}\n` }]);
  });

  test("checks out the exact commit", async () => {
    box = sandbox();
    const bare = join(box.dir, "remote/org/repo.git");
    const { first } = makeRepository(box.dir, bare);
    writeInstructions(box, runSpec(readVersion, { stack, source: { repository_url: `file://${bare}`, branch: "main", commit: first } }));
    const result = await runWorker(box, { args: ["--source-dir", join(box.dir, "elsewhere")] });
    expect(result.code).toBe(0);
    expect(result.events).toEqual([{ phase: "planning" }, { out: `1\n${join(box.dir, "elsewhere/infra")}\n` }]);
  });

  test("rewrites the repository base URL through the VCS agent pool mapping", async () => {
    box = sandbox();
    makeRepository(box.dir, join(box.dir, "agent/prefix/org/repo.git"));
    const source = { repository_url: "https://gitlab.corp.example/org/repo.git", branch: "main", vcs_agent_pool: "corp-gitlab" };
    writeInstructions(box, runSpec(readVersion, { stack, source }), { "corp-gitlab": `file://${box.dir}/agent/prefix/` });
    const result = await runWorker(box);
    expect(result.stderr).toContain(`cloning file://${box.dir}/agent/prefix/org/repo.git`);
    expect(result.code).toBe(0);
    expect(result.events[1]).toEqual({ out: `2\n${join(box.workspace, "source/infra")}\n` });
  });

  test("an unknown VCS agent pool fails the run with a clear message and runs nothing", async () => {
    box = sandbox();
    const source = { repository_url: "https://gitlab.corp.example/org/repo.git", vcs_agent_pool: "nowhere" };
    writeInstructions(box, runSpec(readVersion, { stack, source }), { "corp-gitlab": "https://agent.local" });
    const result = await runWorker(box);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('VCS agent pool "nowhere", which this worker pool does not map');
    expect(result.stderr).toContain('mapped pools: "corp-gitlab"');
    expect(result.stdout).toBe("");
  });

  test("a clone that fails fails the run with git's status", async () => {
    box = sandbox();
    writeInstructions(box, runSpec(readVersion, { stack, source: { repository_url: `file://${box.dir}/missing.git` } }));
    const result = await runWorker(box);
    expect(result.code).toBe(128);
    expect(result.stderr).toContain("fetching the source failed (git exit status 128)");
    expect(result.stdout).toBe("");
  });
});
