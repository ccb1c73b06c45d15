// Focused tests of the lexer, parser, v0/v1 detection, compile-time checks and the evaluator.
import { describe, expect, test } from "bun:test";
import { createHmac } from "node:crypto";
import { compilePolicy, evaluate, evaluateInitPolicy, PolicyError } from "../../../src/policy/index.ts";
import { toJS } from "../../../src/policy/value.ts";
import { lex } from "../../../src/policy/lexer.ts";
import { parseModule } from "../../../src/policy/version.ts";

function q(src: string, query: string, input?: unknown): unknown[] {
  return evaluate(compilePolicy(src, "p.rego"), query, input).map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, toJS(v)])));
}

function compileErr(src: string): PolicyError {
  try {
    compilePolicy(src, "p.rego");
  } catch (e) {
    if (e instanceof PolicyError) return e;
    throw e;
  }
  throw new Error("expected a compile error");
}

describe("lexer", () => {
  test("tokens carry line and column; raw strings keep backslashes", () => {
    const toks = lex('p := `a\\d`\nq := "x\\n"', "f.rego");
    expect(toks.map((t) => t.text)).toEqual(["p", ":=", "`a\\d`", "q", ":=", '"x\\n"', ""]);
    expect(toks[2]?.str).toBe("a\\d");
    expect(toks[5]?.str).toBe("x\n");
    expect(toks[3]?.loc).toEqual({ file: "f.rego", line: 2, col: 1 });
  });
});

describe("v0 / v1 detection", () => {
  test("a rule body without if is v0, and p[x] { } is a partial set", () => {
    const m = parseModule("package a\ndeny[msg] { msg := \"no\" }", "a.rego");
    expect(m.regoVersion).toBe(0);
    expect(m.rules[0]?.kind).toBe("set");
  });
  test("import rego.v1 and if/contains make v1; p[x] if is an object", () => {
    expect(parseModule("package a\nimport rego.v1\ndeny contains 1 if true", "a.rego").regoVersion).toBe(1);
    expect(parseModule("package a\np[x] if x := 1", "a.rego").rules[0]?.kind).toBe("complete");
    expect(q("package a\np[x] if x := \"k\"", "x := data.a.p")).toEqual([{ x: { k: true } }]);
  });
  test("future.keywords import and deprecated built-ins make v0", () => {
    expect(parseModule("package a\nimport future.keywords.in\np if 1 in [1]", "a.rego").regoVersion).toBe(0);
    expect(parseModule('package a\np := re_match("a", "a")', "a.rego").regoVersion).toBe(0);
  });
  test("rego.v1 with a v0 body is a parse error with a location", () => {
    const e = compileErr("package a\nimport rego.v1\np { true }");
    expect(e.code).toBe("rego_parse_error");
    expect(e.errors[0]).toMatchObject({ file: "p.rego", line: 3, col: 3 });
  });
});

describe("compile-time checks", () => {
  test("unsafe variables", () => {
    const e = compileErr("package a\np if {\n  x > 1\n}");
    expect(e.code).toBe("rego_unsafe_var_error");
    expect(e.message).toBe("p.rego:3:3: rego_unsafe_var_error: var x is unsafe");
  });
  test("recursion", () => expect(compileErr("package a\np if q\nq if p").code).toBe("rego_recursion_error"));
  test("unknown function and arity", () => {
    expect(compileErr("package a\np := nope(1)").code).toBe("rego_type_error");
    expect(compileErr('package a\np := count("a", "b", "c")').message).toContain("arity mismatch");
  });
  test("type conflicts: a built-in operand whose type is known and wrong", () => {
    expect(compileErr("package a\np if {\n  count(1) > 0\n}").message).toBe(
      "p.rego:3:3: rego_type_error: count: invalid argument(s): operand 1 is a number, want one of array, object, set, string",
    );
    expect(compileErr('package a\np := x if {\n  x := 1 + "a"\n}').message).toContain("p.rego:3:10: rego_type_error: plus: invalid argument(s): operand 2 is a string");
    // Types flow through variables bound earlier in the body, through comprehensions and built-in results.
    expect(compileErr('package a\ndeny contains m if {\n  s := "abc"\n  n := count(s)\n  m := concat(",", n)\n}').message).toContain("concat: invalid argument(s): operand 2 is a number");
    expect(compileErr("package a\np if {\n  xs := [x | x := input.a[_]]\n  startswith(xs, \"a\")\n}").message).toContain("startswith: invalid argument(s): operand 1 is an array");
    expect(compileErr('package a\np if {\n  {x | x := 1}\n  lower(sprintf("%v", "a"))\n}').message).toContain("sprintf: invalid argument(s): operand 2 is a string, want an array");
  });
  test("type checks leave unknown types to the evaluator", () => {
    // input, data, iteration and function arguments have no static type here.
    expect(q('package a\np := count(input.x)\nf(x) := upper(x)\nq := f("a")', "p = data.a.p; q = data.a.q", { x: [1, 2] })).toEqual([{ p: 2, q: "A" }]);
    // `with` may replace a built-in by a function of other types.
    expect(q('package a\nmock(_) := "n"\np if {\n  upper(1) == "n" with upper as mock\n}', "x = data.a.p")).toEqual([{ x: true }]);
  });
  test("conflicting rules: one path as a value and as a set, or functions of two arities", () => {
    expect(compileErr('package a\np := 1\np contains "x"').message).toBe("p.rego:2:1: rego_type_error: conflicting rules data.a.p found");
    expect(compileErr("package a\nf(x) := x\nf(x, y) := y").code).toBe("rego_type_error");
  });
  test("bodies are reordered so bindings come first", () => {
    expect(q("package a\np contains y if {\n  y > 1\n  y := input.xs[_]\n}", "x := data.a.p", { xs: [1, 2, 3] })).toEqual([{ x: [2, 3] }]);
  });
});

