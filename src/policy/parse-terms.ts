/**
 * Term-level Rego parsing (scalars, refs, calls, collections, comprehensions, infix operators).
 * Statement-level parsing (modules, rules, bodies) extends this class in parser.ts.
 */
import type { Expr, Loc, Term } from "./ast.ts";
import { parseError } from "./errors.ts";
import type { Token } from "./lexer.ts";
import { parseNumber } from "./number.ts";

const infixNames: Record<string, string> = {
  "+": "plus",
  "-": "minus",
  "*": "mul",
  "/": "div",
  "%": "rem",
  "&": "and",
  "|": "or",
  "==": "equal",
  "!=": "neq",
  "<": "lt",
  "<=": "lte",
  ">": "gt",
  ">=": "gte",
};

const keywords = new Set(["not", "some", "with", "as", "if", "else", "contains", "in", "every", "default", "import", "package"]);

export abstract class TermParser {
  protected pos = 0;
  /** Whether a newline ends the current expression (true inside bodies, false inside brackets). */
  protected nlStack: boolean[] = [true];
  private wildcards = 0;

  constructor(protected readonly toks: Token[]) {}

  protected abstract parseBody(closer: string): Expr[];

  protected get tok(): Token {
    return this.toks[this.pos] as Token;
  }
  protected peek(n = 1): Token {
    return this.toks[Math.min(this.pos + n, this.toks.length - 1)] as Token;
  }
  protected next(): Token {
    const t = this.tok;
    if (this.pos < this.toks.length - 1) this.pos++;
    return t;
  }
  protected is(text: string, kind?: string): boolean {
    const t = this.tok;
    return t.text === text && (kind ? t.kind === kind : t.kind === "op" || t.kind === "ident");
  }
  protected isOp(text: string): boolean {
    return this.tok.kind === "op" && this.tok.text === text;
  }
  protected expectOp(text: string): Token {
    if (!this.isOp(text)) throw this.unexpected(`expected ${text}`);
    return this.next();
  }
  protected unexpected(what?: string): Error {
    const t = this.tok;
    const found = t.kind === "eof" ? "EOF" : t.text;
    return parseError(what ? `unexpected ${found} token: ${what}` : `unexpected ${found} token`, t.loc);
  }
  /** True when the current token continues the expression on the same line (or newlines are free). */
  protected sameExpr(): boolean {
    return !this.tok.nl || this.nlStack[this.nlStack.length - 1] === false;
  }
  protected adjacent(): boolean {
    const prev = this.toks[this.pos - 1];
    return prev !== undefined && prev.end === this.tok.start;
  }
  protected nested<T>(sensitive: boolean, f: () => T): T {
    this.nlStack.push(sensitive);
    try {
      return f();
    } finally {
      this.nlStack.pop();
    }
  }
  protected wildcard(loc: Loc): Term {
    return { type: "var", name: `_$${this.wildcards++}`, loc };
  }

  /** Full term including `in` membership. */
  parseTermIn(noOr = false, keyVal = false): Term {
    let lhs = this.parseRelation(noOr);
    if (keyVal && this.isOp(",")) {
      const save = this.pos;
      this.next();
      const value = this.parseRelation(noOr);
      if (this.is("in", "ident") && this.sameExpr()) {
        const loc = this.next().loc;
        const rhs = this.parseRelation(noOr);
        lhs = call("internal.member_3", [lhs, value, rhs], loc);
      } else this.pos = save;
    }
    while (this.is("in", "ident") && this.sameExpr()) {
      const loc = this.next().loc;
      const rhs = this.parseRelation(noOr);
      lhs = call("internal.member_2", [lhs, rhs], loc);
    }
    return lhs;
  }

  parseRelation(noOr = false): Term {
    let lhs = this.parseBinary(0, noOr);
    while (this.tok.kind === "op" && ["==", "!=", "<", "<=", ">", ">="].includes(this.tok.text) && this.sameExpr()) {
      const op = this.next();
      const rhs = this.parseBinary(0, noOr);
      lhs = call(infixNames[op.text] as string, [lhs, rhs], op.loc);
    }
    return lhs;
  }

  private static levels = [["|"], ["&"], ["+", "-"], ["*", "/", "%"]];

  private parseBinary(level: number, noOr: boolean): Term {
    const ops = TermParser.levels[level];
    if (!ops) return this.parsePostfix();
    let lhs = this.parseBinary(level + 1, noOr);
    while (this.tok.kind === "op" && ops.includes(this.tok.text) && this.sameExpr() && !(noOr && this.tok.text === "|")) {
      const op = this.next();
      const rhs = this.parseBinary(level + 1, noOr);
      lhs = call(infixNames[op.text] as string, [lhs, rhs], op.loc);
    }
    return lhs;
  }

  protected parsePostfix(): Term {
    let t = this.parsePrimary();
    for (;;) {
      if (this.isOp(".") && this.adjacent()) {
        this.next();
        const id = this.next();
        if (id.kind !== "ident") throw parseError("expected identifier after '.'", id.loc);
        t = appendPath(t, { type: "scalar", value: id.text, loc: id.loc });
      } else if (this.isOp("[") && this.adjacent()) {
        this.next();
        const key = this.nested(false, () => this.parseTermIn());
        this.expectOp("]");
        t = appendPath(t, key);
      } else if (this.isOp("(") && this.adjacent() && (t.type === "var" || t.type === "ref")) {
        const loc = this.next().loc;
        const args = this.nested(false, () => this.parseList(")"));
        t = { type: "call", op: t, args, loc: t.loc ?? loc };
      } else return t;
    }
  }

