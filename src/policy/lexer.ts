/** Rego lexer: identifiers, numbers, strings (quoted and raw), operators; tracks newlines. */
import type { Loc } from "./ast.ts";
import { parseError } from "./errors.ts";

export type TokKind = "ident" | "number" | "string" | "op" | "eof";

export interface Token {
  kind: TokKind;
  text: string;
  /** Decoded value for strings. */
  str?: string;
  loc: Loc;
  /** A newline separates this token from the previous one. */
  nl: boolean;
  /** Offset just after the token (for adjacency checks). */
  end: number;
  start: number;
}

const ops = [":=", "==", "!=", "<=", ">=", "{", "}", "[", "]", "(", ")", ".", ",", ";", ":", "=", "<", ">", "+", "-", "*", "/", "%", "|", "&"];

export function lex(src: string, file: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  let line = 1;
  let lineStart = 0;
  let nl = true;
  const loc = (at: number): Loc => ({ file, line, col: at - lineStart + 1 });
  while (i < src.length) {
    const c = src[i] as string;
    if (c === "\n") {
      i++;
      line++;
      lineStart = i;
      nl = true;
      continue;
    }
    if (c === " " || c === "\t" || c === "\r") {
      i++;
      continue;
    }
    if (c === "#") {
      while (i < src.length && src[i] !== "\n") i++;
      continue;
    }
    const start = i;
    const l = loc(i);
    if (/[A-Za-z_]/.test(c)) {
      while (i < src.length && /[A-Za-z0-9_]/.test(src[i] as string)) i++;
      out.push({ kind: "ident", text: src.slice(start, i), loc: l, nl, start, end: i });
    } else if (/[0-9]/.test(c) || (c === "." && /[0-9]/.test(src[i + 1] ?? ""))) {
      while (i < src.length && /[0-9]/.test(src[i] as string)) i++;
      if (src[i] === "." && /[0-9]/.test(src[i + 1] ?? "")) {
        i++;
        while (i < src.length && /[0-9]/.test(src[i] as string)) i++;
      }
      if ((src[i] === "e" || src[i] === "E") && /[0-9+-]/.test(src[i + 1] ?? "")) {
        i += 2;
        while (i < src.length && /[0-9]/.test(src[i] as string)) i++;
      }
      if (/[A-Za-z_]/.test(src[i] ?? "")) throw parseError("illegal number format", l);
      out.push({ kind: "number", text: src.slice(start, i), loc: l, nl, start, end: i });
    } else if (c === '"') {
      i++;
      let s = "";
      for (;;) {
        if (i >= src.length || src[i] === "\n") throw parseError("non-terminated string", l);
        const ch = src[i] as string;
        if (ch === '"') {
          i++;
          break;
        }
        if (ch === "\\") {
          const e = src[i + 1];
          i += 2;
          if (e === "n") s += "\n";
          else if (e === "t") s += "\t";
          else if (e === "r") s += "\r";
          else if (e === "b") s += "\b";
          else if (e === "f") s += "\f";
          else if (e === "/" || e === "\\" || e === '"') s += e;
          else if (e === "u") {
            const hex = src.slice(i, i + 4);
            if (!/^[0-9a-fA-F]{4}$/.test(hex)) throw parseError("illegal escape sequence", l);
            s += String.fromCharCode(parseInt(hex, 16));
            i += 4;
          } else throw parseError(`illegal escape sequence`, l);
          continue;
        }
        s += ch;
        i++;
      }
      out.push({ kind: "string", text: src.slice(start, i), str: s, loc: l, nl, start, end: i });
    } else if (c === "`") {
      const close = src.indexOf("`", i + 1);
      if (close < 0) throw parseError("non-terminated raw string", l);
      const s = src.slice(i + 1, close);
      for (const ch of s) {
        if (ch === "\n") {
          line++;
        }
      }
      const lastNl = s.lastIndexOf("\n");
      if (lastNl >= 0) lineStart = i + 1 + lastNl + 1;
      i = close + 1;
      out.push({ kind: "string", text: src.slice(start, i), str: s, loc: l, nl, start, end: i });
    } else {
      const op = ops.find((o) => src.startsWith(o, i));
      if (!op) throw parseError(`illegal token '${c}'`, l);
      i += op.length;
      out.push({ kind: "op", text: op, loc: l, nl, start, end: i });
    }
    nl = false;
  }
  out.push({ kind: "eof", text: "", loc: loc(i), nl: true, start: i, end: i });
  checkNesting(out);
  return out;
}

/** Deeper than any policy a person writes; the parser and compiler recurse once per level. */
const MAX_NESTING = 200;

/** Refuses brackets nested past MAX_NESTING, so a pathological policy is a parse error, not a stack overflow. */
function checkNesting(tokens: readonly Token[]): void {
  let depth = 0;
  for (const t of tokens) {
    if (t.kind !== "op") continue;
    if (t.text === "{" || t.text === "[" || t.text === "(") {
      if (++depth > MAX_NESTING) throw parseError(`brackets nested more than ${MAX_NESTING} deep; split the expression into rules or variables`, t.loc);
    } else if (t.text === "}" || t.text === "]" || t.text === ")") {
      depth = Math.max(0, depth - 1);
    }
  }
}
