/**
 * yaml.marshal, yaml.unmarshal and yaml.is_valid with the semantics of OPA's YAML library (YAML 1.1
 * as go-yaml v2 reads it, converted to JSON):
 * - `yes`/`no`/`on`/`off`/`y`/`n` are booleans and `0777` is octal; timestamps stay strings;
 * - only the first document of a stream counts; a repeated key keeps its last value;
 * - mapping keys become strings (`1: a` is {"1": "a"}); a null or composite key, or a value JSON
 *   cannot hold (.inf, .nan), is an error, as in OPA;
 * - marshal writes what go-yaml v2 writes for the value's JSON: block style, keys in its order
 *   ("a9" before "a10"), sequences not indented under their key, strings that would read back as
 *   another type double-quoted, fractions as Go formats a float64 (1.5e+06).
 */
import { parseAllDocuments, stringify, type ScalarTag, type Tags } from "yaml";
import { isNum, type Num } from "../number.ts";
import { RObject, RSet, fromJS, toJSON, type Value } from "../value.ts";
import { builtinErr, register, str } from "./registry.ts";

/** YAML 1.1 tags left out: go-yaml v2 reads a timestamp into a plain value as a string and knows no ordered maps or sets. */
function without(names: string[]): (tags: Tags) => Tags {
  const drop = (t: Tags[number]): boolean => names.includes((typeof t === "string" ? t : t.tag).replace(/^tag:yaml\.org,2002:/, ""));
  return (tags) => tags.filter((t) => !drop(t));
}

const PARSE = { version: "1.1", intAsBigInt: true, uniqueKeys: false, merge: true, customTags: without(["timestamp", "binary", "omap", "pairs", "set"]) } as const;
// The timestamp tag stays when writing, so that "2001-12-14" is quoted and reads back as a string.
const EMIT = { version: "1.1", indentSeq: false, lineWidth: 0, singleQuote: false, customTags: (tags: Tags): Tags => [GO_FLOAT, ...without(["binary", "omap", "pairs", "set"])(tags)] } as const;

class YamlToJsonError extends Error {}

const INT64_MIN = -(2n ** 63n);
const UINT64_MAX = 2n ** 64n - 1n;

/** A parsed YAML value as a Rego value, as sigs.k8s.io/yaml's YAMLToJSON would convert it. */
function toValue(x: unknown): Value {
  if (typeof x === "number" && !Number.isFinite(x)) throw new YamlToJsonError(`json: unsupported value: ${Number.isNaN(x) ? "NaN" : x > 0 ? "+Inf" : "-Inf"}`);
  // go-yaml v2 reads an integer beyond int64/uint64 as a float64.
  if (typeof x === "bigint" && (x < INT64_MIN || x > UINT64_MAX)) return Number(x);
  if (Array.isArray(x)) return x.map(toValue);
  if (x instanceof Map) {
    const out = new RObject();
    for (const [k, v] of x as Map<unknown, unknown>) out.set(keyString(k), toValue(v));
    return out;
  }
  return fromJS(x);
}

function keyString(k: unknown): string {
  if (typeof k === "string") return k;
  if (typeof k === "bigint" || typeof k === "boolean") return String(k);
  if (typeof k === "number" && Number.isFinite(k)) return String(k);
  throw new YamlToJsonError(`unsupported map key of type ${k === null ? "null" : Array.isArray(k) ? "array" : typeof k}`);
}

/** The first document of the stream; a syntax error names its line like go-yaml (`yaml: line 3: ...`). */
function firstDocument(name: string, text: string): unknown {
  const docs = parseAllDocuments(text, PARSE);
  const doc = Array.isArray(docs) ? docs[0] : undefined;
  if (!doc) return null;
  const err = doc.errors[0];
  if (err) {
    const line = err.linePos?.[0].line;
    const what = err.message.split("\n")[0]?.replace(/ at line \d+, column \d+:?$/, "") ?? "invalid YAML";
    throw builtinErr(name, `error converting YAML to JSON: yaml: ${line === undefined ? "" : `line ${line}: `}${what}`);
  }
  return doc.toJS({ mapAsMap: true, maxAliasCount: 100 });
}

