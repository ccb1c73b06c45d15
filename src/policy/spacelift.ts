/**
 * Spacelift run-initialization policies: the messages of `deny` (a set in v0 `deny[msg] { }` and v1
 * `deny contains msg if`), the optional `sample` rule, and Spacelift's `sanitized(x)` helper.
 */
import { createHash } from "node:crypto";
import { runQuery, type CompiledPolicy, type EvalOptions } from "./engine.ts";
import { RObject, RSet, fromJS, toJSON, type Value } from "./value.ts";

export interface InitPolicyResult {
  /** Deny messages, sorted. */
  deny: string[];
  /** The policy asks for the evaluation to be sampled (printed with its input). */
  sample: boolean;
  outcome: "allow" | "deny";
}

/**
 * Spacelift's sanitization: a string becomes the first 8 hex digits of its SHA-256 (the form the
 * Spacelift docs show for sanitized resource values); collections are sanitized element-wise.
 */
export function sanitized(x: Value): Value {
  if (typeof x === "string") return createHash("sha256").update(x).digest("hex").slice(0, 8);
  if (Array.isArray(x)) return x.map(sanitized);
  if (x instanceof RSet) return RSet.from(x.values().map(sanitized));
  if (x instanceof RObject) return RObject.from(x.entries().map(([k, v]) => [k, sanitized(v)]));
  return x;
}

function ruleRef(policy: CompiledPolicy, name: string): string {
  return ["data", ...policy.pkg, name].map((p, i) => (i === 0 ? p : /^[A-Za-z_][A-Za-z0-9_]*$/.test(p) ? p : JSON.stringify(p))).join(".").replace(/\."/g, '["').replace(/"(?=\.|$)/g, '"]');
}

function messages(v: Value | undefined): string[] {
  if (v === undefined) return [];
  // v1 `deny[msg] if` builds an object keyed by the message.
  const items = v instanceof RSet ? v.values() : v instanceof RObject ? v.keys() : Array.isArray(v) ? v : [v];
  return items.map((m) => (typeof m === "string" ? m : toJSON(m))).sort();
}

export function evaluateInitPolicy(policy: CompiledPolicy, input: unknown, opts: EvalOptions = {}): InitPolicyResult {
  const doc = fromJS(input);
  const options: EvalOptions = { ...opts, builtins: { sanitized: (x: Value) => sanitized(x), ...(opts.builtins ?? {}) } };
  const denyRows = runQuery(policy, `x := ${ruleRef(policy, "deny")}`, doc, options);
  const sampleRows = runQuery(policy, `x := ${ruleRef(policy, "sample")}`, doc, options);
  const deny = messages(denyRows[0]?.["x"]);
  const sample = sampleRows[0]?.["x"] === true;
  return { deny, sample, outcome: deny.length > 0 ? "deny" : "allow" };
}
