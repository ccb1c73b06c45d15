/** Compiling module sets and running queries against them. */
import type { Expr, Module } from "./ast.ts";
import "./builtins/all.ts";
import { compileModules, fixBody, type CompiledModules } from "./compiler.ts";
import { PolicyError } from "./errors.ts";
import type { State } from "./eval-state.ts";
import { Evaluator } from "./eval.ts";
import { Parser } from "./parser.ts";
import { orderBody } from "./safety.ts";
import { parseModule } from "./version.ts";
import { RObject, type Value } from "./value.ts";
import { exprVars } from "./walk.ts";

export interface CompiledPolicy extends CompiledModules {
  /** Package of the first module (the one Spacelift evaluates). */
  pkg: string[];
}

export interface EvalOptions {
  timeoutMs?: number;
  strict?: boolean;
  /** Host functions callable by name from the policy. */
  builtins?: Record<string, (...args: Value[]) => Value | undefined>;
  data?: Value;
  /** Fixed clock (ns since epoch) for time.now_ns. */
  nowNs?: bigint;
}

export type ResultRow = Record<string, Value>;

export function compileSources(sources: { source: string; filename: string }[], hostFunctions: Iterable<string> = []): CompiledPolicy {
  const modules: Module[] = sources.map((s) => parseModule(s.source, s.filename));
  const compiled = compileModules(modules, new Set(hostFunctions));
  return { ...compiled, pkg: modules[0]?.pkg ?? [] };
}

function parseQuery(query: string): Expr[] {
  const body = new Parser(query, "query").parseQuery();
  return orderBody(body, new Set(), new Set()).body;
}

export function runQuery(policy: CompiledPolicy, query: string | Expr[], input: Value | undefined, opts: EvalOptions = {}): ResultRow[] {
  const body = typeof query === "string" ? parseQuery(query) : query;
  const fixed = fixBody(body, (t) => t);
  const vars = new Set<string>();
  for (const e of fixed) exprVars(e, vars);
  const userVars = [...vars].filter((v) => !v.startsWith("_$") && v !== "data" && v !== "input" && !v.startsWith("__local"));
  const state: State = {
    root: policy.root,
    data: opts.data ?? new RObject(),
    input,
    overlays: [],
    funcs: new Map(),
    cache: new Map(),
    strict: opts.strict ?? false,
    deadline: Date.now() + (opts.timeoutMs ?? 5000),
    builtinCtx: { nowNs: opts.nowNs ?? BigInt(Date.now()) * 1_000_000n, cache: new Map() },
    extraBuiltins: new Map(Object.entries(opts.builtins ?? {})),
  };
  const ev = new Evaluator(state);
  const env = new Map<string, Value>();
  const rows: ResultRow[] = [];
  try {
    ev.evalBody(fixed, 0, env, () => {
      const row: ResultRow = {};
      for (const v of userVars) {
        const x = env.get(v);
        if (x !== undefined) row[v] = x;
      }
      rows.push(row);
      return false;
    });
  } catch (e) {
    if (e instanceof PolicyError) throw e;
    if (e instanceof RangeError) throw new PolicyError("eval_timeout", "policy evaluation exceeded the stack limit", undefined, { cause: e });
    throw e;
  }
  return rows;
}
