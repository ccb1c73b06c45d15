/**
 * Compiles parsed modules into a rule tree: resolves rule names and imports to `data` refs, checks
 * unknown functions and arity, orders bodies for safety (safety.ts), checks types (type-check.ts) and
 * rejects recursion.
 */
import type { Expr, Module, Rule, Term } from "./ast.ts";
import { builtins } from "./builtins/registry.ts";
import { PolicyError, compileError, type PolicyErrorDetail } from "./errors.ts";
import { refToPath } from "./parser.ts";
import { checkRecursion } from "./recursion.ts";
import { orderBodies, setArityLookup } from "./safety.ts";
import { checkConflicts, checkTypes } from "./type-check.ts";
import { mapTerms } from "./walk.ts";

export class RuleNode {
  readonly children = new Map<string, RuleNode>();
  readonly complete: Rule[] = [];
  readonly sets: Rule[] = [];
  readonly funcs: Rule[] = [];
  /** Rules whose head ref continues with non-constant parts below this node. */
  readonly dynamic: { rule: Rule; rest: Term[] }[] = [];
  defaultRule: Rule | undefined;
  constructor(readonly path: string[]) {}

  child(name: string): RuleNode {
    let c = this.children.get(name);
    if (!c) {
      c = new RuleNode([...this.path, name]);
      this.children.set(name, c);
    }
    return c;
  }
  hasRules(): boolean {
    return this.complete.length > 0 || this.sets.length > 0 || this.dynamic.length > 0 || this.defaultRule !== undefined;
  }
}

export interface CompiledModules {
  root: RuleNode;
  modules: Module[];
}

/** Splits a rule's head ref into its constant path and the rest. */
function headPath(rule: Rule): { path: string[]; rest: Term[] } {
  const path = [...rule.pkg, (rule.ref[0] as Term & { name: string }).name];
  let i = 1;
  for (; i < rule.ref.length; i++) {
    const t = rule.ref[i] as Term;
    if (t.type === "scalar" && typeof t.value === "string") path.push(t.value);
    else break;
  }
  return { path, rest: rule.ref.slice(i) };
}

export function compileModules(modules: Module[], extraFunctions: ReadonlySet<string> = new Set()): CompiledModules {
  const root = new RuleNode(["data"]);
  const errors: PolicyErrorDetail[] = [];
  // package -> rule names in it
  const pkgRules = new Map<string, Set<string>>();
  for (const m of modules) {
    const key = m.pkg.join(".");
    const names = pkgRules.get(key) ?? new Set<string>();
    for (const r of m.rules) names.add((r.ref[0] as Term & { name: string }).name);
    pkgRules.set(key, names);
  }
  const funcPaths = new Map<string, number>();
  for (const m of modules) {
    for (const r of m.rules) {
      for (let x: Rule | undefined = r; x; x = x.elseRule) {
        x.pkg = ["data", ...m.pkg];
        x.module = m;
      }
      if (r.kind === "func") funcPaths.set(headPath(r).path.join("."), r.args?.length ?? 0);
    }
  }
  for (const m of modules) {
    const names = pkgRules.get(m.pkg.join(".")) ?? new Set<string>();
    const aliases = new Map<string, Term>();
    for (const imp of m.imports) {
      const path = refToPath(imp.path);
      if (!path) continue;
      if (path[0] === "future" || (path[0] === "rego" && path[1] === "v1")) continue;
      if (path[0] !== "data" && path[0] !== "input") {
        errors.push(detail(compileError("rego_compile_error", "invalid import path", imp.loc)));
        continue;
      }
      aliases.set(imp.alias ?? (path[path.length - 1] as string), imp.path);
    }
    for (const r of m.rules) {
      for (let x: Rule | undefined = r; x; x = x.elseRule) {
        try {
          resolveRule(x, ["data", ...m.pkg], names, aliases);
        } catch (e) {
          if (e instanceof PolicyError) errors.push(...e.errors);
          else throw e;
        }
      }
    }
  }
  for (const m of modules) {
    let pkgNode = root;
    for (const p of m.pkg) pkgNode = pkgNode.child(p);
    for (const r of m.rules) {
      const { path, rest } = headPath(r);
      let node = root;
      for (const p of path.slice(1)) node = node.child(p);
      if (r.isDefault) {
        if (r.kind === "func") node.funcs.push(r);
        else if (node.defaultRule) errors.push(detail(compileError("rego_type_error", `multiple default rules ${path.join(".")} found`, r.loc)));
        else node.defaultRule = r;
      } else if (r.kind === "func") node.funcs.push(r);
      else if (rest.length > 0) node.dynamic.push({ rule: r, rest });
      else if (r.kind === "set") node.sets.push(r);
      else node.complete.push(r);
    }
  }
  if (errors.length === 0) {
    for (const m of modules) for (const r of m.rules) for (let x: Rule | undefined = r; x; x = x.elseRule) checkCalls(x, funcPaths, extraFunctions, errors);
  }
  setArityLookup((name) => funcPaths.get(name) ?? builtins.get(name)?.arity ?? -1);
  if (errors.length === 0) {
    for (const m of modules) {
      for (const r of m.rules) {
        for (let x: Rule | undefined = r; x; x = x.elseRule) {
          try {
            orderBodies(x);
          } catch (e) {
            if (e instanceof PolicyError) errors.push(...e.errors);
            else throw e;
          }
        }
      }
    }
  }
  if (errors.length === 0) {
    checkConflicts(root, errors);
    for (const m of modules) for (const r of m.rules) for (let x: Rule | undefined = r; x; x = x.elseRule) checkTypes(x, errors);
  }
  if (errors.length === 0) errors.push(...checkRecursion(root));
  if (errors.length > 0) throw new PolicyError(errors[0]?.code ?? "rego_compile_error", errors[0]?.message ?? "", undefined, { errors });
  return { root, modules };
}

