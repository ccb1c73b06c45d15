/**
 * Rego v0 vs v1. Spacelift accepts both, so we read a module as v0 when it uses a v0-only form
 * (a rule body without `if`, a `future.keywords` import, a deprecated built-in) and as v1 when it
 * imports `rego.v1` or uses v1-only forms. The only semantic difference we must honour is the meaning
 * of `p[x] { ... }` (v0: a partial set; v1 `p[x] if ...`: an object mapping x to true).
 */
import type { Module, Rule, Term } from "./ast.ts";
import { parseError } from "./errors.ts";
import { Parser, refToPath, type RawRule } from "./parser.ts";

const deprecatedBuiltins = new Set([
  "re_match", "any", "all", "set_diff", "cast_array", "cast_set", "cast_string", "cast_boolean", "cast_null", "cast_object", "net.cidr_overlap",
]);

export function parseModule(src: string, file: string): Module {
  const parser = new Parser(src, file);
  const { module, rules } = parser.parseModule();
  const version = detectVersion(module.imports.map((i) => refToPath(i.path)?.join(".") ?? ""), parser.facts, rules);
  if (version === 1 && parser.facts.bodyWithoutIf && module.imports.some((i) => refToPath(i.path)?.join(".") === "rego.v1")) {
    throw parseError("`if` keyword is required before rule body", parser.facts.bodyWithoutIf);
  }
  const final = rules.map((r) => finalize(r, version));
  return { ...module, rules: final, regoVersion: version };
}

function detectVersion(imports: string[], facts: { bodyWithoutIf?: unknown }, rules: Rule[]): 0 | 1 {
  if (imports.includes("rego.v1")) return 1;
  if (imports.some((i) => i === "future.keywords" || i.startsWith("future.keywords."))) return 0;
  if (facts.bodyWithoutIf) return 0;
  if (rules.some((r) => usesDeprecated(r))) return 0;
  return 1;
}

function finalize(r: RawRule, version: 0 | 1): Rule {
  const { implicitValue, ...rule } = r;
  // v0 `p[x] { ... }` is a partial set whose element is x.
  if (version === 0 && implicitValue && rule.kind === "complete" && rule.ref.length === 2 && !rule.isDefault) {
    const key = rule.ref[1] as Term;
    return { ...rule, kind: "set", ref: [rule.ref[0] as Term], key };
  }
  return rule;
}

function usesDeprecated(r: Rule): boolean {
  let found = false;
  const visit = (x: unknown): void => {
    if (found || x === null || typeof x !== "object") return;
    if (Array.isArray(x)) {
      for (const y of x) visit(y);
      return;
    }
    const t = x as { type?: string; op?: Term };
    if (t.type === "call" && t.op) {
      const name = refToPath(t.op)?.join(".");
      if (name && deprecatedBuiltins.has(name)) found = true;
    }
    for (const [k, v] of Object.entries(x)) if (k !== "loc" && k !== "module") visit(v);
  };
  visit([r.body, r.value, r.key, r.elseRule]);
  return found;
}
