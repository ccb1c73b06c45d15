/**
 * Public API of the Rego engine: compile a policy once, evaluate queries against it, and evaluate
 * Spacelift run-initialization policies.
 */
import { compileSources, runQuery, type CompiledPolicy, type EvalOptions, type ResultRow } from "./engine.ts";
import { PolicyError } from "./errors.ts";
import { fromJS } from "./value.ts";

export { PolicyError, type PolicyErrorDetail } from "./errors.ts";
export { evaluateInitPolicy } from "./spacelift.ts";
export type { CompiledPolicy } from "./engine.ts";
export { fromJS, type Value } from "./value.ts";

export type ResultSet = ResultRow[];

/** Parses and checks one policy file; throws PolicyError (with file:line:col) when it is invalid. */
export function compilePolicy(source: string, filename: string, hostFunctions: Iterable<string> = ["sanitized", "exec"]): CompiledPolicy {
  try {
    return compileSources([{ source, filename }], hostFunctions);
  } catch (err) {
    // The parser and compiler recurse per level of an expression; brackets are limited by the lexer,
    // but a chain of thousands of operators (`1 + 1 + ...`, `not not ...`) can still exhaust the stack.
    if (err instanceof RangeError && /call stack/i.test(err.message)) {
      throw new PolicyError("rego_parse_error", "an expression is too deeply nested to compile (thousands of chained operators); split it into rules or variables", { file: filename, line: 1, col: 1 });
    }
    throw err;
  }
}

/** Evaluates a query (`data.spacelift.deny`, `x := data.p.q`) against a plain-JS input document. */
export function evaluate(policy: CompiledPolicy, query: string, input: unknown, opts: EvalOptions = {}): ResultSet {
  return runQuery(policy, query, input === undefined ? undefined : fromJS(input), opts);
}
