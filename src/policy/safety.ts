/**
 * Safety: every variable must be bound before a built-in, negation or comparison reads it. Like
 * OPA, we reorder body expressions so that the ones binding a var run first, and report
 * `rego_unsafe_var_error` when no order works. Comprehension and `every` bodies are ordered with the
 * vars bound around them.
 */
import type { Expr, Rule, Term } from "./ast.ts";
import { builtins } from "./builtins/registry.ts";
import { compileError } from "./errors.ts";
import { refToPath } from "./parser.ts";
import { exprVars, termVars } from "./walk.ts";

type Vars = Set<string>;

/** Arity of a function by name (built-in or user-defined), -1 when unknown or variadic. */
export type ArityLookup = (name: string) => number;

let arityOf: ArityLookup = (name) => builtins.get(name)?.arity ?? -1;

const isWildcard = (n: string): boolean => n.startsWith("_$");
const globalVar = (n: string): boolean => n === "data" || n === "input";

/** Vars a term makes available when evaluated: ref path vars (enumerated). */
function provides(t: Term, out: Vars = new Set()): Vars {
  switch (t.type) {
    case "ref":
      provides(t.head, out);
      for (const p of t.path) {
        if (p.type === "var" || p.type === "array" || p.type === "object") {
          const pv = new Set<string>();
          pattern(p, new Set(), pv, new Set());
          for (const v of pv) out.add(v);
        }
        provides(p, out);
      }
      return out;
    case "array":
    case "set":
      t.items.forEach((i) => provides(i, out));
      return out;
    case "object":
      t.items.forEach(([k, v]) => (provides(k, out), provides(v, out)));
      return out;
    case "call":
      t.args.forEach((a) => provides(a, out));
      return out;
    default:
      return out;
  }
}

/** Vars that must be bound to evaluate a term (value mode). `outer` decides comprehension captures. */
function needs(t: Term, outer: Vars, out: Vars = new Set()): Vars {
  switch (t.type) {
    case "var":
      if (!globalVar(t.name)) out.add(t.name);
      return out;
    case "ref":
      if (t.head.type !== "var") needs(t.head, outer, out);
      else if (!globalVar(t.head.name)) out.add(t.head.name);
      for (const p of t.path) {
        if (p.type === "array" || p.type === "object") pattern(p, outer, new Set(), out);
        else if (p.type !== "var") needs(p, outer, out);
      }
      return out;
    case "array":
    case "set":
      t.items.forEach((i) => needs(i, outer, out));
      return out;
    case "object":
      t.items.forEach(([k, v]) => (needs(k, outer, out), needs(v, outer, out)));
      return out;
    case "call":
      t.args.forEach((a) => needs(a, outer, out));
      return out;
    case "arraycomp":
    case "setcomp":
    case "objcomp":
      for (const v of termVars(t)) if (outer.has(v) && !globalVar(v)) out.add(v);
      return out;
    default:
      return out;
  }
}

/** Vars in pattern position (a unification can bind them) and the needs of the non-pattern parts. */
function pattern(t: Term, outer: Vars, pv: Vars, nv: Vars): void {
  if (t.type === "var") {
    if (!globalVar(t.name)) pv.add(t.name);
  } else if (t.type === "array") t.items.forEach((i) => pattern(i, outer, pv, nv));
  else if (t.type === "object")
    t.items.forEach(([k, v]) => {
      needs(k, outer, nv);
      pattern(v, outer, pv, nv);
    });
  else needs(t, outer, nv);
}

function minus(a: Vars, b: Vars, c?: Vars): string[] {
  return [...a].filter((v) => !b.has(v) && !(c?.has(v) ?? false));
}

