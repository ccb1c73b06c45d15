// units.parse and units.parse_bytes beyond OPA's conformance cases: the error of each malformed
// amount, units OPA does not accept, rounding and truncation, and undefined results without strict errors.
import { describe, expect, test } from "bun:test";
import { rego, regoError } from "./rego-call.ts";

const builtinError = (message: string): { code: string; message: string } => ({ code: "eval_builtin_error", message });

describe("units.parse_bytes", () => {
  test("an empty amount, a unit alone or words are 'no byte amount provided'", () => {
    for (const s of ["", "GB", "foo", "KiB"]) expect(regoError(`units.parse_bytes(${JSON.stringify(s)})`)).toEqual(builtinError("units.parse_bytes: no byte amount provided"));
  });
  test("a malformed number is 'could not parse byte amount to a number'", () => {
    for (const s of ["0.0.0", ".5.2", "1e+", "5-3", "+-1k"]) {
      expect(regoError(`units.parse_bytes(${JSON.stringify(s)})`)).toEqual(builtinError("units.parse_bytes: could not parse byte amount to a number"));
    }
  });
  test("any space, also around the value, is refused", () => {
    for (const s of ["100 kb", " 327MiB ", "1 "]) expect(regoError(`units.parse_bytes(${JSON.stringify(s)})`)).toEqual(builtinError("units.parse_bytes: spaces not allowed in resource strings"));
  });
  test("an exponent of more than six digits is refused before any arithmetic", () => {
    expect(regoError('units.parse_bytes("1e1000000")')).toEqual(builtinError("units.parse_bytes: exponent too large"));
    expect(regoError('units.parse_bytes("2E-1234567KiB")')).toEqual(builtinError("units.parse_bytes: exponent too large"));
  });
  test("the unrecognized unit is named, lower-cased; a bare b (bytes) is not a unit", () => {
    expect(regoError('units.parse_bytes("10B")')).toEqual(builtinError("units.parse_bytes: byte unit b not recognized"));
    expect(regoError('units.parse_bytes("10XB")')).toEqual(builtinError("units.parse_bytes: byte unit xb not recognized"));
    expect(regoError('units.parse_bytes("10KiBs")')).toEqual(builtinError("units.parse_bytes: byte unit kibs not recognized"));
    // Not a property lookup on an object: only the listed units exist.
    expect(regoError('units.parse_bytes("1constructor")')).toEqual(builtinError("units.parse_bytes: byte unit constructor not recognized"));
  });
  test("fractions are truncated toward zero, also for negative amounts", () => {
    expect(rego('units.parse_bytes("1.9")')).toBe(1);
    expect(rego('units.parse_bytes("-1.9")')).toBe(-1);
    expect(rego('units.parse_bytes("1.5ki")')).toBe(1536);
    expect(rego('units.parse_bytes("0.3kb")')).toBe(300);
    expect(rego('units.parse_bytes("1e-3")')).toBe(0);
  });
  test("quotes are dropped and case does not matter; results beyond 2^53 stay exact integers", () => {
    expect(rego('units.parse_bytes("\\"2GiB\\"")')).toBe(2147483648);
    expect(rego('units.parse_bytes("16EIB")')).toBe(18446744073709551616n);
    expect(rego('units.parse_bytes("1e2eb")')).toBe(100000000000000000000n);
  });
  test("a non-string operand is a type error; without strict errors a bad amount is undefined", () => {
    expect(regoError("units.parse_bytes(input.x)", { input: { x: 10 } })).toEqual({ code: "eval_type_error", message: "units.parse_bytes: operand 1 must be string but got number" });
    expect(rego('units.parse_bytes("10 KB")', { strict: false })).toBe("undefined");
  });
});

describe("units.parse", () => {
  test("the errors name units.parse and its own wording", () => {
    expect(regoError('units.parse("")')).toEqual(builtinError("units.parse: no amount provided"));
    expect(regoError('units.parse("Ki")')).toEqual(builtinError("units.parse: no amount provided"));
    expect(regoError('units.parse("1.2.3")')).toEqual(builtinError("units.parse: could not parse amount to a number"));
    expect(regoError('units.parse("100 k")')).toEqual(builtinError("units.parse: spaces not allowed in resource strings"));
    expect(regoError('units.parse("10e10000000Ei")')).toEqual(builtinError("units.parse: exponent too large"));
  });
  test("only the unit's first letter keeps its case; byte suffixes are not units here", () => {
    expect(rego('units.parse("10MI")')).toBe(10485760);
    expect(rego('units.parse("10mI")')).toBe(10485760);
    expect(regoError('units.parse("10KB")')).toEqual(builtinError("units.parse: unit Kb not recognized"));
    expect(regoError('units.parse("10mb")')).toEqual(builtinError("units.parse: unit mb not recognized"));
    expect(regoError('units.parse("1b")')).toEqual(builtinError("units.parse: unit b not recognized"));
  });
  test("the unit is checked before the amount", () => {
    expect(regoError('units.parse("1.2.3Q")')).toEqual(builtinError("units.parse: unit Q not recognized"));
  });
  test("m is milli and M mega; a trailing e or E is exa, not an exponent", () => {
    expect(rego('units.parse("250m")')).toBe(0.25);
    expect(rego('units.parse("2M")')).toBe(2000000);
    expect(rego('units.parse("3e")')).toBe(3000000000000000000n);
    expect(rego('units.parse("2.5E")')).toBe(2500000000000000000n);
  });
  test("fractions are rounded to 10 decimal places, integers stay integers", () => {
    expect(rego('units.parse("1.23456789012345")')).toBe(1.2345678901);
    expect(rego('units.parse("0.00000000005")')).toBe(0.0000000001);
    expect(rego('units.parse("1.5Ki")')).toBe(1536);
    expect(rego('json.marshal(units.parse("1.5Ki"))')).toBe("1536");
  });
  test("milli multiplies by the double nearest 0.001, as OPA does", () => {
    // 1e10 * 0.001000000000000000020816... rounds to ...0000000002 at 10 places.
    expect(rego('json.marshal(units.parse("1e10m"))')).toBe("10000000.0000000002");
    expect(rego('units.parse("1m") == 0.001')).toBe(true);
  });
  test("huge exponents stay exact without building the digits", () => {
    expect(rego('units.parse("1e999999") > 1e308')).toBe(true);
    expect(rego('units.parse("1e-999999")')).toBe(0);
  });
  test("without strict errors a malformed amount is undefined", () => {
    expect(rego('units.parse("ten")', { strict: false })).toBe("undefined");
  });
});
