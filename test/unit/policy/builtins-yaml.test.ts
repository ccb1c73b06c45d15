// yaml.marshal, yaml.unmarshal and yaml.is_valid beyond OPA's conformance cases: YAML 1.1 scalars as
// OPA's go-yaml reads them, keys made strings, values JSON cannot hold, and the text marshal writes.
import { describe, expect, test } from "bun:test";
import { rego, regoError } from "./rego-call.ts";

const unmarshal = (text: string, strict = true): unknown => rego("yaml.unmarshal(input.y)", { input: { y: text }, strict });

describe("yaml.unmarshal", () => {
  test("YAML 1.1 scalars: yes/no/on/off are booleans, 0777 is octal, timestamps stay strings", () => {
    expect(unmarshal("a: yes\nb: Off\nc: 0777\nd: 2001-12-14\ne: 0x1F\nf: ~\ng: 1.5\nh: '1'")).toEqual({ a: true, b: false, c: 511, d: "2001-12-14", e: 31, f: null, g: 1.5, h: "1" });
  });
  test("keys become strings; integers are exact up to 64 bits, floats beyond", () => {
    expect(unmarshal("1: a\ntrue: b\n2.5: c\nu: 18446744073709551615\nf: 123456789012345678901234567890")).toEqual({ "1": "a", true: "b", "2.5": "c", u: 18446744073709551615n, f: 1.2345678901234568e29 });
  });
  test("anchors, aliases and merge keys; a repeated key keeps its last value", () => {
    expect(unmarshal("base: &b {p: 1, q: 2}\nd:\n  <<: *b\n  q: 3\nk: 1\nk: 2")).toEqual({ base: { p: 1, q: 2 }, d: { p: 1, q: 3 }, k: 2 });
  });
  test("only the first document counts; empty input is null", () => {
    expect(unmarshal("a: 1\n---\nb: 2\n")).toEqual({ a: 1 });
    expect(unmarshal("")).toBe(null);
  });
  test("values JSON cannot hold and keys that cannot be strings are errors", () => {
    expect(regoError("yaml.unmarshal(input.y)", { input: { y: "a: .inf" } })).toEqual({ code: "eval_builtin_error", message: "yaml.unmarshal: error converting YAML to JSON: json: unsupported value: +Inf" });
    expect(regoError("yaml.unmarshal(input.y)", { input: { y: "~: 1" } }).message).toStartWith("yaml.unmarshal: error converting YAML to JSON: unsupported map key");
    expect(regoError("yaml.unmarshal(input.y)", { input: { y: "? [1, 2]\n: x" } }).message).toStartWith("yaml.unmarshal: error converting YAML to JSON: unsupported map key");
  });
  test("a syntax error names the line; without strict errors it is undefined", () => {
    const e = regoError("yaml.unmarshal(input.y)", { input: { y: "a: 1\nb: [1, 2\n" } });
    expect(e.code).toBe("eval_builtin_error");
    expect(e.message).toStartWith("yaml.unmarshal: error converting YAML to JSON: yaml: line 3: ");
    expect(unmarshal("a: [", false)).toBe("undefined");
  });
  test("a non-string operand is a type error", () => {
    expect(regoError("yaml.unmarshal(input.y)", { input: { y: 1 } })).toEqual({ code: "eval_type_error", message: "yaml.unmarshal: operand 1 must be string but got number" });
    expect(regoError("yaml.unmarshal(1)").code).toBe("rego_type_error");
  });
});

describe("yaml.is_valid", () => {
  test("syntax decides; values yaml.unmarshal refuses are still valid YAML", () => {
    expect(rego("yaml.is_valid(input.y)", { input: { y: "a: .inf\n~: 1" } })).toBe(true);
    expect(rego("yaml.is_valid(input.y)", { input: { y: "a: {b: 1" } })).toBe(false);
    expect(rego("yaml.is_valid(input.y)", { input: { y: "- a\nb: c" } })).toBe(false);
    expect(rego("yaml.is_valid(input.y)", { input: { y: ["a"] } })).toBe(false);
  });
});

describe("yaml.marshal", () => {
  test("block style, sequences not indented under their key, sets as sequences", () => {
    expect(rego('yaml.marshal({"b": [1, {"c": true}], "a": {"p", "q"}, "e": {}, "f": []})')).toBe("a:\n- p\n- q\nb:\n- 1\n- c: true\ne: {}\nf: []\n");
  });
  test("strings that would read back as another type are double-quoted", () => {
    expect(rego('yaml.marshal({"a": "yes", "b": "1", "c": "", "d": "null", "e": "2001-12-14", "f": "x: y", "g": "plain text"})')).toBe(
      'a: "yes"\nb: "1"\nc: ""\nd: "null"\ne: "2001-12-14"\nf: "x: y"\ng: plain text\n',
    );
  });
  test("multi-line strings are literal blocks; non-string keys are written as their JSON text", () => {
    expect(rego('yaml.marshal({"m": "l1\\nl2", 1: null})')).toBe('"1": null\nm: |-\n  l1\n  l2\n');
  });
  test("what yaml.marshal writes yaml.unmarshal reads back", () => {
    expect(rego('yaml.unmarshal(yaml.marshal({"a": ["yes", "on", 1, 2.5, null, {"k": "v: w"}], "n": 18446744073709551615}))')).toEqual({
      a: ["yes", "on", 1, 2.5, null, { k: "v: w" }],
      n: 18446744073709551615n,
    });
  });
  test("numbers are written as go-yaml writes int64/uint64 and float64 values", () => {
    expect(rego('yaml.marshal([1234567.5, 0.00001, 0.5, 123456.5, -9223372036854775808, 18446744073709551616])')).toBe(
      "- 1.2345675e+06\n- 1e-05\n- 0.5\n- 123456.5\n- -9223372036854775808\n- 1.8446744073709552e+19\n",
    );
  });
  test("keys in go-yaml's order: digit runs by value, other characters before letters", () => {
    expect(rego('yaml.marshal({"a10": 1, "a9": 2, "B": 3, "_x": 4, "a": 5})')).toBe("_x: 4\nB: 3\na: 5\na9: 2\na10: 1\n");
  });
});
