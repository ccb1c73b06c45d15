/**
 * The evaluator: top-down, continuation-passing. Every function that can produce several solutions
 * takes a continuation and returns true to stop the enumeration early (used by `not`, `every`,
 * complete rules with constant values). Bindings live in a mutable map per rule frame; a binding is
 * undone when the continuation returns, so backtracking needs no copying.
 */
import type { Expr, Term } from "./ast.ts";
import { PolicyError } from "./errors.ts";
import type { State } from "./eval-state.ts";
import { evalCall } from "./eval-call.ts";
import { evalData } from "./eval-data.ts";
import { applyWith } from "./eval-with.ts";
import { RObject, RSet, equal, type Value } from "./value.ts";

export type Env = Map<string, Value>;
export type K = () => boolean;
export type VK = (v: Value) => boolean;

export class Evaluator {
  steps = 0;
  constructor(public state: State) {}

  tick(loc: Term["loc"]): void {
    if (++this.steps % 4096 === 0 && Date.now() > this.state.deadline) {
      throw new PolicyError("eval_timeout", "policy evaluation timed out", loc);
    }
  }

  evalBody(body: Expr[], i: number, env: Env, k: K): boolean {
    if (i >= body.length) return k();
    return this.evalExpr(body[i] as Expr, env, () => this.evalBody(body, i + 1, env, k));
  }

  evalExpr(e: Expr, env: Env, k: K): boolean {
    this.tick(e.loc);
    if (e.with.length > 0) return applyWith(this, e, env, k);
    return this.evalExprPlain(e, env, k);
  }

  evalExprPlain(e: Expr, env: Env, k: K): boolean {
    switch (e.kind) {
      case "term": {
        const t = e.term;
        if (t.type === "call") return evalCall(this, t, env, (v) => (v === false ? false : k()), true);
        return this.evalTerm(t, env, (v) => (v === false ? false : k()));
      }
      case "unify":
        return this.unify(e.left, e.right, env, k);
      case "assign":
        return this.declare(varsIn(e.left), env, () => this.unify(e.left, e.right, env, k));
      case "some":
        return this.declare(e.vars.map((v) => (v as Term & { name: string }).name), env, k);
      case "somein": {
        const names = [...(e.key ? varsIn(e.key) : []), ...varsIn(e.value)];
        return this.declare(names, env, () =>
          this.evalTerm(e.domain, env, (coll) =>
            eachMember(coll, (key, val) => (e.key ? this.unifyValue(e.key, key, env, () => this.unifyValue(e.value, val, env, k)) : this.unifyValue(e.value, val, env, k))),
          ),
        );
      }
      case "every":
        return this.evalTerm(e.domain, env, (coll) => {
          if (!Array.isArray(coll) && !(coll instanceof RObject) && !(coll instanceof RSet)) return false;
          const names = [...(e.key ? varsIn(e.key) : []), ...varsIn(e.value)];
          let ok = true;
          eachMember(coll, (key, val) => {
            const found = this.declare(names, env, () =>
              e.key
                ? this.unifyValue(e.key, key, env, () => this.unifyValue(e.value, val, env, () => this.evalBody(e.body, 0, env, () => true)))
                : this.unifyValue(e.value, val, env, () => this.evalBody(e.body, 0, env, () => true)),
            );
            if (!found) ok = false;
            return !ok;
          });
          return ok ? k() : false;
        });
      case "not": {
        const found = this.evalExpr(e.expr, env, () => true);
        return found ? false : k();
      }
    }
  }

  /** Shadows `names` for the rest of the continuation (`some`, `:=`), restoring outer bindings after. */
  declare(names: string[], env: Env, k: K): boolean {
    if (names.length === 0) return k();
    const saved: [string, Value][] = [];
    for (const n of names) {
      const v = env.get(n);
      if (v !== undefined) {
        saved.push([n, v]);
        env.delete(n);
      }
    }
    try {
      return k();
    } finally {
      for (const [n, v] of saved) env.set(n, v);
    }
  }

