/** Generic term traversal used by the compiler passes. */
import type { Expr, Term } from "./ast.ts";

/**
 * Rebuilds `t` bottom-up... top-down: `f` may return a replacement for a node (its children are then
 * not visited) or undefined to descend. With `descendBodies` false, comprehension bodies are skipped.
 */
export function mapTerms(t: Term, f: (t: Term) => Term | undefined, descendBodies = true): Term {
  const r = f(t);
  if (r) return r;
  const m = (x: Term): Term => mapTerms(x, f, descendBodies);
  switch (t.type) {
    case "scalar":
    case "var":
      return t;
    case "ref":
      return { ...t, head: m(t.head), path: t.path.map(m) };
    case "array":
      return { ...t, items: t.items.map(m) };
    case "set":
      return { ...t, items: t.items.map(m) };
    case "object":
      return { ...t, items: t.items.map(([k, v]) => [m(k), m(v)] as [Term, Term]) };
    case "call":
      return { ...t, op: m(t.op), args: t.args.map(m) };
    case "arraycomp":
    case "setcomp":
      return descendBodies ? { ...t, term: m(t.term), body: mapBody(t.body, f) } : t;
    case "objcomp":
      return descendBodies ? { ...t, key: m(t.key), value: m(t.value), body: mapBody(t.body, f) } : t;
  }
}

export function mapBody(body: Expr[], f: (t: Term) => Term | undefined): Expr[] {
  return body.map((e) => mapExpr(e, f));
}

function mapExpr(e: Expr, f: (t: Term) => Term | undefined): Expr {
  const m = (x: Term): Term => mapTerms(x, f);
  const withs = e.with.map((w) => ({ target: m(w.target), value: m(w.value) }));
  switch (e.kind) {
    case "term":
      return { ...e, term: m(e.term), with: withs };
    case "unify":
    case "assign":
      return { ...e, left: m(e.left), right: m(e.right), with: withs };
    case "some":
      return { ...e, with: withs };
    case "somein":
      return { ...e, key: e.key && m(e.key), value: m(e.value), domain: m(e.domain), with: withs };
    case "every":
      return { ...e, key: e.key && m(e.key), value: m(e.value), domain: m(e.domain), body: mapBody(e.body, f), with: withs };
    case "not":
      return { ...e, expr: mapExpr(e.expr, f), with: withs };
  }
}

/** Var names in a term, skipping call operators; comprehension bodies only when `deep`. */
export function termVars(t: Term, out = new Set<string>(), deep = true): Set<string> {
  switch (t.type) {
    case "var":
      out.add(t.name);
      break;
    case "ref":
      termVars(t.head, out, deep);
      t.path.forEach((p) => termVars(p, out, deep));
      break;
    case "array":
    case "set":
      t.items.forEach((x) => termVars(x, out, deep));
      break;
    case "object":
      t.items.forEach(([k, v]) => (termVars(k, out, deep), termVars(v, out, deep)));
      break;
    case "call":
      t.args.forEach((x) => termVars(x, out, deep));
      break;
    case "arraycomp":
    case "setcomp":
      if (deep) {
        termVars(t.term, out, deep);
        t.body.forEach((e) => exprVars(e, out, deep));
      }
      break;
    case "objcomp":
      if (deep) {
        termVars(t.key, out, deep);
        termVars(t.value, out, deep);
        t.body.forEach((e) => exprVars(e, out, deep));
      }
      break;
    default:
      break;
  }
  return out;
}

export function exprVars(e: Expr, out = new Set<string>(), deep = true): Set<string> {
  for (const w of e.with) termVars(w.value, out, deep);
  switch (e.kind) {
    case "term":
      termVars(e.term, out, deep);
      break;
    case "unify":
    case "assign":
      termVars(e.left, out, deep);
      termVars(e.right, out, deep);
      break;
    case "some":
      e.vars.forEach((v) => termVars(v, out, deep));
      break;
    case "somein":
      if (e.key) termVars(e.key, out, deep);
      termVars(e.value, out, deep);
      termVars(e.domain, out, deep);
      break;
    case "every":
      if (e.key) termVars(e.key, out, deep);
      termVars(e.value, out, deep);
      termVars(e.domain, out, deep);
      if (deep) e.body.forEach((x) => exprVars(x, out, deep));
      break;
    case "not":
      exprVars(e.expr, out, deep);
      break;
  }
  return out;
}