describe("evaluator", () => {
  test("else, default, functions with several bodies", () => {
    const src = `package a
default d := "none"
f(x) := "neg" if x < 0
f(x) := "pos" if x > 0
g(x) := 1 if { x == "a" } else := 2 if { x == "b" } else := 3
`;
    expect(q(src, "x := [data.a.d, data.a.f(-1), data.a.f(2), data.a.g(\"b\"), data.a.g(\"z\")]")).toEqual([{ x: ["none", "neg", "pos", 2, 3] }]);
  });
  test("every, some-in, comprehensions, with", () => {
    const src = `package a
import rego.v1
allok if every x in input.xs { x > 0 }
pairs := {k: v | some k, v in {"a": 1, "b": 2}}
p if {
  allok with input.xs as [1, 2]
}
`;
    expect(q(src, "x := [data.a.pairs, data.a.p]", { xs: [-1] })).toEqual([{ x: [{ a: 1, b: 2 }, true] }]);
    expect(q(src, "data.a.allok", { xs: [-1] })).toEqual([]);
  });
  test("integers beyond 2^53 stay exact", () => {
    expect(q("package a\np := 9007199254740993 + 2", "x := data.a.p")).toEqual([{ x: 9007199254740995n }]);
  });
  test("conflicting complete rules raise eval_conflict_error", () => {
    expect(() => q("package a\np := 1\np := 2", "x := data.a.p")).toThrow(PolicyError);
  });
  test("a runaway policy raises eval_timeout", () => {
    const policy = compilePolicy("package a\np := count([x | some a in numbers.range(1, 2000); some b in numbers.range(1, 2000); x := a * b])", "p.rego");
    let code = "";
    try {
      evaluate(policy, "x := data.a.p", {}, { timeoutMs: 50 });
    } catch (e) {
      if (e instanceof PolicyError) code = e.code;
    }
    expect(code).toBe("eval_timeout");
  });
});

describe("Spacelift init policies", () => {
  test("v0 deny[msg] and v1 deny contains, sorted messages, sample", () => {
    const v0 = compilePolicy('package spacelift\ndeny["b"] { true }\ndeny[sprintf("img %s", [input.docker_image])] { input.docker_image != "ok" }\nsample { true }', "i.rego");
    expect(evaluateInitPolicy(v0, { docker_image: "x" })).toEqual({ deny: ["b", "img x"], sample: true, outcome: "deny" });
    const v1 = compilePolicy('package spacelift\nimport rego.v1\ndeny contains "no" if input.run.type == "TASK"', "i.rego");
    expect(evaluateInitPolicy(v1, { run: { type: "PROPOSED" } })).toEqual({ deny: [], sample: false, outcome: "allow" });
  });
  test("sanitized hashes strings", () => {
    const p = compilePolicy('package spacelift\ndeny[sanitized("secret")] { true }', "i.rego");
    const r = evaluateInitPolicy(p, {});
    expect(r.deny[0]).toMatch(/^[0-9a-f]{8}$/);
  });
  test("signed-run policy verifying an HS256 JWT from user-provided metadata", () => {
    const b64 = (x: string | Buffer): string => Buffer.from(x).toString("base64url");
    const unsigned = `${b64('{"alg":"HS256","typ":"JWT"}')}.${b64('{"sub":"run"}')}`;
    const token = `${unsigned}.${b64(createHmac("sha256", "secret").update(unsigned).digest())}`;
    const forged = `${unsigned}.${b64(createHmac("sha256", "other").update(unsigned).digest())}`;
    const src = `package spacelift
import future.keywords.in
deny["run is not signed"] {
  not signed
}
signed {
  some meta in input.run.user_provided_metadata
  io.jwt.verify_hs256(meta, "secret")
}`;
    const p = compilePolicy(src, "s.rego");
    expect(evaluateInitPolicy(p, { run: { user_provided_metadata: [] } }).deny).toEqual(["run is not signed"]);
    expect(evaluateInitPolicy(p, { run: { user_provided_metadata: [forged] } }).outcome).toBe("deny");
    expect(evaluateInitPolicy(p, { run: { user_provided_metadata: [token] } })).toEqual({ deny: [], sample: false, outcome: "allow" });
  });
});
