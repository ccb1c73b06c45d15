/**
 * `data`: base documents merged with the virtual documents that rules define. Node values are
 * computed once per context (State.cache) and merged by vtree.ts.
 */
import type { Rule, Term } from "./ast.ts";
import type { RuleNode } from "./compiler.ts";
import { PolicyError } from "./errors.ts";
import { PENDING } from "./eval-state.ts";
import { lookup, type Env, type Evaluator, type VK } from "./eval.ts";
import { RObject, RSet, equal, type Value } from "./value.ts";
import { Conflict, fromBase, insertAt, newObj, overrideAt, toValue, type VNode } from "./vtree.ts";

function overlayAt(ev: Evaluator, path: string[]): Value | undefined {
  for (let i = ev.state.overlays.length - 1; i >= 0; i--) {
    const o = ev.state.overlays[i] as { path: string[]; value: Value };
    if (o.path.length === path.length && o.path.every((p, j) => p === path[j])) return o.value;
  }
  return undefined;
}

function overlaysBelow(ev: Evaluator, path: string[]): { path: string[]; value: Value }[] {
  return ev.state.overlays.filter((o) => o.path.length > path.length && path.every((p, j) => p === o.path[j]));
}

function baseAt(ev: Evaluator, path: string[]): Value | undefined {
  let v: Value | undefined = ev.state.data;
  for (const p of path.slice(1)) {
    if (v === undefined) return undefined;
    v = lookup(v, p);
  }
  return v;
}

/** Base value at a path with deeper `with` overlays applied. */
function patchedBase(ev: Evaluator, path: string[]): Value | undefined {
  const base = baseAt(ev, path);
  const below = overlaysBelow(ev, path);
  if (below.length === 0) return base;
  const root = (base === undefined ? newObj() : fromBase(base)) as VNode & { kind: "obj" };
  if (root.kind !== "obj") return base;
  for (const o of below) overrideAt(root, o.path.slice(path.length), { kind: "leaf", value: o.value });
  return toValue(root);
}

export function evalData(ev: Evaluator, path: Term[], env: Env, k: VK): boolean {
  return step(ev, ev.state.root, ["data"], path, 0, env, k);
}

function step(ev: Evaluator, node: RuleNode, at: string[], path: Term[], i: number, env: Env, k: VK): boolean {
  const over = overlayAt(ev, at);
  if (over !== undefined) return ev.walk(over, path, i, env, k);
  if (node.hasRules() || i >= path.length) {
    const v = nodeValue(ev, node, path[i - 1]?.loc ?? path[0]?.loc);
    return v === undefined ? false : ev.walk(v, path, i, env, k);
  }
  const p = path[i] as Term;
  if (ev.isOpen(p, env)) {
    const v = nodeValue(ev, node, p.loc);
    return v === undefined ? false : ev.walk(v, path, i, env, k);
  }
  return ev.evalTerm(p, env, (key) => {
    if (typeof key === "string") {
      const child = node.children.get(key);
      if (child) return step(ev, child, [...at, key], path, i + 1, env, k);
      const next = [...at, key];
      const over2 = overlayAt(ev, next);
      if (over2 !== undefined) return ev.walk(over2, path, i + 1, env, k);
      const base = patchedBase(ev, next);
      return base === undefined ? false : ev.walk(base, path, i + 1, env, k, true);
    }
    const base = patchedBase(ev, at);
    let child = base === undefined ? undefined : lookup(base, key);
    // Base documents are JSON: their keys are strings, `data.x[2]` reads key "2".
    if (child === undefined && base instanceof RObject && typeof key === "number") child = base.get(String(key));
    return child === undefined ? false : ev.walk(child, path, i + 1, env, k, true);
  });
}

/** The full value of a node (rules and base data below it), cached per context. */
function nodeValue(ev: Evaluator, node: RuleNode, loc?: Term["loc"]): Value | undefined {
  const cache = ev.state.cache;
  if (cache.has(node)) {
    const c = cache.get(node);
    if (c === PENDING) throw new PolicyError("rego_recursion_error", `rule ${node.path.join(".")} is recursive`, loc);
    return c as Value | undefined;
  }
  cache.set(node, PENDING);
  try {
    let v: Value | undefined;
    if (node.children.size === 0 && node.dynamic.length === 0 && node.sets.length === 0 && (node.complete.length > 0 || node.defaultRule)) {
      v = evalComplete(ev, node);
    } else {
      const vn = buildNode(ev, node);
      v = vn === undefined ? undefined : toValue(vn);
    }
    cache.set(node, v);
    return v;
  } catch (e) {
    cache.delete(node);
    if (e instanceof Conflict) {
      const rule = node.dynamic[0]?.rule ?? node.complete[0] ?? node.sets[0];
      throw new PolicyError("eval_conflict_error", "object keys must be unique", rule?.loc ?? loc);
    }
    throw e;
  }
}