function detail(e: PolicyError): PolicyErrorDetail {
  return e.errors[0] as PolicyErrorDetail;
}

/** Vars a rule declares locally (args, `some`, `:=`, `every`): these shadow rule names. */
function declaredVars(rule: Rule): Set<string> {
  const out = new Set<string>();
  const addPattern = (t: Term | undefined): void => {
    if (!t) return;
    mapTerms(t, (x) => {
      if (x.type === "var") out.add(x.name);
      return undefined;
    });
  };
  for (const a of rule.args ?? []) addPattern(a);
  const visitBody = (body: Expr[]): void => {
    for (const e of body) visitExpr(e);
  };
  const visitExpr = (e: Expr): void => {
    if (e.kind === "some") e.vars.forEach(addPattern);
    else if (e.kind === "assign") addPattern(e.left);
    else if (e.kind === "somein") {
      addPattern(e.key);
      addPattern(e.value);
    } else if (e.kind === "every") {
      addPattern(e.key);
      addPattern(e.value);
      visitBody(e.body);
    } else if (e.kind === "not") visitExpr(e.expr);
  };
  visitBody(rule.body);
  return out;
}

function resolveRule(rule: Rule, pkg: string[], names: Set<string>, aliases: Map<string, Term>): void {
  const locals = declaredVars(rule);
  const resolveVar = (t: Term & { type: "var" }): Term | undefined => {
    if (locals.has(t.name)) return undefined;
    if (t.name === "data" || t.name === "input") return undefined;
    if (names.has(t.name)) {
      return { type: "ref", head: { type: "var", name: "data", loc: t.loc }, path: [...pkg.slice(1), t.name].map((p) => ({ type: "scalar", value: p, loc: t.loc })), loc: t.loc };
    }
    const alias = aliases.get(t.name);
    if (alias) return relocate(alias, t);
    return undefined;
  };
  const fix = (t: Term): Term =>
    mapTerms(t, (x) => {
      if (x.type === "var") return resolveVar(x);
      if (x.type === "ref" && x.head.type === "var") {
        const h = resolveVar(x.head);
        if (!h) return undefined;
        const path = x.path.map(fix);
        if (h.type === "ref") return { type: "ref", head: h.head, path: [...h.path, ...path], loc: x.loc };
        return { type: "ref", head: h, path, loc: x.loc };
      }
      return undefined;
    });
  rule.value = fix(rule.value);
  if (rule.key) rule.key = fix(rule.key);
  rule.ref = [rule.ref[0] as Term, ...rule.ref.slice(1).map(fix)];
  rule.body = fixBody(rule.body, fix);
}

function relocate(alias: Term, at: Term): Term {
  return mapTerms(alias, (x) => ({ ...x, loc: at.loc }) as Term, false);
}

export function fixBody(body: Expr[], fix: (t: Term) => Term): Expr[] {
  return body.map((e) => fixExpr(e, fix));
}

function fixExpr(e: Expr, fix: (t: Term) => Term): Expr {
  const withs = e.with.map((w) => ({ target: fix(w.target), value: fix(w.value) }));
  switch (e.kind) {
    case "term":
      return { ...e, term: fix(e.term), with: withs };
    case "unify":
    case "assign":
      return { ...e, left: fix(e.left), right: fix(e.right), with: withs };
    case "some":
      return { ...e, with: withs };
    case "somein":
      return { ...e, key: e.key && fix(e.key), value: fix(e.value), domain: fix(e.domain), with: withs };
    case "every":
      return { ...e, key: e.key && fix(e.key), value: fix(e.value), domain: fix(e.domain), body: fixBody(e.body, fix), with: withs };
    case "not":
      return { ...e, expr: fixExpr(e.expr, fix), with: withs };
  }
}

/** Unknown functions and arity mismatches (rego_type_error, as OPA's type checker reports them). */
function checkCalls(rule: Rule, funcs: Map<string, number>, extra: ReadonlySet<string>, errors: PolicyErrorDetail[]): void {
  const visit = (t: Term): Term => {
    mapTerms(t, (x) => {
      if (x.type !== "call") return undefined;
      const name = refToPath(x.op)?.join(".");
      if (!name) return undefined;
      const b = builtins.get(name);
      let arity: number | undefined;
      if (b) arity = b.arity;
      else if (funcs.has(name)) arity = funcs.get(name);
      else if (extra.has(name)) arity = -1;
      else if (name.startsWith("data.")) arity = -1; // a data function generated at runtime (checked at eval)
      else {
        errors.push({ ...x.loc, message: `undefined function ${name}`, code: "rego_type_error" });
        return undefined;
      }
      if (arity !== undefined && arity >= 0 && x.args.length !== arity && x.args.length !== arity + 1) {
        const msg = x.args.length < arity ? "too few arguments" : "too many arguments";
        errors.push({ ...x.loc, message: `${name}: arity mismatch: ${msg}`, code: "rego_type_error" });
      }
      return undefined;
    });
    return t;
  };
  visit(rule.value);
  if (rule.key) visit(rule.key);
  fixBody(rule.body, visit);
}
