/**
 * Statement-level Rego parsing: package, imports, rules (with `if`/`contains`/`else`/`default`),
 * bodies and expressions (`some`, `every`, `not`, `with`, `=`, `:=`). Accepts both v0 and v1 syntax;
 * version.ts decides which one a module is and what `p[x] { }` means.
 */
import type { Expr, Import, Loc, Module, Rule, Term, With } from "./ast.ts";
import { parseError } from "./errors.ts";
import { lex } from "./lexer.ts";
import { TermParser } from "./parse-terms.ts";

/** What the parser saw that decides the module's Rego version. */
export interface SyntaxFacts {
  bodyWithoutIf?: Loc;
  usesIf?: Loc;
  usesContains?: Loc;
}

export interface RawRule extends Rule {
  /** The value was not written (`p[x] { }`): a set in v0, `true` in v1. */
  implicitValue: boolean;
}

export class Parser extends TermParser {
  readonly facts: SyntaxFacts = {};

  constructor(
    src: string,
    private readonly file: string,
  ) {
    super(lex(src, file));
  }

  parseModule(): { module: Omit<Module, "regoVersion">; rules: RawRule[] } {
    if (!this.is("package", "ident")) throw this.unexpected("expected package");
    const pkgLoc = this.next().loc;
    const pkgTerm = this.parsePostfix();
    const pkg = refToPath(pkgTerm);
    if (!pkg) throw parseError("package must be a reference of strings", pkgLoc);
    const imports: Import[] = [];
    while (this.is("import", "ident")) {
      const loc = this.next().loc;
      const path = this.parsePostfix();
      let alias: string | undefined;
      if (this.is("as", "ident")) {
        this.next();
        alias = this.next().text;
      }
      imports.push({ path, loc, ...(alias ? { alias } : {}) });
    }
    const rules: RawRule[] = [];
    while (this.tok.kind !== "eof") rules.push(...this.parseRule());
    return { module: { file: this.file, pkg, pkgLoc, imports, rules }, rules };
  }

  parseQuery(): Expr[] {
    const body = this.parseBody("");
    if (this.tok.kind !== "eof") throw this.unexpected();
    if (body.length === 0) throw parseError("empty query", this.tok.loc);
    return body;
  }

  private parseRule(): RawRule[] {
    const start = this.tok;
    let isDefault = false;
    if (this.is("default", "ident")) {
      this.next();
      isDefault = true;
    }
    if (this.tok.kind !== "ident") throw this.unexpected("expected rule head");
    const headTerm = this.parsePostfix();
    let ref: Term[];
    let args: Term[] | undefined;
    if (headTerm.type === "call") {
      const r = flattenRef(headTerm.op);
      if (!r) throw parseError("invalid rule head", headTerm.loc);
      ref = r;
      args = headTerm.args;
    } else {
      const r = flattenRef(headTerm);
      if (!r) throw parseError("invalid rule head", headTerm.loc);
      ref = r;
    }
    let key: Term | undefined;
    let value: Term | undefined;
    if (this.is("contains", "ident")) {
      this.facts.usesContains ??= this.tok.loc;
      this.next();
      key = this.parseTermIn();
    } else if (this.isOp("=") || this.isOp(":=")) {
      this.next();
      value = this.parseTermIn();
    }
    const loc = start.loc;
    const body = this.parseRuleBody(isDefault);
    const rule: RawRule = {
      ref,
      kind: args ? "func" : key ? "set" : "complete",
      ...(args ? { args } : {}),
      ...(key ? { key } : {}),
      value: value ?? { type: "scalar", value: true, loc },
      implicitValue: value === undefined && key === undefined,
      body: body ?? [],
      isDefault,
      loc,
      pkg: [],
    };
    if (isDefault) return [rule];
    let tail: Rule = rule;
    while (this.is("else", "ident")) {
      const elseLoc = this.next().loc;
      let elseValue: Term | undefined;
      if (this.isOp("=") || this.isOp(":=")) {
        this.next();
        elseValue = this.parseTermIn();
      }
      const elseBody = this.parseRuleBody(false) ?? [];
      const e: Rule = { ...rule, value: elseValue ?? { type: "scalar", value: true, loc: elseLoc }, body: elseBody, loc: elseLoc };
      delete e.elseRule;
      tail.elseRule = e;
      tail = e;
    }
    const out: RawRule[] = [rule];
    // v0: `p { a } { b }` defines the rule twice.
    while (this.isOp("{") && !this.tok.nl) {
      const extra = this.parseRuleBody(false) ?? [];
      out.push({ ...rule, body: extra });
    }
    return out;
  }