  evalTerm(t: Term, env: Env, k: VK): boolean {
    switch (t.type) {
      case "scalar":
        return k(t.value);
      case "var": {
        const v = env.get(t.name);
        if (v === undefined && t.name === "input") return this.state.input === undefined ? false : k(this.state.input);
        if (v === undefined && t.name === "data") return evalData(this, [], env, k);
        if (v === undefined) throw new PolicyError("rego_unsafe_var_error", `var ${t.name} is unsafe`, t.loc);
        return k(v);
      }
      case "ref":
        return this.evalRef(t, env, k);
      case "array":
        return this.evalList(t.items, 0, [], env, (vals) => k(vals));
      case "set":
        return this.evalList(t.items, 0, [], env, (vals) => k(RSet.from(vals)));
      case "object": {
        const flat = t.items.flatMap(([a, b]) => [a, b]);
        return this.evalList(flat, 0, [], env, (vals) => {
          const o = new RObject();
          for (let i = 0; i < vals.length; i += 2) {
            const key = vals[i] as Value;
            const existing = o.get(key);
            if (existing !== undefined && !equal(existing, vals[i + 1] as Value)) {
              throw new PolicyError("eval_conflict_error", "object keys must be unique", t.loc);
            }
            o.set(key, vals[i + 1] as Value);
          }
          return k(o);
        });
      }
      case "arraycomp": {
        const out: Value[] = [];
        this.evalBody(t.body, 0, env, () => this.evalTerm(t.term, env, (v) => (out.push(v), false)));
        return k(out);
      }
      case "setcomp": {
        const out = new RSet();
        this.evalBody(t.body, 0, env, () => this.evalTerm(t.term, env, (v) => (out.add(v), false)));
        return k(out);
      }
      case "objcomp": {
        const out = new RObject();
        this.evalBody(t.body, 0, env, () =>
          this.evalTerm(t.key, env, (key) =>
            this.evalTerm(t.value, env, (v) => {
              const existing = out.get(key);
              if (existing !== undefined && !equal(existing, v)) throw new PolicyError("eval_conflict_error", "object keys must be unique", t.loc);
              out.set(key, v);
              return false;
            }),
          ),
        );
        return k(out);
      }
      case "call":
        return evalCall(this, t, env, k, false);
    }
  }

  evalList(items: Term[], i: number, acc: Value[], env: Env, k: (vals: Value[]) => boolean): boolean {
    if (i >= items.length) return k([...acc]);
    return this.evalTerm(items[i] as Term, env, (v) => {
      acc.push(v);
      try {
        return this.evalList(items, i + 1, acc, env, k);
      } finally {
        acc.pop();
      }
    });
  }

  evalRef(t: Term & { type: "ref" }, env: Env, k: VK): boolean {
    const head = t.head;
    if (head.type === "var") {
      if (head.name === "data") return evalData(this, t.path, env, k);
      if (head.name === "input") {
        const input = this.state.input;
        if (input === undefined) return false;
        return this.walk(input, t.path, 0, env, k);
      }
    }
    return this.evalTerm(head, env, (v) => this.walk(v, t.path, 0, env, k));
  }

  /** Follows `path[i:]` into a value, enumerating where a path element is unbound. */
  walk(v: Value, path: Term[], i: number, env: Env, k: VK, jsonKeys = false): boolean {
    if (i >= path.length) return k(v);
    const p = path[i] as Term;
    if (!this.isOpen(p, env)) {
      return this.evalTerm(p, env, (key) => {
        let child = lookup(v, key);
        // Base documents are JSON (string keys): `data.x[2]` reads key "2", as OPA does.
        if (child === undefined && jsonKeys && typeof key === "number" && v instanceof RObject) child = v.get(String(key));
        return child === undefined ? false : this.walk(child, path, i + 1, env, k, jsonKeys);
      });
    }
    return eachMember(v, (key, child) => this.unifyValue(p, key, env, () => this.walk(child, path, i + 1, env, k)));
  }

  /** True when a term has an unbound var in a pattern position (so it must be matched, not evaluated). */
  isOpen(t: Term, env: Env): boolean {
    switch (t.type) {
      case "var":
        return !env.has(t.name) && t.name !== "input" && t.name !== "data";
      case "array":
        return t.items.some((x) => this.isOpen(x, env));
      case "object":
        return t.items.some(([, x]) => this.isOpen(x, env));
      default:
        return false;
    }
  }