  protected parseList(closer: string): Term[] {
    const items: Term[] = [];
    while (!this.isOp(closer)) {
      items.push(this.parseTermIn());
      if (!this.isOp(",")) break;
      this.next();
    }
    this.expectOp(closer);
    return items;
  }

  private parsePrimary(): Term {
    const t = this.tok;
    const loc = t.loc;
    if (t.kind === "number") {
      this.next();
      const n = parseNumber(t.text);
      if (n === undefined) throw parseError("illegal number format", loc);
      return { type: "scalar", value: n, loc };
    }
    if (t.kind === "string") {
      this.next();
      return { type: "scalar", value: t.str ?? "", loc };
    }
    if (t.kind === "ident") {
      if (t.text === "true" || t.text === "false") {
        this.next();
        return { type: "scalar", value: t.text === "true", loc };
      }
      if (t.text === "null") {
        this.next();
        return { type: "scalar", value: null, loc };
      }
      if (t.text === "set" && this.peek().text === "(" && this.peek(2).text === ")") {
        this.pos += 3;
        return { type: "set", items: [], loc };
      }
      const nextTok = this.peek();
      if (keywords.has(t.text) && !(nextTok.text === "(" && nextTok.start === t.end)) throw this.unexpected();
      this.next();
      if (t.text === "_") return this.wildcard(loc);
      return { type: "var", name: t.text, loc };
    }
    if (t.kind !== "op") throw this.unexpected();
    if (t.text === "-") {
      this.next();
      const operand = this.parsePostfix();
      if (operand.type === "scalar" && typeof operand.value !== "string" && operand.value !== null && typeof operand.value !== "boolean" && !Array.isArray(operand.value)) {
        const n = parseNumber("-" + (this.toks[this.pos - 1] as Token).text);
        if (n !== undefined && (this.toks[this.pos - 1] as Token).kind === "number") return { type: "scalar", value: n, loc };
      }
      return call("minus", [{ type: "scalar", value: 0, loc }, operand], loc);
    }
    if (t.text === "(") {
      this.next();
      const inner = this.nested(false, () => this.parseTermIn(false, true));
      this.expectOp(")");
      return inner;
    }
    if (t.text === "[") {
      this.next();
      return this.nested(false, () => {
        if (this.isOp("]")) {
          this.next();
          return { type: "array", items: [], loc } as Term;
        }
        const first = this.parseTermIn(true);
        if (this.isOp("|")) {
          this.next();
          const body = this.nested(true, () => this.parseBody("]"));
          this.expectOp("]");
          return { type: "arraycomp", term: first, body, loc } as Term;
        }
        const items = [first];
        if (this.isOp(",")) {
          this.next();
          items.push(...this.parseList("]"));
        } else this.expectOp("]");
        return { type: "array", items, loc } as Term;
      });
    }
    if (t.text === "{") {
      this.next();
      return this.nested(false, () => this.parseBraces(loc));
    }
    throw this.unexpected();
  }

  private parseBraces(loc: Loc): Term {
    if (this.isOp("}")) {
      this.next();
      return { type: "object", items: [], loc };
    }
    const first = this.parseTermIn(true);
    if (this.isOp(":")) {
      this.next();
      const value = this.parseTermIn(true);
      if (this.isOp("|")) {
        this.next();
        const body = this.nested(true, () => this.parseBody("}"));
        this.expectOp("}");
        return { type: "objcomp", key: first, value, body, loc };
      }
      const items: [Term, Term][] = [[first, value]];
      while (this.isOp(",")) {
        this.next();
        if (this.isOp("}")) break;
        const k = this.parseTermIn();
        this.expectOp(":");
        items.push([k, this.parseTermIn()]);
      }
      this.expectOp("}");
      return { type: "object", items, loc };
    }
    if (this.isOp("|")) {
      this.next();
      const body = this.nested(true, () => this.parseBody("}"));
      this.expectOp("}");
      return { type: "setcomp", term: first, body, loc };
    }
    const items = [first];
    if (this.isOp(",")) {
      this.next();
      items.push(...this.parseList("}"));
    } else this.expectOp("}");
    return { type: "set", items, loc };
  }
}

function call(name: string, args: Term[], loc: Loc): Term {
  return { type: "call", op: nameTerm(name, loc), args, loc };
}

/** A (possibly dotted) built-in name as a var or ref term. */
function nameTerm(name: string, loc: Loc): Term {
  const parts = name.split(".");
  const head: Term = { type: "var", name: parts[0] as string, loc };
  if (parts.length === 1) return head;
  return { type: "ref", head, path: parts.slice(1).map((p) => ({ type: "scalar", value: p, loc })), loc };
}

function appendPath(t: Term, key: Term): Term {
  if (t.type === "ref") return { ...t, path: [...t.path, key] };
  return { type: "ref", head: t, path: [key], loc: t.loc };
}
