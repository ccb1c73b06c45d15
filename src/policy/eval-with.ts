/** `with`: evaluates one expression in a modified context (input, data, mocked functions). */
import type { Expr, Term } from "./ast.ts";
import { PolicyError } from "./errors.ts";
import { funcNode } from "./eval-call.ts";
import type { FunctionOverride, State } from "./eval-state.ts";
import type { Env, Evaluator, K } from "./eval.ts";
import { builtins } from "./builtins/registry.ts";
import { refToPath } from "./parser.ts";
import { RObject, type Value } from "./value.ts";

function patch(v: Value | undefined, path: string[], value: Value): Value {
  if (path.length === 0) return value;
  const o = new RObject();
  if (v instanceof RObject) for (const [key, x] of v.entries()) o.set(key, x);
  const [head, ...rest] = path as [string, ...string[]];
  o.set(head, patch(o.get(head), rest, value));
  return o;
}

function isFunctionName(ev: Evaluator, t: Term): boolean {
  const name = refToPath(t)?.join(".");
  if (!name) return false;
  return funcNode(ev.state.root, name) !== undefined || builtins.has(name) || ev.state.extraBuiltins.has(name);
}

export function applyWith(ev: Evaluator, e: Expr, env: Env, k: K): boolean {
  const old = ev.state;
  const next: State = { ...old, cache: new Map(), funcs: new Map(old.funcs), overlays: [...old.overlays] };
  for (const w of e.with) {
    const path = refToPath(w.target);
    if (!path) throw new PolicyError("rego_compile_error", "with keyword target must reference existing input, data, or a function", w.target.loc);
    const fnTarget = path[0] !== "input" && (path[0] !== "data" || funcNode(old.root, path.join(".")) !== undefined);
    let over: FunctionOverride | undefined;
    let value: Value | undefined;
    if (fnTarget && isFunctionName(ev, w.value)) over = { kind: "func", target: w.value };
    else {
      ev.evalTerm(w.value, env, (v) => ((value = v), true));
      if (value === undefined) return false;
      if (fnTarget) over = { kind: "value", value };
    }
    if (over) next.funcs.set(path.join("."), over);
    else if (path[0] === "input") next.input = patch(next.input, path.slice(1), value as Value);
    else next.overlays.push({ path, value: value as Value });
  }
  ev.state = next;
  try {
    return ev.evalExprPlain(e, env, () => {
      ev.state = old;
      try {
        return k();
      } finally {
        ev.state = next;
      }
    });
  } finally {
    ev.state = old;
  }
}
