/** The Rego syntax tree produced by the parser and rewritten by the compiler. */
import type { Value } from "./value.ts";

export interface Loc {
  file: string;
  line: number;
  col: number;
}

export type Term =
  | { type: "scalar"; value: Value; loc: Loc }
  | { type: "var"; name: string; loc: Loc }
  | { type: "ref"; head: Term; path: Term[]; loc: Loc }
  | { type: "array"; items: Term[]; loc: Loc }
  | { type: "object"; items: [Term, Term][]; loc: Loc }
  | { type: "set"; items: Term[]; loc: Loc }
  | { type: "arraycomp"; term: Term; body: Expr[]; loc: Loc }
  | { type: "setcomp"; term: Term; body: Expr[]; loc: Loc }
  | { type: "objcomp"; key: Term; value: Term; body: Expr[]; loc: Loc }
  | { type: "call"; op: Term; args: Term[]; loc: Loc };

export interface With {
  target: Term;
  value: Term;
}

export type ExprKind =
  | { kind: "term"; term: Term }
  | { kind: "unify"; left: Term; right: Term }
  | { kind: "assign"; left: Term; right: Term }
  | { kind: "some"; vars: Term[] }
  | { kind: "somein"; key: Term | undefined; value: Term; domain: Term }
  | { kind: "every"; key: Term | undefined; value: Term; domain: Term; body: Expr[] }
  | { kind: "not"; expr: Expr };

export type Expr = ExprKind & { with: With[]; loc: Loc };

export type RuleKind = "complete" | "set" | "func";

export interface Rule {
  /** Head reference: first element is the rule name var, then path terms. */
  ref: Term[];
  kind: RuleKind;
  args?: Term[];
  /** For sets (`contains`), the element. */
  key?: Term;
  /** For complete rules and functions, the value (default `true`). */
  value: Term;
  body: Expr[];
  isDefault: boolean;
  elseRule?: Rule;
  loc: Loc;
  /** Set by the compiler. */
  pkg: string[];
  module?: Module;
}

export interface Import {
  path: Term;
  alias?: string;
  loc: Loc;
}

export interface Module {
  file: string;
  pkg: string[];
  pkgLoc: Loc;
  imports: Import[];
  rules: Rule[];
  regoVersion: 0 | 1;
}
