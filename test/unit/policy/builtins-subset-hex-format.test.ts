// object.subset, hex.encode/hex.decode and format_int beyond OPA's conformance cases: recursion into
// values, operand types, Go's hex errors, truncation and the base check.
import { describe, expect, test } from "bun:test";
import { rego, regoError } from "./rego-call.ts";

describe("object.subset", () => {
  test("shared keys whose values are sets or arrays are compared as subsets too", () => {
    expect(rego('object.subset({"a": {"s": {1, 2, 3}, "r": [1, 2, 3]}, "b": 1}, {"a": {"s": {3, 1}, "r": [2, 3]}})')).toBe(true);
    expect(rego('object.subset({"a": {"s": {1, 2}}}, {"a": {"s": {3}}})')).toBe(false);
    // Under a key, a set is not looked for inside an array (only at the top level).
    expect(rego('object.subset({"a": [1, 2]}, {"a": {1}})')).toBe(false);
    expect(rego('object.subset({"a": 1}, {"a": {"b": 1}})')).toBe(false);
  });
  test("arrays: a contiguous run in order", () => {
    expect(rego("object.subset([1, 2, 3, 4], [2, 3])")).toBe(true);
    expect(rego("object.subset([1, 2, 3, 4], [1, 3])")).toBe(false);
    expect(rego("object.subset([1, 2, 3], [3, 2])")).toBe(false);
    expect(rego("object.subset([1, 2], [1, 2, 3])")).toBe(false);
    expect(rego("object.subset([1, 2], [])")).toBe(true);
    expect(rego("object.subset([1, 2, 1, 2, 3], [1, 2, 3])")).toBe(true);
  });
  test("set members and array elements are compared whole, not as subsets", () => {
    expect(rego('object.subset({{"a": 1, "b": 2}}, {{"a": 1}})')).toBe(false);
    expect(rego('object.subset([{"a": 1, "b": 2}], [{"a": 1}])')).toBe(false);
    expect(rego("object.subset([1, 2, 3], {3, 1})")).toBe(true);
    expect(rego("object.subset([1, 2, 3], {4})")).toBe(false);
  });
  test("operands of different kinds (other than array and set) are a type error", () => {
    const want = { code: "eval_type_error", message: "object.subset: both arguments object.subset must be of the same type or array and set" };
    expect(regoError("object.subset({1, 2}, [1])")).toEqual(want);
    expect(regoError('object.subset({"a": 1}, [1])')).toEqual(want);
    expect(regoError("object.subset(input.a, input.b)", { input: { a: [1], b: { a: 1 } } })).toEqual(want);
    expect(rego("object.subset({1}, [1])", { strict: false })).toBe("undefined");
  });
  test("a scalar operand known at compile time is a type error there", () => {
    const e = regoError('object.subset("abc", "a")');
    expect(e.code).toBe("rego_type_error");
    expect(e.message).toStartWith("object.subset: invalid argument(s)");
  });
});

describe("hex", () => {
  test("hex.decode names the first byte that is not a hex digit, as Go does", () => {
    expect(regoError('hex.decode("0g")')).toEqual({ code: "eval_builtin_error", message: "hex.decode: encoding/hex: invalid byte: U+0067 'g'" });
    expect(regoError('hex.decode("zz0")').message).toBe("hex.decode: encoding/hex: invalid byte: U+007A 'z'");
    expect(regoError('hex.decode("a ")').message).toBe("hex.decode: encoding/hex: invalid byte: U+0020 ' '");
    // A control character has no printable form; a UTF-8 byte is shown as its Latin-1 character.
    expect(regoError('hex.decode("a\\n")').message).toBe("hex.decode: encoding/hex: invalid byte: U+000A");
    expect(regoError('hex.decode("ab\u00e9")').message).toBe("hex.decode: encoding/hex: invalid byte: U+00C3 'Ã'");
  });
  test("an odd number of valid digits is its own error; a bad last digit is named first", () => {
    expect(regoError('hex.decode("abc")')).toEqual({ code: "eval_builtin_error", message: "hex.decode: encoding/hex: odd length hex string" });
    expect(regoError('hex.decode("abx")').message).toBe("hex.decode: encoding/hex: invalid byte: U+0078 'x'");
  });
  test("both cases of digits decode; encode works on UTF-8 bytes", () => {
    expect(rego('hex.decode("4a4B")')).toBe("JK");
    expect(rego('hex.decode("")')).toBe("");
    expect(rego('hex.encode("é")')).toBe("c3a9");
    expect(rego('hex.decode(hex.encode("ünï"))')).toBe("ünï");
  });
  test("without strict errors invalid hex is undefined", () => {
    expect(rego('hex.decode("xyz")', { strict: false })).toBe("undefined");
  });
});

describe("format_int", () => {
  test("bases 2, 8, 10 and 16; lower-case digits and a minus sign", () => {
    expect(rego("[format_int(10, 2), format_int(64, 8), format_int(-255, 16), format_int(-255, 10)]")).toEqual(["1010", "100", "-ff", "-255"]);
  });
  test("fractions are truncated toward zero, also when negative", () => {
    expect(rego("[format_int(15.9, 10), format_int(-15.9, 16), format_int(-0.5, 2)]")).toEqual(["15", "-f", "0"]);
  });
  test("integers beyond 2^53 are exact", () => {
    expect(rego("format_int(18446744073709551617, 16)")).toBe("10000000000000001");
    expect(rego("format_int(1e20, 10)")).toBe("100000000000000000000");
  });
  test("any other base is a type error listing the bases", () => {
    const want = { code: "eval_type_error", message: "format_int: operand 2 must be one of {2, 8, 10, 16}" };
    expect(regoError("format_int(10, 3)")).toEqual(want);
    expect(regoError("format_int(10, 2.5)")).toEqual(want);
    expect(regoError("format_int(10, -16)")).toEqual(want);
    expect(rego("format_int(10, 36)", { strict: false })).toBe("undefined");
  });
  test("operands must be numbers", () => {
    expect(regoError("format_int(input.n, 10)", { input: { n: "10" } })).toEqual({ code: "eval_type_error", message: "format_int: operand 1 must be number but got string" });
    expect(regoError("format_int(10, input.b)", { input: { b: "16" } })).toEqual({ code: "eval_type_error", message: "format_int: operand 2 must be number but got string" });
  });
});
