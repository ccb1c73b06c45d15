/** Function calls: user functions (data refs), built-ins, host functions, and `with` mocks. */
import type { Term } from "./ast.ts";
import { builtins } from "./builtins/registry.ts";
import type { RuleNode } from "./compiler.ts";
import { BuiltinError, PolicyError } from "./errors.ts";
import { callFunction } from "./eval-data.ts";
import type { Env, Evaluator, VK } from "./eval.ts";
import { refToPath } from "./parser.ts";
import type { Value } from "./value.ts";

export function funcNode(root: RuleNode, name: string): RuleNode | undefined {
  if (!name.startsWith("data.")) return undefined;
  let node: RuleNode | undefined = root;
  for (const p of name.split(".").slice(1)) {
    node = node.children.get(p);
    if (!node) return undefined;
  }
  return node.funcs.length > 0 ? node : undefined;
}

type Impl = { arity: number; relation: boolean; call: (args: Value[]) => Value | Value[] | undefined };

function resolve(ev: Evaluator, name: string, loc: Term["loc"], depth = 0): Impl {
  const over = ev.state.funcs.get(name);
  if (over && depth < 10) {
    if (over.kind === "value") {
      const arity = arityOf(ev, name);
      return { arity, relation: false, call: () => over.value };
    }
    const target = refToPath(over.target)?.join(".") ?? "";
    const saved = ev.state;
    const bare = { ...saved, funcs: new Map(), cache: new Map() };
    ev.state = bare;
    let inner: Impl;
    try {
      inner = resolve(ev, target, loc, depth + 1);
    } finally {
      ev.state = saved;
    }
    return {
      ...inner,
      arity: arityOf(ev, name),
      call: (args) => {
        const outer = ev.state;
        ev.state = { ...outer, funcs: new Map(), cache: new Map() };
        try {
          return inner.call(args);
        } finally {
          ev.state = outer;
        }
      },
    };
  }
  const node = funcNode(ev.state.root, name);
  if (node) {
    const arity = (node.funcs.find((f) => !f.isDefault) ?? node.funcs[0])?.args?.length ?? 0;
    return { arity, relation: false, call: (args) => callFunction(ev, node, args) };
  }
  const b = builtins.get(name);
  if (b) {
    return {
      arity: b.arity,
      relation: b.relation === true,
      call: (args) => {
        try {
          return b.fn(args, ev.state.builtinCtx);
        } catch (e) {
          if (e instanceof PolicyError) throw e;
          if (ev.state.strict) {
            const code = e instanceof BuiltinError ? e.code : "eval_builtin_error";
            const msg = e instanceof BuiltinError ? e.message : `${name}: ${e instanceof Error ? e.message : String(e)}`;
            throw new PolicyError(code, msg, loc, { cause: e });
          }
          return undefined;
        }
      },
    };
  }
  const host = ev.state.extraBuiltins.get(name);
  if (host) return { arity: host.length, relation: false, call: (args) => host(...args) };
  throw new PolicyError("rego_type_error", `undefined function ${name}`, loc);
}

function arityOf(ev: Evaluator, name: string): number {
  const node = funcNode(ev.state.root, name);
  if (node) return (node.funcs.find((f) => !f.isDefault) ?? node.funcs[0])?.args?.length ?? 0;
  const b = builtins.get(name);
  if (b) return b.arity;
  return ev.state.extraBuiltins.get(name)?.length ?? 0;
}

/**
 * Evaluates a call. With one argument more than the function takes, the last argument receives the
 * result (the expression is then true when it unifies).
 */
export function evalCall(ev: Evaluator, t: Term & { type: "call" }, env: Env, k: VK, _exprLevel: boolean): boolean {
  const name = refToPath(t.op)?.join(".");
  if (!name) throw new PolicyError("rego_type_error", "invalid function name", t.loc);
  const impl = resolve(ev, name, t.loc);
  const n = impl.arity < 0 ? t.args.length : impl.arity;
  const out = t.args.length === n + 1 ? (t.args[n] as Term) : undefined;
  if (!out && t.args.length !== n) throw new PolicyError("rego_type_error", `${name}: arity mismatch`, t.loc);
  return ev.evalList(t.args.slice(0, n), 0, [], env, (vals) => {
    const r = impl.call(vals);
    if (r === undefined) return false;
    const results = impl.relation ? (r as Value[]) : [r as Value];
    for (const v of results) {
      const stop = out ? ev.unifyValue(out, v, env, () => k(true)) : k(v);
      if (stop) return true;
    }
    return false;
  });
}