/** Returns the vars this expression binds, or the unsafe vars blocking it. */
function analyze(e: Expr, bound: Vars, outer: Vars): { out: Vars } | { unsafe: string[] } {
  const withNeeds = new Set<string>();
  for (const w of e.with) {
    const fname = refToPath(w.value)?.join(".");
    if (fname && (w.value.type === "var" || w.value.type === "ref") && arityOf(fname) >= 0 && !bound.has(fname)) continue;
    needs(w.value, outer, withNeeds);
  }
  const wu = minus(withNeeds, bound);
  if (wu.length) return { unsafe: wu };
  switch (e.kind) {
    case "some":
      return { out: new Set() };
    case "term": {
      const t = e.term;
      if (t.type === "call") {
        const name = refToPath(t.op)?.join(".") ?? "";
        const n = arityOf(name);
        if (n >= 0 && t.args.length === n + 1) {
          const inputs = t.args.slice(0, n);
          const nv = new Set<string>();
          const pv = new Set<string>();
          const prov = new Set<string>();
          inputs.forEach((a) => (needs(a, outer, nv), provides(a, prov)));
          pattern(t.args[n] as Term, outer, pv, nv);
          const u = minus(nv, bound, prov);
          if (u.length) return { unsafe: u };
          return { out: new Set([...prov, ...pv]) };
        }
      }
      const prov = provides(t);
      const u = minus(needs(t, outer), bound, prov);
      return u.length ? { unsafe: u } : { out: prov };
    }
    case "unify":
    case "assign":
      return unify(e.left, e.right, bound, outer);
    case "somein": {
      const prov = provides(e.domain);
      const u = minus(needs(e.domain, outer), bound, prov);
      if (u.length) return { unsafe: u };
      const pv = new Set<string>();
      const nv = new Set<string>();
      if (e.key) pattern(e.key, outer, pv, nv);
      pattern(e.value, outer, pv, nv);
      const u2 = minus(nv, bound, prov);
      if (u2.length) return { unsafe: u2 };
      return { out: new Set([...prov, ...pv]) };
    }
    case "every": {
      const prov = provides(e.domain);
      const u = minus(needs(e.domain, outer), bound, prov);
      return u.length ? { unsafe: u } : { out: new Set() };
    }
    case "not": {
      const inner = new Set<string>();
      collectNotVars(e.expr, inner);
      const u = minus(inner, bound).filter((v) => !isWildcard(v) && outer.has(v));
      return u.length ? { unsafe: u } : { out: new Set() };
    }
  }
}

function collectNotVars(e: Expr, out: Vars): void {
  const all = exprVars(e);
  for (const v of all) if (!globalVar(v)) out.add(v);
}

function unify(a: Term, b: Term, bound: Vars, outer: Vars): { out: Vars } | { unsafe: string[] } {
  const pa = new Set<string>();
  const na = new Set<string>();
  const pb = new Set<string>();
  const nb = new Set<string>();
  pattern(a, outer, pa, na);
  pattern(b, outer, pb, nb);
  const prov = new Set([...provides(a), ...provides(b)]);
  const freeA = minus(pa, bound);
  const freeB = minus(pb, bound);
  if (freeA.length === 0 || freeB.length === 0) {
    const u = minus(new Set([...na, ...nb]), bound, prov);
    if (u.length) return { unsafe: u };
    return { out: new Set([...prov, ...freeA, ...freeB]) };
  }
  if (a.type === "array" && b.type === "array" && a.items.length === b.items.length) {
    const cur = new Set(bound);
    const out = new Set<string>();
    for (let i = 0; i < a.items.length; i++) {
      const r = unify(a.items[i] as Term, b.items[i] as Term, cur, outer);
      if ("unsafe" in r) return r;
      for (const v of r.out) {
        cur.add(v);
        out.add(v);
      }
    }
    return { out };
  }
  if (a.type === "object" && b.type === "object" && a.items.length === b.items.length) {
    const cur = new Set(bound);
    const out = new Set<string>();
    for (const [ka, va] of a.items) {
      const match = b.items.find(([kb]) => kb.type === "scalar" && ka.type === "scalar" && kb.value === ka.value);
      if (!match) return { unsafe: [...freeA, ...freeB] };
      const r = unify(va, match[1], cur, outer);
      if ("unsafe" in r) return r;
      for (const v of r.out) {
        cur.add(v);
        out.add(v);
      }
    }
    return { out };
  }
  return { unsafe: [...freeA, ...freeB] };
}

