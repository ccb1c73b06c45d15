// `spacelift-launcher policy eval`, run as operators run it: the launcher's source entry in a child
// process, with real files; exit codes, stdout JSON and one-line errors on stderr.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const root = join(import.meta.dir, "../../..");
const bun = join(root, "node_modules/.bin/bun");
const dir = mkdtempSync(join(tmpdir(), "policy-eval-cli-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

async function launcher(...args: string[]): Promise<Result> {
  const proc = Bun.spawn([bun, "src/launcher/main.ts", ...args], { cwd: root, stdout: "pipe", stderr: "pipe", env: { PATH: process.env.PATH ?? "/usr/bin:/bin" } });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, stdout, stderr };
}

const policy = file(
  "init.rego",
  `package spacelift
import future.keywords.in

allowed := {"registry.internal:5000"}

deny[sprintf("image %s is not from an allowed registry", [input.docker_image])] {
  not some_allowed
}

deny["commit message says WIP"] { contains(input.run.commit.message, "WIP") }

some_allowed { some r in allowed; startswith(input.docker_image, concat("", [r, "/"])) }

sample { input.run.type == "PROPOSED" }
`,
);
const noSample = file("nosample.rego", 'package spacelift\ndeny["always"] { true }\n');
const input = (docker_image: string, message: string, type = "TRACKED") =>
  JSON.stringify({ docker_image, run: { id: "01JABCDEFGHJKMNPQRSTVWXYZ0", type, commit: { message } }, static_run_environment: {}, worker_version: "dev" });
const allowInput = file("allow.json", input("registry.internal:5000/runner:1", "Update main.tf"));
const denyInput = file("deny.json", input("docker.io/evil:latest", "WIP: try", "PROPOSED"));

describe("spacelift-launcher policy eval", () => {
  test("allowed: exit 0 and {deny: [], outcome: allow, sample}", async () => {
    const r = await launcher("policy", "eval", "--policy", policy, "--input", allowInput);
    expect(r).toMatchObject({ code: 0, stderr: "" });
    expect(r.stdout.endsWith("\n")).toBe(true);
    expect(JSON.parse(r.stdout)).toEqual({ deny: [], outcome: "allow", sample: false });
  });

  test("denied: still exit 0 (the evaluation worked); messages sorted; sample true", async () => {
    const r = await launcher("policy", "eval", "--policy", policy, "--input", denyInput);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({
      deny: ["commit message says WIP", "image docker.io/evil:latest is not from an allowed registry"],
      outcome: "deny",
      sample: true,
    });
  });

  test("no sample key when the policy has no sample rule", async () => {
    const r = await launcher("policy", "eval", "--policy", noSample, "--input", allowInput);
    expect(JSON.parse(r.stdout)).toEqual({ deny: ["always"], outcome: "deny" });
  });

  test("--query prints the query's result set as JSON", async () => {
    const r = await launcher("policy", "eval", "--policy", policy, "--input", denyInput, "--query", "x := data.spacelift.deny; n := count(x)");
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual([{ x: ["commit message says WIP", "image docker.io/evil:latest is not from an allowed registry"], n: 2 }]);
    const none = await launcher("policy", "eval", "--policy", policy, "--input", allowInput, "--query", "data.spacelift.deny[_] == \"x\"");
    expect(JSON.parse(none.stdout)).toEqual([]);
  });

  test("an invalid policy: exit 1, file:line:col and the error on stderr, nothing on stdout", async () => {
    const bad = file("bad.rego", "package spacelift\n\ndeny[msg] {\n  count(input.run) > limit\n}\n");
    const r = await launcher("policy", "eval", "--policy", bad, "--input", allowInput);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(new RegExp(`^${bad.replace(/[.]/g, "\\.")}:\\d+:\\d+: rego_unsafe_var_error: var (msg|limit) is unsafe`));
  });

  test("an invalid query is an error with a location too", async () => {
    const r = await launcher("policy", "eval", "--policy", policy, "--input", allowInput, "--query", "x := ");
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("rego_parse_error");
  });

  test("bad usage and unreadable inputs: exit 1 with a message", async () => {
    const missingArg = await launcher("policy", "eval", "--policy", policy);
    expect(missingArg.code).toBe(1);
    expect(missingArg.stderr).toContain("usage: spacelift-launcher policy eval --policy FILE --input FILE");
    const unknown = await launcher("policy", "eval", "--policy", policy, "--input", allowInput, "--verbose");
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain("unknown argument --verbose");
    const notJson = await launcher("policy", "eval", "--policy", policy, "--input", file("bad.json", "{not json"));
    expect(notJson.code).toBe(1);
    expect(notJson.stdout).toBe("");
    const missing = await launcher("policy", "eval", "--policy", join(dir, "nope.rego"), "--input", allowInput);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("nope.rego");
  });

  test("--help prints the usage and exits 0; the command is listed in the launcher's help", async () => {
    const help = await launcher("policy", "--help");
    expect(help.code).toBe(0);
    expect(help.stdout).toStartWith("usage: spacelift-launcher policy eval --policy FILE --input FILE [--query QUERY]");
    const top = await launcher("--help");
    expect(top.stdout).toMatch(/^\s+policy\s+evaluate a run-initialization policy/m);
  });
});