function buildNode(ev: Evaluator, node: RuleNode): VNode | undefined {
  const over = overlayAt(ev, node.path);
  if (over !== undefined) return { kind: "leaf", value: over };
  if (node.funcs.length > 0 && !node.hasRules() && node.children.size === 0) return undefined;
  const base = baseAt(ev, node.path);
  if (base === undefined && node.children.size === 0 && node.dynamic.length === 0 && node.sets.length === 0 && (node.complete.length > 0 || node.defaultRule)) {
    const v = evalComplete(ev, node);
    return v === undefined ? undefined : { kind: "leaf", value: v };
  }
  let root: VNode & { kind: "obj" } = newObj() as VNode & { kind: "obj" };
  let defined = true;
  if (base !== undefined) {
    const b = fromBase(base);
    if (b.kind !== "obj") return b;
    root = b;
  }
  if (node.complete.length > 0 || node.defaultRule) {
    const v = evalComplete(ev, node);
    if (v !== undefined) {
      defined = true;
      if (node.children.size === 0 && node.dynamic.length === 0) return { kind: "leaf", value: v };
      insertAt(root, [], { kind: "leaf", value: v });
    }
  }
  if (node.sets.length > 0) {
    const s = new RSet();
    for (const r of node.sets) evalRuleBody(ev, r, (env) => ev.evalTerm(r.key as Term, env, (x) => (s.add(x), false)));
    if (node.children.size === 0 && node.dynamic.length === 0) return { kind: "set", set: s };
    insertAt(root, [], { kind: "set", set: s });
    defined = true;
  }
  for (const { rule, rest } of node.dynamic) {
    defined = true;
    evalRuleBody(ev, rule, (env) =>
      ev.evalList(rest, 0, [], env, (keys) => {
        if (rule.kind === "set") {
          return ev.evalTerm(rule.key as Term, env, (x) => (insertAt(root, keys, { kind: "set", set: RSet.from([x]) }), false));
        }
        return ev.evalTerm(rule.value, env, (x) => (insertAt(root, keys, { kind: "leaf", value: x }), false));
      }),
    );
  }
  for (const [name, child] of node.children) {
    const cv = buildNode(ev, child);
    if (cv !== undefined) insertAt(root, [name], cv);
  }
  for (const o of overlaysBelow(ev, node.path)) overrideAt(root, o.path.slice(node.path.length), { kind: "leaf", value: o.value });
  return defined || root.map.size > 0 ? root : undefined;
}

/** Evaluates a rule body in a fresh frame; `k` sees each solution. */
function evalRuleBody(ev: Evaluator, rule: Rule, k: (env: Env) => boolean, env: Env = new Map()): boolean {
  return ev.evalBody(rule.body, 0, env, () => k(env));
}

function conflict(rule: Rule): PolicyError {
  return new PolicyError("eval_conflict_error", "complete rules must not produce multiple outputs", rule.loc);
}

/** Value of one rule with its else chain: the first branch that is defined. */
function evalChain(ev: Evaluator, rule: Rule, onConflict: (r: Rule) => PolicyError, env0?: () => Env | undefined): Value | undefined {
  for (let x: Rule | undefined = rule; x; x = x.elseRule) {
    let result: Value | undefined;
    const constant = x.value.type === "scalar";
    const env = env0 ? env0() : new Map<string, Value>();
    if (env === undefined) return undefined;
    const r = x;
    evalRuleBody(
      ev,
      r,
      (e) =>
        ev.evalTerm(r.value, e, (v) => {
          if (result !== undefined && !equal(result, v)) throw onConflict(r);
          result = v;
          return constant;
        }),
      env,
    );
    if (result !== undefined) return result;
  }
  return undefined;
}

function evalComplete(ev: Evaluator, node: RuleNode): Value | undefined {
  let result: Value | undefined;
  for (const r of node.complete) {
    const v = evalChain(ev, r, conflict);
    if (v === undefined) continue;
    if (result !== undefined && !equal(result, v)) throw conflict(r);
    result = v;
  }
  if (result === undefined && node.defaultRule) {
    const d = node.defaultRule;
    ev.evalTerm(d.value, new Map(), (v) => ((result = v), true));
  }
  return result;
}

function funcConflict(rule: Rule): PolicyError {
  return new PolicyError("eval_conflict_error", "functions must not produce multiple outputs for same inputs", rule.loc);
}

/** Calls a user-defined function with evaluated arguments. */
export function callFunction(ev: Evaluator, node: RuleNode, args: Value[]): Value | undefined {
  let result: Value | undefined;
  let defaultRule: Rule | undefined;
  for (const r of node.funcs) {
    if (r.isDefault) {
      defaultRule = r;
      continue;
    }
    const params = r.args ?? [];
    if (params.length !== args.length) continue;
    let v: Value | undefined;
    for (let x: Rule | undefined = r; x && v === undefined; x = x.elseRule) {
      const branch = x;
      const env = new Map<string, Value>();
      const bind = (i: number): boolean => {
        if (i >= params.length) {
          return ev.evalBody(branch.body, 0, env, () =>
            ev.evalTerm(branch.value, env, (out) => {
              if (v !== undefined && !equal(v, out)) throw funcConflict(branch);
              v = out;
              return false;
            }),
          );
        }
        return ev.unifyValue((branch.args ?? params)[i] as Term, args[i] as Value, env, () => bind(i + 1));
      };
      bind(0);
    }
    if (v === undefined) continue;
    if (result !== undefined && !equal(result, v)) throw funcConflict(r);
    result = v;
  }
  if (result === undefined && defaultRule) {
    ev.evalTerm(defaultRule.value, new Map(), (v) => ((result = v), true));
  }
  return result;
}