  /** `if { ... }`, `if expr`, `{ ... }` (v0), or nothing. */
  private parseRuleBody(isDefault: boolean): Expr[] | undefined {
    if (isDefault) return undefined;
    if (this.is("if", "ident")) {
      this.facts.usesIf ??= this.tok.loc;
      this.next();
      if (this.isOp("{")) {
        const save = this.pos;
        try {
          return this.parseBlock();
        } catch (e) {
          // `if {x: 1 | ...}`: a comprehension, not a block
          this.pos = save;
          const expr = this.nested(true, () => this.parseExpr());
          if (!expr) throw e;
          return [expr];
        }
      }
      const loc = this.tok.loc;
      const expr = this.nested(true, () => this.parseExpr());
      if (!expr) throw parseError("expected rule body after if", loc);
      return [expr];
    }
    if (this.isOp("{")) {
      this.facts.bodyWithoutIf ??= this.tok.loc;
      return this.parseBlock();
    }
    return undefined;
  }

  private parseBlock(): Expr[] {
    const open = this.expectOp("{");
    const body = this.nested(true, () => this.parseBody("}"));
    this.expectOp("}");
    if (body.length === 0) throw parseError("found empty body", open.loc);
    return body;
  }

  private atEnd(closer: string): boolean {
    return this.tok.kind === "eof" || (closer !== "" && this.isOp(closer));
  }

  protected parseBody(closer: string): Expr[] {
    const out: Expr[] = [];
    for (;;) {
      while (this.isOp(";")) this.next();
      if (this.tok.kind === "eof" || (closer && this.isOp(closer))) return out;
      const expr = this.parseExpr();
      if (!expr) throw this.unexpected();
      out.push(expr);
      if (this.isOp(";")) continue;
      if (this.atEnd(closer)) return out;
      if (!this.tok.nl) throw this.unexpected();
    }
  }

  private parseExpr(): Expr | undefined {
    const loc = this.tok.loc;
    let expr: Expr;
    if (this.is("not", "ident")) {
      this.next();
      const inner = this.parseExpr();
      if (!inner) throw this.unexpected();
      return { kind: "not", expr: inner, with: [], loc };
    } else if (this.is("some", "ident")) {
      this.next();
      const first = this.parseRelation();
      let second: Term | undefined;
      if (this.isOp(",") ) {
        const save = this.pos;
        this.next();
        const t = this.parseRelation();
        if (this.is("in", "ident")) second = t;
        else {
          this.pos = save;
        }
      }
      if (this.is("in", "ident")) {
        this.next();
        const domain = this.parseRelation();
        expr = second
          ? { kind: "somein", key: first, value: second, domain, with: [], loc }
          : { kind: "somein", key: undefined, value: first, domain, with: [], loc };
      } else {
        const vars = [first];
        while (this.isOp(",")) {
          this.next();
          vars.push(this.parseRelation());
        }
        for (const v of vars) if (v.type !== "var") throw parseError("expected var in some declaration", v.loc);
        expr = { kind: "some", vars, with: [], loc };
      }
    } else if (this.is("every", "ident")) {
      this.next();
      const first = this.parseRelation();
      let key: Term | undefined;
      let value = first;
      if (this.isOp(",")) {
        this.next();
        key = first;
        value = this.parseRelation();
      }
      if (!this.is("in", "ident")) throw this.unexpected("expected in");
      this.next();
      const domain = this.parseRelation();
      const body = this.parseBlock();
      expr = { kind: "every", key, value, domain, body, with: [], loc };
    } else {
      const lhs = this.parseTermIn(false, true);
      if ((this.isOp("=") || this.isOp(":=")) && this.sameExpr()) {
        const op = this.next().text;
        const rhs = this.parseTermIn();
        expr = { kind: op === "=" ? "unify" : "assign", left: lhs, right: rhs, with: [], loc };
      } else expr = { kind: "term", term: lhs, with: [], loc };
    }
    while (this.is("with", "ident")) {
      this.next();
      const target = this.parsePostfix();
      if (!this.is("as", "ident")) throw this.unexpected("expected as");
      this.next();
      const value = this.parseTermIn();
      expr.with.push({ target, value } satisfies With);
    }
    return expr;
  }
}

/** [var, ...path] of a var or ref term whose head is a var. */
function flattenRef(t: Term): Term[] | undefined {
  if (t.type === "var") return [t];
  if (t.type === "ref" && t.head.type === "var") return [t.head, ...t.path];
  return undefined;
}

/** The string path of a ground var/ref term (`data.a.b` -> ["data","a","b"]). */
export function refToPath(t: Term): string[] | undefined {
  const parts = flattenRef(t);
  if (!parts) return undefined;
  const out: string[] = [];
  for (const p of parts) {
    if (p.type === "var") out.push(p.name);
    else if (p.type === "scalar" && typeof p.value === "string") out.push(p.value);
    else return undefined;
  }
  return out;
}
