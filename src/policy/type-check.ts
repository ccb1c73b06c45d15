/**
 * Compile-time type conflicts, as OPA's type checker reports them (`rego_type_error`):
 * - a built-in called with an operand whose type is known at compile time and wrong
 *   (`count(1)`, `1 + "a"`, `startswith(x, 2)` where `x := "abc"`), and
 * - conflicting rules: one path defined both as a single value and as a set, as a function and as
 *   a rule, or as functions of different arity.
 * Types are inferred only where they are certain: literals, comprehensions, built-ins with a fixed
 * result type, and variables bound to such terms earlier in the same body. Everything else (input,
 * data, iteration) is "any" and never raises an error here; the evaluator checks it at run time.
 */
import type { Expr, Rule, Term } from "./ast.ts";
import type { RuleNode } from "./compiler.ts";
import type { PolicyErrorDetail } from "./errors.ts";
import { isNum } from "./number.ts";
import { refToPath } from "./parser.ts";
import { typeOf, type TypeName } from "./value.ts";

type Ty = TypeName | undefined;
type Sig = { args: (readonly TypeName[] | null)[]; ret?: TypeName };

const S = ["string"] as const;
const N = ["number"] as const;
const A = ["array"] as const;
const O = ["object"] as const;
const COLL = ["array", "set"] as const;

/** Operand types of the built-ins policies use most; `null` = any type. */
const sigs: Record<string, Sig> = {
  count: { args: [["array", "object", "set", "string"]], ret: "number" },
  sum: { args: [COLL], ret: "number" },
  product: { args: [COLL], ret: "number" },
  max: { args: [COLL] },
  min: { args: [COLL] },
  sort: { args: [COLL], ret: "array" },
  plus: { args: [N, N], ret: "number" },
  mul: { args: [N, N], ret: "number" },
  div: { args: [N, N], ret: "number" },
  rem: { args: [N, N], ret: "number" },
  minus: { args: [["number", "set"], ["number", "set"]] },
  and: { args: [["set"], ["set"]], ret: "set" },
  or: { args: [["set"], ["set"]], ret: "set" },
  abs: { args: [N], ret: "number" },
  round: { args: [N], ret: "number" },
  ceil: { args: [N], ret: "number" },
  floor: { args: [N], ret: "number" },
  equal: { args: [null, null], ret: "boolean" },
  neq: { args: [null, null], ret: "boolean" },
  lt: { args: [null, null], ret: "boolean" },
  lte: { args: [null, null], ret: "boolean" },
  gt: { args: [null, null], ret: "boolean" },
  gte: { args: [null, null], ret: "boolean" },
  concat: { args: [S, COLL], ret: "string" },
  contains: { args: [S, S], ret: "boolean" },
  startswith: { args: [S, S], ret: "boolean" },
  endswith: { args: [S, S], ret: "boolean" },
  indexof: { args: [S, S], ret: "number" },
  lower: { args: [S], ret: "string" },
  upper: { args: [S], ret: "string" },
  split: { args: [S, S], ret: "array" },
  replace: { args: [S, S, S], ret: "string" },
  substring: { args: [S, N, N], ret: "string" },
  sprintf: { args: [S, A], ret: "string" },
  trim: { args: [S, S], ret: "string" },
  trim_left: { args: [S, S], ret: "string" },
  trim_right: { args: [S, S], ret: "string" },
  trim_prefix: { args: [S, S], ret: "string" },
  trim_suffix: { args: [S, S], ret: "string" },
  trim_space: { args: [S], ret: "string" },
  format_int: { args: [N, N], ret: "string" },
  "strings.reverse": { args: [S], ret: "string" },
  "strings.count": { args: [S, S], ret: "number" },
  "strings.replace_n": { args: [O, S], ret: "string" },
  "regex.match": { args: [S, S], ret: "boolean" },
  re_match: { args: [S, S], ret: "boolean" },
  "regex.split": { args: [S, S], ret: "array" },
  "regex.replace": { args: [S, S, S], ret: "string" },
  "glob.match": { args: [S, ["array", "null"], S], ret: "boolean" },
  "object.get": { args: [O, null, null] },
  "object.keys": { args: [O], ret: "set" },
  "object.remove": { args: [O, ["array", "object", "set"]], ret: "object" },
  "object.union": { args: [O, O], ret: "object" },
  "object.subset": { args: [["array", "object", "set"], ["array", "object", "set"]], ret: "boolean" },
  "array.concat": { args: [A, A], ret: "array" },
  "array.slice": { args: [A, N, N], ret: "array" },
  "array.reverse": { args: [A], ret: "array" },
  "json.marshal": { args: [null], ret: "string" },
  "json.unmarshal": { args: [S] },
  "json.is_valid": { args: [S], ret: "boolean" },
  "yaml.marshal": { args: [null], ret: "string" },
  "yaml.unmarshal": { args: [S] },
  "yaml.is_valid": { args: [S], ret: "boolean" },
  "base64.encode": { args: [S], ret: "string" },
  "base64.decode": { args: [S], ret: "string" },
  "base64url.encode": { args: [S], ret: "string" },
  "base64url.decode": { args: [S], ret: "string" },
  "hex.encode": { args: [S], ret: "string" },
  "hex.decode": { args: [S], ret: "string" },
  "urlquery.encode": { args: [S], ret: "string" },
  "urlquery.decode": { args: [S], ret: "string" },
  "crypto.md5": { args: [S], ret: "string" },
  "crypto.sha1": { args: [S], ret: "string" },
  "crypto.sha256": { args: [S], ret: "string" },
  "io.jwt.decode": { args: [S], ret: "array" },
  "io.jwt.decode_verify": { args: [S, O], ret: "array" },
  "io.jwt.verify_hs256": { args: [S, S], ret: "boolean" },
  "net.cidr_contains": { args: [S, S], ret: "boolean" },
  "semver.is_valid": { args: [null], ret: "boolean" },
  "semver.compare": { args: [S, S], ret: "number" },
  "time.now_ns": { args: [], ret: "number" },
  "time.parse_rfc3339_ns": { args: [S], ret: "number" },
  "time.parse_duration_ns": { args: [S], ret: "number" },
  "units.parse": { args: [S], ret: "number" },
  "units.parse_bytes": { args: [S], ret: "number" },
  to_number: { args: [["null", "boolean", "number", "string"]], ret: "number" },
  type_name: { args: [null], ret: "string" },
  "numbers.range": { args: [N, N], ret: "array" },
};
for (const t of ["string", "number", "boolean", "array", "object", "set", "null"]) sigs[`is_${t}`] = { args: [null], ret: "boolean" };

