// json.unmarshal reads JSON as OPA does: numbers exact, Go's decoder errors.
import { describe, expect, test } from "bun:test";
import { rego, regoError } from "./rego-call.ts";

describe("json.unmarshal", () => {
  test("numbers beyond a double stay exact", () => {
    expect(rego("json.unmarshal(input.s)", { input: { s: '{"n": 12345678901234567890, "f": [0.1, -2e3]}' } })).toEqual({ n: 12345678901234567890n, f: [0.1, -2000] });
  });
  test("malformed input gets Go's decoder message", () => {
    const e = (s: string): string => regoError("json.unmarshal(input.s)", { input: { s } }).message;
    expect(e("")).toBe("json.unmarshal: EOF");
    expect(e('{"a": 1')).toBe("json.unmarshal: unexpected EOF");
    expect(e("{'a': 1}")).toBe("json.unmarshal: invalid character '\\'' looking for beginning of object key string");
    expect(e("[1 2]")).toBe("json.unmarshal: invalid character '2' after array element");
    expect(e("{} x")).toBe("json.unmarshal: invalid character 'x' looking for beginning of value");
    expect(rego("json.unmarshal(input.s)", { input: { s: "nope" }, strict: false })).toBe("undefined");
  });
});
