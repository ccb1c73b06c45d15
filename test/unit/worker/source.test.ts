import { describe, expect, test } from "bun:test";
import { hasCode } from "../../../src/errors.ts";
import { cloneUrl, displayUrl, gitCommands } from "../../../src/worker/source.ts";

describe("clone URL", () => {
  test("without a VCS agent pool the repository URL is used as is", () => {
    expect(cloneUrl({ repository_url: "https://github.com/org/repo.git" }, { corp: "http://agent" })).toBe("https://github.com/org/repo.git");
  });

  test("a VCS agent pool replaces scheme, host and port, keeping the path", () => {
    const source = { repository_url: "https://gitlab.corp:8443/group/sub/repo.git", vcs_agent_pool: "corp" };
    expect(cloneUrl(source, { corp: "http://10.0.0.5:8080" })).toBe("http://10.0.0.5:8080/group/sub/repo.git");
    expect(cloneUrl(source, { corp: "http://agent/prefix/" })).toBe("http://agent/prefix/group/sub/repo.git");
  });

  test("an unknown pool is a clear, coded error; inherited object keys are not pools", () => {
    for (const pool of ["other", "constructor", "__proto__"]) {
      let error: unknown;
      try {
        cloneUrl({ repository_url: "https://x/r.git", vcs_agent_pool: pool }, { corp: "http://agent" });
      } catch (e) {
        error = e;
      }
      expect(hasCode(error, "vcs-pool-unknown")).toBe(true);
      expect((error as Error).message).toContain('mapped pools: "corp"');
    }
  });

  test("credentials never reach the run log", () => {
    expect(displayUrl("https://user:tok3n@git.example/r.git")).toBe("https://git.example/r.git");
    expect(displayUrl("file:///srv/r.git")).toBe("file:///srv/r.git");
  });
});

describe("git commands", () => {
  test("a branch head is one clone", () => {
    expect(gitCommands({ repository_url: "u", branch: "dev" }, "URL", "/dir")).toEqual([["clone", "--quiet", "--branch", "dev", "--", "URL", "/dir"]]);
  });

  test("a commit is checked out detached after a clone without checkout", () => {
    expect(gitCommands({ repository_url: "u", commit: "abc123" }, "URL", "/dir")).toEqual([
      ["clone", "--quiet", "--no-checkout", "--", "URL", "/dir"],
      ["-C", "/dir", "-c", "advice.detachedHead=false", "checkout", "--quiet", "--detach", "abc123"],
    ]);
  });
});