  unify(a: Term, b: Term, env: Env, k: K): boolean {
    const openA = this.isOpen(a, env);
    const openB = this.isOpen(b, env);
    if (openA && openB) {
      if (a.type === "array" && b.type === "array") {
        if (a.items.length !== b.items.length) return false;
        const step = (i: number): boolean => (i >= a.items.length ? k() : this.unify(a.items[i] as Term, b.items[i] as Term, env, () => step(i + 1)));
        return step(0);
      }
      if (a.type === "object" && b.type === "object" && a.items.length === b.items.length) {
        const pairs: [Term, Term][] = [];
        for (const [ka, va] of a.items) {
          const m = b.items.find(([kb]) => kb.type === "scalar" && ka.type === "scalar" && equal(kb.value, ka.value));
          if (!m) return false;
          pairs.push([va, m[1]]);
        }
        const step = (i: number): boolean => (i >= pairs.length ? k() : this.unify((pairs[i] as [Term, Term])[0], (pairs[i] as [Term, Term])[1], env, () => step(i + 1)));
        return step(0);
      }
      if (a.type === "var" && b.type !== "var") return this.evalTerm(b, env, (v) => this.unifyValue(a, v, env, k));
      throw new PolicyError("rego_unsafe_var_error", `var ${firstOpenVar(a, env) ?? "?"} is unsafe`, a.loc);
    }
    if (openA) return this.evalTerm(b, env, (v) => this.unifyValue(a, v, env, k));
    return this.evalTerm(a, env, (v) => this.unifyValue(b, v, env, k));
  }

  /** Matches a term (possibly with unbound vars) against a value. */
  unifyValue(t: Term, v: Value, env: Env, k: K): boolean {
    switch (t.type) {
      case "var": {
        const cur = env.get(t.name);
        if (cur !== undefined) return equal(cur, v) ? k() : false;
        if (t.name === "input" || t.name === "data") break;
        env.set(t.name, v);
        try {
          return k();
        } finally {
          env.delete(t.name);
        }
      }
      case "array": {
        if (!Array.isArray(v) || v.length !== t.items.length) return false;
        const step = (i: number): boolean => (i >= t.items.length ? k() : this.unifyValue(t.items[i] as Term, v[i] as Value, env, () => step(i + 1)));
        return step(0);
      }
      case "object": {
        if (!this.isOpen(t, env)) break;
        if (!(v instanceof RObject) || v.size !== t.items.length) return false;
        const step = (i: number): boolean => {
          if (i >= t.items.length) return k();
          const [kt, vt] = t.items[i] as [Term, Term];
          return this.evalTerm(kt, env, (key) => {
            const child = v.get(key);
            return child === undefined ? false : this.unifyValue(vt, child, env, () => step(i + 1));
          });
        };
        return step(0);
      }
      default:
        break;
    }
    return this.evalTerm(t, env, (x) => (equal(x, v) ? k() : false));
  }
}

function firstOpenVar(t: Term, env: Env): string | undefined {
  return varsIn(t).find((n) => !env.has(n));
}

/** Var names in pattern positions of a term. */
function varsIn(t: Term, out: string[] = []): string[] {
  if (t.type === "var") out.push(t.name);
  else if (t.type === "array") t.items.forEach((x) => varsIn(x, out));
  else if (t.type === "object") t.items.forEach(([, x]) => varsIn(x, out));
  return out;
}

export function lookup(v: Value, key: Value): Value | undefined {
  if (Array.isArray(v)) {
    if (typeof key === "number" && Number.isInteger(key) && key >= 0 && key < v.length) return v[key];
    return undefined;
  }
  if (v instanceof RObject) return v.get(key);
  if (v instanceof RSet) return v.has(key) ? key : undefined;
  return undefined;
}

/** Iterates a collection: arrays (index, item), objects (key, value), sets (item, item). */
function eachMember(v: Value, f: (key: Value, val: Value) => boolean): boolean {
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) if (f(i, v[i] as Value)) return true;
  } else if (v instanceof RObject) {
    for (const [key, val] of v.entries()) if (f(key, val)) return true;
  } else if (v instanceof RSet) {
    for (const x of v.values()) if (f(x, x)) return true;
  }
  return false;
}
