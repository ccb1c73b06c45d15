// Fault suite: seeded fuzzing of the Rego engine's front end (lexer, parser, compiler) on policy source,
// which operators write and the launcher reads at start: mutated valid policies and random text either
// compile or are refused with a PolicyError carrying a stable code and file:line:col — never another
// exception (a stack overflow on deep nesting included) and never a hang.
import { describe, expect, test } from "bun:test";
import { compilePolicy, PolicyError } from "../../src/policy/index.ts";
import { expectClearRejection, fuzz, mutate, randomString } from "./fuzz.ts";

const POLICIES = [
  `package spacelift\n\ndeny["no image"] { not input.run.runtime_config.runner_image }\n`,
  `package spacelift\nimport future.keywords.in\n\ndeny[msg] {\n  some label in input.run.stack.labels\n  startswith(label, "frozen:")\n  msg := sprintf("stack %s is frozen", [input.run.stack.id])\n}\n`,
  `package spacelift\nimport future.keywords.in\n\ndeny["run is not signed"] { not signed }\n\nsigned {\n  some token in input.run.user_provided_metadata\n  [valid, _, payload] := io.jwt.decode_verify(token, {"secret": "s"})\n  valid\n  payload.sub == input.run.commit.hash\n}\n`,
  `package spacelift\n\nallowed := {"a", "b"}\nlimits := {"x": [1, 2.5, -3e2], "y": null}\n\ndeny[m] { count(allowed) > 3; m := "too many" }\ndeny[m] { x := [y | y := numbers.range(1, 3)[_]; y > 1]; count(x) == 0; m := "none" }\n`,
  `package spacelift\n\ndefault ok := false\nok { input.a == "b" } else = true { input.c }\nf(x) = y { y := x * 2 }\ndeny[sprintf("%v", [f(1)])] { not ok; every v in [1] { v > 0 } }\n`,
];

describe("fuzz: Rego source", () => {
  test("compilePolicy: compiles or a PolicyError with file:line:col", async () => {
    const r = await fuzz(
      "rego-source",
      (rand, i) => (i < POLICIES.length ? POLICIES[i]! : rand() < 0.93 ? mutate(rand, POLICIES[Math.floor(rand() * POLICIES.length)]!, POLICIES) : `package p\n${randomString(rand, Math.floor(rand() * 200))}`),
      (source) => {
        try {
          compilePolicy(source, "fuzz.rego");
          return false;
        } catch (err) {
          expectClearRejection(err, PolicyError);
          if (!/fuzz\.rego:\d+(:\d+)?/.test((err as Error).message)) throw new Error(`a policy error without file:line: ${(err as Error).message}`);
          return true;
        }
      },
    );
    expect(r.rejected).toBeGreaterThan(r.inputs / 2);
    expect(r.rejected).toBeLessThan(r.inputs);
  });

  // Found by this fuzzer: deep nesting and long operator chains overflowed the stack (a RangeError at start).
  test.each([
    ["brackets 250 deep", `package p\nx := ${"[".repeat(250)}${"]".repeat(250)}`, /rego_parse_error: brackets nested more than 200 deep/],
    ["50,000 chained +", `package p\nx := ${"1 + ".repeat(50_000)}1`, /rego_parse_error: an expression is too deeply nested/],
    ["50,000 chained not", `package p\nx { ${"not ".repeat(50_000)}true }`, /rego_parse_error: an expression is too deeply nested/],
    ["50,000 unary minus", `package p\nx := ${"-".repeat(50_000)}1`, /rego_parse_error: an expression is too deeply nested/],
  ])("%s: a PolicyError naming the file", (_what, source, message) => {
    let caught: unknown;
    try {
      compilePolicy(source, "deep.rego");
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(PolicyError);
    expect((caught as Error).message).toMatch(/^deep\.rego:\d+:\d+: /);
    expect((caught as Error).message).toMatch(message);
  });
});
