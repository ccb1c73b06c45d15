/** Rejects recursive rules (rego_recursion_error), as OPA does at compile time. */
import type { Rule, Term } from "./ast.ts";
import type { RuleNode } from "./compiler.ts";
import type { PolicyErrorDetail } from "./errors.ts";
import { mapBody, mapTerms } from "./walk.ts";

function ruleNodes(n: RuleNode, out: RuleNode[] = []): RuleNode[] {
  if (n.hasRules() || n.funcs.length > 0) out.push(n);
  for (const c of n.children.values()) ruleNodes(c, out);
  return out;
}

function refsOf(rule: Rule): Term[] {
  const out: Term[] = [];
  const f = (t: Term): undefined => {
    if (t.type === "ref" && t.head.type === "var" && t.head.name === "data") out.push(t);
    return undefined;
  };
  for (let x: Rule | undefined = rule; x; x = x.elseRule) {
    mapTerms(x.value, f);
    if (x.key) mapTerms(x.key, f);
    x.ref.forEach((t) => mapTerms(t, f));
    mapBody(x.body, f);
    for (const e of x.body) for (const w of e.with) mapTerms(w.target, f);
  }
  return out;
}

/** Rule nodes a data ref may evaluate. */
function targets(root: RuleNode, ref: Term & { type: "ref" }): RuleNode[] {
  const out: RuleNode[] = [];
  let node: RuleNode | undefined = root;
  for (const p of ref.path) {
    if (node.hasRules() || node.funcs.length > 0) out.push(node);
    if (p.type === "scalar" && typeof p.value === "string") {
      node = node.children.get(p.value);
      if (!node) return out;
    } else if (p.type === "scalar") {
      return out;
    } else {
      return [...out, ...ruleNodes(node)];
    }
  }
  return [...out, ...ruleNodes(node)];
}

export function checkRecursion(root: RuleNode): PolicyErrorDetail[] {
  const nodes = ruleNodes(root);
  const edges = new Map<RuleNode, Set<RuleNode>>();
  for (const n of nodes) {
    const rules = [...n.complete, ...n.sets, ...n.funcs, ...n.dynamic.map((d) => d.rule), ...(n.defaultRule ? [n.defaultRule] : [])];
    const set = new Set<RuleNode>();
    for (const r of rules) for (const ref of refsOf(r)) for (const t of targets(root, ref as Term & { type: "ref" })) set.add(t);
    edges.set(n, set);
  }
  const state = new Map<RuleNode, 1 | 2>();
  const errors: PolicyErrorDetail[] = [];
  const stack: RuleNode[] = [];
  const visit = (n: RuleNode): void => {
    state.set(n, 1);
    stack.push(n);
    for (const m of edges.get(n) ?? []) {
      const s = state.get(m);
      if (s === 1) {
        const cycle = stack.slice(stack.indexOf(m)).concat([m]).map((x) => x.path.join("."));
        const rule = m.complete[0] ?? m.sets[0] ?? m.funcs[0] ?? m.dynamic[0]?.rule ?? m.defaultRule;
        const loc = rule?.loc ?? { file: "", line: 0, col: 0 };
        errors.push({ ...loc, message: `rule ${m.path.join(".")} is recursive: ${cycle.join(" -> ")}`, code: "rego_recursion_error" });
      } else if (s === undefined) visit(m);
    }
    stack.pop();
    state.set(n, 2);
  };
  for (const n of nodes) if (!state.has(n)) visit(n);
  return errors;
}
