/** JSON, base64, base64url, hex and URL query encodings. */
import { toJSON, toJS, RObject, RSet, type Value } from "../value.ts";
import { BuiltinError } from "../errors.ts";
import { builtinErr, obj, register, str, typeErr } from "./registry.ts";
import { parseGoJSON } from "./go-json.ts";

/** As OPA's util.UnmarshalJSON: numbers exact, Go's error text. */
function parseJSON(name: string, s: string): Value {
  const r = parseGoJSON(s);
  if ("error" in r) throw builtinErr(name, r.error);
  return r.value;
}

register("json.marshal", 1, (a) => toJSON(a[0] as Value));
register("json.unmarshal", 1, (a) => parseJSON("json.unmarshal", str("json.unmarshal", a, 0)));
register("json.is_valid", 1, (a) => {
  if (typeof a[0] !== "string") return false;
  try {
    JSON.parse(a[0]);
    return true;
  } catch {
    return false;
  }
});
register("json.marshal_with_options", 2, (a) => {
  const opts = obj("json.marshal_with_options", a, 1);
  for (const k of opts.keys()) {
    if (k !== "pretty" && k !== "indent" && k !== "prefix") throw new BuiltinError("eval_type_error", `json.marshal_with_options: object contained unknown key ${JSON.stringify(k)}`);
  }
  const indent = opts.get("indent");
  const prefix = opts.get("prefix");
  const pretty = opts.get("pretty") === false ? false : opts.get("pretty") === true || indent !== undefined || prefix !== undefined;
  if (!pretty) return toJSON(a[0] as Value);
  const text = JSON.stringify(toJS(a[0] as Value), (_k, v: unknown) => (typeof v === "bigint" ? Number(v) : v), typeof indent === "string" ? indent : "\t");
  const p = typeof prefix === "string" ? prefix : "";
  return text.split("\n").map((l) => p + l).join("\n");
});

const strict64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
register("base64.encode", 1, (a) => Buffer.from(str("base64.encode", a, 0)).toString("base64"));
register("base64.decode", 1, (a) => {
  const s = str("base64.decode", a, 0);
  if (!strict64.test(s)) throw builtinErr("base64.decode", "illegal base64 data at input byte 0");
  return Buffer.from(s, "base64").toString("utf8");
});
register("base64.is_valid", 1, (a) => typeof a[0] === "string" && strict64.test(a[0]));
register("base64url.encode", 1, (a) => Buffer.from(str("base64url.encode", a, 0)).toString("base64url").padEnd(Math.ceil(Buffer.from(str("base64url.encode", a, 0)).toString("base64url").length / 4) * 4, "="));
register("base64url.encode_no_pad", 1, (a) => Buffer.from(str("base64url.encode_no_pad", a, 0)).toString("base64url"));
register("base64url.decode", 1, (a) => {
  const s = str("base64url.decode", a, 0);
  if (!/^[A-Za-z0-9_-]*={0,2}$/.test(s) || s.replace(/=+$/, "").length % 4 === 1) throw builtinErr("base64url.decode", "illegal base64 data at input byte 0");
  return Buffer.from(s, "base64url").toString("utf8");
});
register("hex.encode", 1, (a) => Buffer.from(str("hex.encode", a, 0)).toString("hex"));
/** Go's %#U of one byte: `U+0067 'g'`, the character only when printable. */
function goRune(b: number): string {
  const code = "U+" + b.toString(16).toUpperCase().padStart(4, "0");
  const printable = (b >= 0x20 && b < 0x7f) || (b > 0xa0 && b !== 0xad);
  return printable ? `${code} '${String.fromCharCode(b)}'` : code;
}
/** Go's hex.DecodeString: the first byte that is not a hex digit is named, else an odd length is the error. */
register("hex.decode", 1, (a) => {
  const s = str("hex.decode", a, 0);
  const bytes = Buffer.from(s, "utf8");
  const isHex = (b: number): boolean => (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66);
  const bad = bytes.findIndex((b) => !isHex(b));
  if (bad >= 0) throw builtinErr("hex.decode", `encoding/hex: invalid byte: ${goRune(bytes[bad] as number)}`);
  if (bytes.length % 2 === 1) throw builtinErr("hex.decode", "encoding/hex: odd length hex string");
  return Buffer.from(s, "hex").toString("utf8");
});

const q = (s: string): string => encodeURIComponent(s).replace(/%20/g, "+").replace(/[!'()*~]/g, (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase()).replace(/%7E/g, "~");
register("urlquery.encode", 1, (a) => q(str("urlquery.encode", a, 0)));
register("urlquery.decode", 1, (a) => {
  try {
    return decodeURIComponent(str("urlquery.decode", a, 0).replace(/\+/g, " "));
  } catch {
    throw builtinErr("urlquery.decode", "invalid URL escape");
  }
});
register("urlquery.encode_object", 1, (a) => {
  const o = obj("urlquery.encode_object", a, 0);
  const parts: string[] = [];
  for (const [k, v] of o.entries()) {
    if (typeof k !== "string") throw typeErr("urlquery.encode_object", 1, "object[string]", o);
    const vals = typeof v === "string" ? [v] : Array.isArray(v) ? v : v instanceof RSet ? v.values() : undefined;
    if (!vals) throw typeErr("urlquery.encode_object", 1, "object[string, string|array|set]", o);
    for (const x of vals) parts.push(`${q(k)}=${q(String(x))}`);
  }
  return parts.join("&");
});
register("urlquery.decode_object", 1, (a) => {
  const out = new RObject();
  for (const part of str("urlquery.decode_object", a, 0).split("&")) {
    if (!part) continue;
    const [k = "", v = ""] = part.split("=");
    const key = decodeURIComponent(k.replace(/\+/g, " "));
    const prev = out.get(key);
    out.set(key, [...(Array.isArray(prev) ? prev : []), decodeURIComponent(v.replace(/\+/g, " "))]);
  }
  return out;
});