/** Orders a body; returns the new order and the vars bound after it. */
export function orderBody(body: Expr[], initial: Vars, extraOuter: Vars): { body: Expr[]; bound: Vars } {
  const bound = new Set(initial);
  const outer = new Set(extraOuter);
  for (const e of body) for (const v of topLevelVars(e)) outer.add(v);
  // Vars declared with `:=`/`some` here are new locals: a comprehension's var of the same name is its own.
  for (const e of body) {
    if (e.kind === "assign") for (const v of termVars(e.left)) if (!initial.has(v)) outer.delete(v);
    if (e.kind === "some") for (const v of e.vars) if (v.type === "var" && !initial.has(v.name)) outer.delete(v.name);
  }
  const rest = [...body];
  const out: Expr[] = [];
  while (rest.length > 0) {
    let picked = -1;
    let firstUnsafe: { e: Expr; vars: string[] } | undefined;
    for (let i = 0; i < rest.length; i++) {
      const r = analyze(rest[i] as Expr, bound, outer);
      if ("out" in r) {
        picked = i;
        for (const v of r.out) bound.add(v);
        break;
      }
      firstUnsafe ??= { e: rest[i] as Expr, vars: r.unsafe };
    }
    if (picked < 0) {
      const f = firstUnsafe as { e: Expr; vars: string[] };
      const name = f.vars.find((v) => !isWildcard(v)) ?? f.vars[0] ?? "?";
      throw compileError("rego_unsafe_var_error", `var ${name.startsWith("_$") ? "_" : name} is unsafe`, f.e.loc);
    }
    const [e] = rest.splice(picked, 1);
    out.push(orderNested(e as Expr, bound, outer));
  }
  return { body: out, bound };
}

/** Vars of an expression outside nested comprehension bodies. */
function topLevelVars(e: Expr): Vars {
  return exprVars(e, new Set(), false);
}

function orderNested(e: Expr, bound: Vars, outer: Vars): Expr {
  const fixTerm = (t: Term): Term => orderTerm(t, bound, outer);
  switch (e.kind) {
    case "term":
      return { ...e, term: fixTerm(e.term) };
    case "unify":
    case "assign":
      return { ...e, left: fixTerm(e.left), right: fixTerm(e.right) };
    case "somein":
      return { ...e, domain: fixTerm(e.domain) };
    case "every": {
      const inner = new Set(bound);
      for (const t of [e.key, e.value]) if (t) for (const v of termVars(t)) inner.add(v);
      return { ...e, domain: fixTerm(e.domain), body: orderBody(e.body, inner, outer).body };
    }
    case "not":
      return { ...e, expr: orderNested(e.expr, bound, outer) };
    default:
      return e;
  }
}

function orderTerm(t: Term, bound: Vars, outer: Vars): Term {
  const rec = (x: Term): Term => orderTerm(x, bound, outer);
  switch (t.type) {
    case "arraycomp":
    case "setcomp": {
      const r = orderBody(t.body, bound, outer);
      checkHead([t.term], r.bound, t.loc);
      return { ...t, body: r.body };
    }
    case "objcomp": {
      const r = orderBody(t.body, bound, outer);
      checkHead([t.key, t.value], r.bound, t.loc);
      return { ...t, body: r.body };
    }
    case "ref":
      return { ...t, head: rec(t.head), path: t.path.map(rec) };
    case "array":
    case "set":
      return { ...t, items: t.items.map(rec) };
    case "object":
      return { ...t, items: t.items.map(([k, v]) => [rec(k), rec(v)] as [Term, Term]) };
    case "call":
      return { ...t, args: t.args.map(rec) };
    default:
      return t;
  }
}

function checkHead(terms: Term[], bound: Vars, loc: Term["loc"]): void {
  for (const t of terms) {
    const u = minus(needs(t, new Set()), bound).filter((v) => !isWildcard(v));
    if (u.length) throw compileError("rego_unsafe_var_error", `var ${u[0]} is unsafe`, loc);
  }
}

export function setArityLookup(f: ArityLookup): void {
  arityOf = f;
}

export function orderBodies(rule: Rule): void {
  const initial = new Set<string>();
  for (const a of rule.args ?? []) for (const v of termVars(a)) initial.add(v);
  const headTerms = [rule.value, ...(rule.key ? [rule.key] : []), ...rule.ref.slice(1)];
  const outer = new Set(initial);
  for (const t of headTerms) for (const v of termVars(t)) outer.add(v);
  const r = orderBody(rule.body, initial, outer);
  rule.body = r.body;
  const headFixed = headTerms.map((t) => orderTerm(t, r.bound, outer));
  rule.value = headFixed[0] as Term;
  checkHead(headFixed, r.bound, rule.loc);
}
