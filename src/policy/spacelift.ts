/** Spacelift run-initialization policies: `deny` messages and the optional `sample` rule. */
import type { CompiledPolicy, EvalOptions } from "./engine.ts";
export interface InitPolicyResult {
  deny: string[];
  sample: boolean;
  outcome: "allow" | "deny";
}
export function evaluateInitPolicy(_policy: CompiledPolicy, _input: unknown, _opts: EvalOptions = {}): InitPolicyResult {
  return { deny: [], sample: false, outcome: "allow" };
}
