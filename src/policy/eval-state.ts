/** The evaluation context that `with` replaces: input, data overlays, function mocks, caches. */
import type { Term } from "./ast.ts";
import type { BuiltinContext } from "./builtins/registry.ts";
import type { RuleNode } from "./compiler.ts";
import type { Value } from "./value.ts";

export type FunctionOverride = { kind: "func"; target: Term } | { kind: "value"; value: Value };

export interface State {
  root: RuleNode;
  data: Value;
  input: Value | undefined;
  /** `with data.a.b as v`, keyed by the joined path. */
  overlays: { path: string[]; value: Value }[];
  /** `with f as g`, keyed by the function's dotted name (`data.pkg.f` or a built-in name). */
  funcs: Map<string, FunctionOverride>;
  /** Node values computed in this context. */
  cache: Map<RuleNode, Value | undefined | typeof PENDING>;
  strict: boolean;
  deadline: number;
  builtinCtx: BuiltinContext;
  /** Extra host functions (e.g. Spacelift's `sanitized`). */
  extraBuiltins: Map<string, (...args: Value[]) => Value | undefined>;
}

export const PENDING = Symbol("pending");
