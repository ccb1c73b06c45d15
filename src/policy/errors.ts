/** PolicyError: every failure of the Rego engine, with OPA's error code and source locations. */
import { SpaceliftError } from "../errors.ts";
import type { Loc } from "./ast.ts";

export interface PolicyErrorDetail {
  file: string;
  line: number;
  col: number;
  message: string;
  code: string;
}

export class PolicyError extends SpaceliftError {
  readonly errors: PolicyErrorDetail[];

  constructor(code: string, message: string, loc?: Loc, options?: { cause?: unknown; errors?: PolicyErrorDetail[] }) {
    const errors = options?.errors ?? [{ file: loc?.file ?? "", line: loc?.line ?? 0, col: loc?.col ?? 0, message, code }];
    super(code, formatErrors(errors), options);
    this.errors = errors;
  }
}

/** OPA's text: `file:line: code: message` per error (one per line when there are several). */
function formatErrors(errors: PolicyErrorDetail[]): string {
  const lines = errors.map((e) => (e.file ? `${e.file}:${e.line}:${e.col}: ${e.code}: ${e.message}` : `${e.code}: ${e.message}`));
  return lines.length === 1 ? (lines[0] ?? "") : `${lines.length} errors occurred:\n${lines.join("\n")}`;
}

export function parseError(message: string, loc: Loc): PolicyError {
  return new PolicyError("rego_parse_error", message, loc);
}

export function compileError(code: string, message: string, loc: Loc): PolicyError {
  return new PolicyError(code, message, loc);
}

/** A built-in's own failure: `eval_type_error` for operand types, `eval_builtin_error` otherwise. */
export class BuiltinError extends Error {
  constructor(
    readonly code: "eval_type_error" | "eval_builtin_error",
    message: string,
  ) {
    super(message);
  }
}