const a = (t: TypeName): string => (/^[aeio]/.test(t) ? `an ${t}` : `a ${t}`);

/** Built-in operand types of every rule body, head and comprehension. */
export function checkTypes(rule: Rule, errors: PolicyErrorDetail[]): void {
  const env = new Map<string, TypeName>();
  body(rule.body, env, errors);
  for (const t of [rule.value, rule.key]) if (t) term(t, env, errors);
}

function body(exprs: Expr[], env: Map<string, TypeName>, errors: PolicyErrorDetail[]): void {
  for (const e of exprs) {
    // `with` may replace a built-in by a function of other types; leave such expressions alone.
    if (e.with.some((w) => !["input", "data"].includes(refToPath(w.target)?.[0] ?? ""))) continue;
    switch (e.kind) {
      case "term":
        term(e.term, env, errors);
        break;
      case "assign":
      case "unify": {
        const l = term(e.left, env, errors);
        const r = term(e.right, env, errors);
        // After a successful `x := t` or `x = t`, x has t's type.
        if (e.left.type === "var" && r && (e.kind === "assign" || !env.has(e.left.name))) env.set(e.left.name, r);
        if (e.kind === "unify" && e.right.type === "var" && l && !env.has(e.right.name)) env.set(e.right.name, l);
        break;
      }
      case "somein":
      case "every":
        term(e.domain, env, errors);
        if (e.kind === "every") body(e.body, new Map(env), errors);
        break;
      case "not":
        body([e.expr], new Map(env), errors);
        break;
      case "some":
        for (const v of e.vars) if (v.type === "var") env.delete(v.name);
        break;
    }
  }
}

/** Checks the calls inside `t` and returns its type when it is certain. */
function term(t: Term, env: Map<string, TypeName>, errors: PolicyErrorDetail[]): Ty {
  switch (t.type) {
    case "scalar":
      return isNum(t.value) ? "number" : typeOf(t.value);
    case "var":
      return env.get(t.name);
    case "ref":
      term(t.head, env, errors);
      for (const p of t.path) term(p, env, errors);
      return undefined;
    case "array":
    case "set":
      for (const x of t.items) term(x, env, errors);
      return t.type;
    case "object":
      for (const [k, v] of t.items) {
        term(k, env, errors);
        term(v, env, errors);
      }
      return "object";
    case "arraycomp":
    case "setcomp":
    case "objcomp": {
      const inner = new Map(env);
      body(t.body, inner, errors);
      for (const x of t.type === "objcomp" ? [t.key, t.value] : [t.term]) term(x, inner, errors);
      return t.type === "arraycomp" ? "array" : t.type === "setcomp" ? "set" : "object";
    }
    case "call":
      return call(t, env, errors);
  }
}

function call(t: Term & { type: "call" }, env: Map<string, TypeName>, errors: PolicyErrorDetail[]): Ty {
  const types = t.args.map((x) => term(x, env, errors));
  const name = refToPath(t.op)?.join(".");
  const sig = name === undefined ? undefined : sigs[name];
  if (!sig) return undefined;
  for (let i = 0; i < sig.args.length; i++) {
    const want = sig.args[i];
    const have = types[i];
    if (want && have && !want.includes(have)) {
      const wanted = want.length === 1 ? a(want[0] as TypeName) : `one of ${want.join(", ")}`;
      errors.push({ ...t.loc, code: "rego_type_error", message: `${name}: invalid argument(s): operand ${i + 1} is ${a(have)}, want ${wanted}` });
      return undefined;
    }
  }
  if (name === "minus" && types[0]) return types[0];
  return sig.ret;
}

/** One path must be one kind of thing: a single value, a set, or functions of one arity. */
export function checkConflicts(node: RuleNode, errors: PolicyErrorDetail[]): void {
  const arities = new Set(node.funcs.map((f) => f.args?.length ?? 0));
  const kinds = [node.complete.length > 0, node.sets.length > 0, node.funcs.length > 0].filter(Boolean).length;
  if (kinds > 1 || arities.size > 1) {
    const first = node.complete[0] ?? node.sets[0] ?? node.funcs[0];
    if (first) errors.push({ ...first.loc, code: "rego_type_error", message: `conflicting rules ${node.path.join(".")} found` });
  }
  for (const c of node.children.values()) checkConflicts(c, errors);
}