register("yaml.unmarshal", 1, (a) => {
  const name = "yaml.unmarshal";
  const parsed = firstDocument(name, str(name, a, 0));
  try {
    return toValue(parsed);
  } catch (e) {
    if (e instanceof YamlToJsonError) throw builtinErr(name, `error converting YAML to JSON: ${e.message}`);
    throw e;
  }
});

register("yaml.is_valid", 1, (a) => {
  if (typeof a[0] !== "string") return false;
  try {
    firstDocument("yaml.is_valid", a[0]);
    return true;
  } catch {
    return false;
  }
});

/** A number go-yaml v2 holds as a float64 (a fraction, or an integer beyond 64 bits). */
class GoFloat {
  constructor(readonly value: number) {}
}

/** Go's strconv.FormatFloat(f, 'g', -1, 64): shortest digits, exponent form below 1e-4 and from 1e6 (`1.5e+06`). */
function goFloatText(f: number): string {
  if (!Number.isFinite(f)) return Number.isNaN(f) ? ".nan" : f > 0 ? ".inf" : "-.inf";
  const [mantissa = "", e = "0"] = f.toExponential().split("e");
  const exp = Number(e);
  if (exp < -4 || exp >= 6) return `${mantissa}e${exp < 0 ? "-" : "+"}${String(Math.abs(exp)).padStart(2, "0")}`;
  return String(f);
}

const GO_FLOAT: ScalarTag = {
  identify: (v) => v instanceof GoFloat,
  default: true,
  tag: "tag:yaml.org,2002:float",
  resolve: (text) => Number(text),
  stringify: (item) => goFloatText((item.value as GoFloat).value),
};

function yamlNumber(n: Num): unknown {
  if (typeof n === "number") return Number.isInteger(n) && Math.abs(n) < 2 ** 63 ? n : new GoFloat(n);
  if (typeof n === "bigint") return n >= INT64_MIN && n <= UINT64_MAX ? n : new GoFloat(Number(n));
  return new GoFloat(Number(n.toString()));
}

/**
 * go-yaml v2's key order: runs of digits compare as numbers ("a2" before "a10"), and a character
 * that is not a letter sorts before one that is.
 */
function goKeyCompare(x: string, y: string): number {
  const a = [...x];
  const b = [...y];
  const isLetter = (c: string): boolean => /\p{L}/u.test(c);
  const isDigit = (c: string | undefined): boolean => c !== undefined && c >= "0" && c <= "9";
  for (let i = 0; i < a.length && i < b.length; i++) {
    const ca = a[i] as string;
    const cb = b[i] as string;
    if (ca === cb) continue;
    const al = isLetter(ca);
    const bl = isLetter(cb);
    if (al && bl) return ca < cb ? -1 : 1;
    if (al || bl) return bl ? -1 : 1;
    let an = 0n;
    let bn = 0n;
    if (ca === "0" || cb === "0") {
      for (let j = i - 1; j >= 0 && isDigit(a[j]); j--) {
        if (a[j] !== "0") {
          an = 1n;
          bn = 1n;
          break;
        }
      }
    }
    let ai = i;
    let bi = i;
    for (; isDigit(a[ai]); ai++) an = an * 10n + BigInt(a[ai] as string);
    for (; isDigit(b[bi]); bi++) bn = bn * 10n + BigInt(b[bi] as string);
    if (an !== bn) return an < bn ? -1 : 1;
    if (ai !== bi) return ai < bi ? -1 : 1;
    return ca < cb ? -1 : 1;
  }
  return a.length - b.length;
}

/** A Rego value as the JS structure the emitter takes: objects as Maps in go-yaml's key order, sets as arrays. */
function toYamlInput(v: Value): unknown {
  if (v === null || typeof v === "boolean" || typeof v === "string") return v;
  if (isNum(v)) return yamlNumber(v);
  if (Array.isArray(v)) return v.map(toYamlInput);
  if (v instanceof RSet) return v.values().map(toYamlInput);
  const entries = v.entries().map(([k, x]): [string, Value] => [typeof k === "string" ? k : toJSON(k), x]);
  entries.sort(([a], [b]) => goKeyCompare(a, b));
  return new Map(entries.map(([k, x]) => [k, toYamlInput(x)]));
}

register("yaml.marshal", 1, (a) => stringify(toYamlInput(a[0] as Value), EMIT));
