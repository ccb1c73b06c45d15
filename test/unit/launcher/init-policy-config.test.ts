// The initialization policy at configuration load: parsed and checked once, an invalid policy is ONE
// line naming SPACELIFT_LAUNCHER_RUN_INITIALIZATION_POLICY with file:line:col; exec() is opt-in.
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError, describeConfig, formatProblem, loadLauncherConfig, type LauncherConfig } from "../../../src/config/launcher-config.ts";

const dir = mkdtempSync(join(tmpdir(), "init-policy-config-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const POLICY = "SPACELIFT_LAUNCHER_RUN_INITIALIZATION_POLICY";
const EXEC = "SPACELIFT_LAUNCHER_RUN_INITIALIZATION_POLICY_EXEC_ENABLED";

function policyFile(name: string, source: string): string {
  const path = join(dir, name);
  writeFileSync(path, source);
  return path;
}

function load(env: Record<string, string>): LauncherConfig {
  return loadLauncherConfig({ PATH: "/usr/bin", ...env }, { requireCredentials: false });
}

/** The problem lines of a failing load, as the launcher and `check` print them. */
function problems(env: Record<string, string>): string[] {
  try {
    load(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems.map(formatProblem);
    throw err;
  }
  throw new Error("expected the configuration to be refused");
}

test("a valid policy is compiled at load and kept in the frozen config", () => {
  const path = policyFile("ok.rego", 'package spacelift\ndeny["no"] { input.run.type == "TASK" }\n');
  const c = load({ [POLICY]: path });
  expect(c.runInitializationPolicyPath).toBe(path);
  expect(c.runInitializationPolicy?.path).toBe(path);
  expect(c.runInitializationPolicy?.compiled.pkg).toEqual(["spacelift"]);
  expect(c.runInitializationPolicyExecEnabled).toBe(false);
  expect(Object.isFrozen(c)).toBe(true);
  expect(Object.isFrozen(c.runInitializationPolicy)).toBe(true);
  // Serializing the config names the policy instead of dumping its syntax tree.
  expect(JSON.parse(JSON.stringify(c)).runInitializationPolicy).toEqual({ path, execEnabled: false });
});

test.each([
  ["syntax error", "package spacelift\ndeny[\"x\"] {\n  input.run.type ==\n}\n", /syntax-error\.rego:4:1: rego_parse_error: /],
  ["unsafe variable", "package spacelift\ndeny[msg] {\n  input.run.type == \"TASK\"\n  other > 1\n}\n", /unsafe-variable\.rego:4:3: rego_unsafe_var_error: var other is unsafe/],
  ["unknown function", "package spacelift\ndeny[\"x\"] { not_a_builtin(input.run) }\n", /unknown-function\.rego:2:13: rego_type_error: .*not_a_builtin/],
  ["wrong arity", "package spacelift\ndeny[\"x\"] { startswith(input.run.id) }\n", /wrong-arity\.rego:2:13: rego_type_error: startswith: arity mismatch/],
  ["recursion", "package spacelift\ndeny[\"x\"] { a }\na { b }\nb { a }\n", /recursion\.rego:\d+:\d+: rego_recursion_error: /],
])("%s: ONE line naming the variable, with file:line:col", (name, source, expected) => {
  const file = `${name.replace(/ /g, "-")}.rego`;
  const lines = problems({ [POLICY]: policyFile(file, source) });
  expect(lines).toHaveLength(1);
  const line = lines[0] ?? "";
  expect(line).not.toContain("\n");
  expect(line).toStartWith(`${POLICY}: is not a valid policy: ${join(dir, file)}:`);
  expect(line).toMatch(expected);
  expect(line).toContain("spacelift-launcher policy eval"); // how to try the fix
});

test("several errors: the first with its location, and how many more", () => {
  const lines = problems({ [POLICY]: policyFile("many.rego", "package spacelift\ndeny[\"a\"] { x > 1 }\ndeny[\"b\"] { y > 1 }\n") });
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/many\.rego:2:\d+: rego_unsafe_var_error: var x is unsafe \(and 1 more error\)/);
});

test("a policy calling exec() is refused unless the operator enabled it, at the call's location", () => {
  const path = policyFile("exec.rego", 'package spacelift\n\ndeny["bad signature"] {\n  exec(["/usr/local/bin/verify", input.run.id]).status != 0\n}\n');
  const lines = problems({ [POLICY]: path });
  expect(lines).toEqual([`${POLICY}: ${path}:4:3: the policy calls exec(), which is disabled; set ${EXEC}=true to let the policy run commands on this host`]);
  const c = load({ [POLICY]: path, [EXEC]: "true" });
  expect(c.runInitializationPolicyExecEnabled).toBe(true);
  expect(c.runInitializationPolicy?.execEnabled).toBe(true);
  expect(problems({ [POLICY]: path, [EXEC]: "no" })).toHaveLength(1);
});

test("a malformed exec flag is reported once, on its own variable", () => {
  const path = policyFile("exec2.rego", 'package spacelift\ndeny["x"] { exec(["true"]).status != 0 }\n');
  const lines = problems({ [POLICY]: path, [EXEC]: "maybe" });
  expect(lines).toEqual([`${EXEC}: "maybe" is not a boolean; use true or false (also 1/0, yes/no)`]);
});

test("an unreadable path is still a path problem, not a policy one", () => {
  expect(problems({ [POLICY]: join(dir, "missing.rego") })).toEqual([
    `${POLICY}: "${join(dir, "missing.rego")}" does not exist; give the path of a readable .rego file, e.g. /etc/spacelift/init-policy.rego`,
  ]);
});

test("check's effective configuration shows the exec switch next to a policy", () => {
  const path = policyFile("plain.rego", "package spacelift\n");
  const rows = Object.fromEntries(describeConfig(load({ [POLICY]: path })));
  expect(rows[POLICY]).toBe(path);
  expect(rows[EXEC]).toBe("false (default)");
  expect(Object.fromEntries(describeConfig(load({ [POLICY]: path, [EXEC]: "yes" })))[EXEC]).toBe("true");
  expect(Object.keys(Object.fromEntries(describeConfig(load({}))))).not.toContain(EXEC);
});
