/**
 * yaml.marshal, yaml.unmarshal and yaml.is_valid with the semantics of OPA's YAML library (YAML 1.1
 * as go-yaml v2 reads it, converted to JSON):
 * - `yes`/`no`/`on`/`off`/`y`/`n` are booleans and `0777` is octal; timestamps stay strings;
 * - only the first document of a stream counts; a repeated key keeps its last value;
 * - mapping keys become strings (`1: a` is {"1": "a"}); a null or composite key, or a value JSON
 *   cannot hold (.inf, .nan), is an error, as in OPA;
 * - marshal writes block style, keys sorted, sequences not indented under their key, strings that
 *   would read back as another type double-quoted.
 */
import { parseAllDocuments, stringify, type Tags } from "yaml";
import { BigDec, isNum } from "../number.ts";
import { RObject, RSet, fromJS, toJSON, type Value } from "../value.ts";
import { builtinErr, register, str } from "./registry.ts";

/** YAML 1.1 tags left out: go-yaml v2 reads a timestamp into a plain value as a string and knows no ordered maps or sets. */
function without(names: string[]): (tags: Tags) => Tags {
  const drop = (t: Tags[number]): boolean => names.includes((typeof t === "string" ? t : t.tag).replace(/^tag:yaml\.org,2002:/, ""));
  return (tags) => tags.filter((t) => !drop(t));
}

const PARSE = { version: "1.1", intAsBigInt: true, uniqueKeys: false, merge: true, customTags: without(["timestamp", "binary", "omap", "pairs", "set"]) } as const;
// The timestamp tag stays when writing, so that "2001-12-14" is quoted and reads back as a string.
const EMIT = { version: "1.1", indentSeq: false, lineWidth: 0, singleQuote: false, customTags: without(["binary", "omap", "pairs", "set"]) } as const;

class YamlToJsonError extends Error {}

/** A parsed YAML value as a Rego value, as sigs.k8s.io/yaml's YAMLToJSON would convert it. */
function toValue(x: unknown): Value {
  if (typeof x === "number" && !Number.isFinite(x)) throw new YamlToJsonError(`json: unsupported value: ${Number.isNaN(x) ? "NaN" : x > 0 ? "+Inf" : "-Inf"}`);
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

/** A Rego value as the JS structure the emitter takes: objects as Maps (keys in Rego order), sets as arrays. */
function toYamlInput(v: Value): unknown {
  if (v === null || typeof v === "boolean" || typeof v === "string") return v;
  if (isNum(v)) return v instanceof BigDec ? Number(v.toString()) : v;
  if (Array.isArray(v)) return v.map(toYamlInput);
  if (v instanceof RSet) return v.values().map(toYamlInput);
  const out = new Map<string, unknown>();
  for (const [k, x] of v.entries()) out.set(typeof k === "string" ? k : toJSON(k), toYamlInput(x));
  return out;
}

register("yaml.marshal", 1, (a) => stringify(toYamlInput(a[0] as Value), EMIT));
