/**
 * A JSON reader with the results and error texts of Go's encoding/json as OPA uses it: numbers stay
 * exact (UseNumber), a repeated key keeps its last value, and a syntax error reads like Go's
 * ("invalid character 'x' looking for beginning of value", "unexpected end of JSON input"), so that
 * built-ins which quote the decoder's error (io.jwt.*) say what OPA says.
 */
import { parseNumber } from "../number.ts";
import { RObject, type Value } from "../value.ts";

class GoJSONError extends Error {}

/** Go's quoteChar: the offending byte as a quoted character, e.g. 'x', '\n', '\''. */
function quoteChar(c: number): string {
  if (c === 0x27) return "'\\''";
  if (c === 0x22) return "'\"'";
  const esc: Record<number, string> = { 7: "\\a", 8: "\\b", 9: "\\t", 10: "\\n", 11: "\\v", 12: "\\f", 13: "\\r", 0x5c: "\\\\" };
  const e = esc[c];
  if (e) return `'${e}'`;
  if (c < 0x20 || (c >= 0x7f && c <= 0xa0) || c === 0xad) return `'\\x${c.toString(16).padStart(2, "0")}'`;
  return `'${String.fromCharCode(c)}'`;
}

const MAX_DEPTH = 10000;
const SIMPLE_ESCAPES: Record<string, string> = { '"': '"', "\\": "\\", "/": "/", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" };

class Reader {
  i = 0;
  constructor(private readonly b: Buffer) {}

  fail(context: string): never {
    if (this.i >= this.b.length) throw new GoJSONError("unexpected end of JSON input");
    throw new GoJSONError(`invalid character ${quoteChar(this.b[this.i] as number)} ${context}`);
  }
  ws(): void {
    for (let c = this.b[this.i]; c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d; c = this.b[++this.i]);
  }
  peek(): number | undefined {
    return this.b[this.i];
  }

  value(depth: number): Value {
    if (depth > MAX_DEPTH) throw new GoJSONError("exceeded max depth");
    this.ws();
    const c = this.peek();
    if (c === 0x7b) return this.object(depth);
    if (c === 0x5b) return this.array(depth);
    if (c === 0x22) return this.string();
    if (c === 0x2d || (c !== undefined && c >= 0x30 && c <= 0x39)) return this.number();
    if (c === 0x74) return this.literal("true", true);
    if (c === 0x66) return this.literal("false", false);
    if (c === 0x6e) return this.literal("null", null);
    return this.fail("looking for beginning of value");
  }

  literal(word: string, v: Value): Value {
    for (let k = 0; k < word.length; k++, this.i++) {
      if (this.peek() !== word.charCodeAt(k)) this.fail(`in literal ${word} (expecting '${word[k] ?? ""}')`);
    }
    return v;
  }

  number(): Value {
    const start = this.i;
    const digit = (): boolean => {
      const c = this.peek();
      return c !== undefined && c >= 0x30 && c <= 0x39;
    };
    if (this.peek() === 0x2d) {
      this.i++;
      if (!digit()) this.fail("in numeric literal");
    }
    if (this.peek() === 0x30) this.i++;
    else while (digit()) this.i++;
    if (this.peek() === 0x2e) {
      this.i++;
      if (!digit()) this.fail("after decimal point in numeric literal");
      while (digit()) this.i++;
    }
    if (this.peek() === 0x65 || this.peek() === 0x45) {
      this.i++;
      if (this.peek() === 0x2b || this.peek() === 0x2d) this.i++;
      if (!digit()) this.fail("in exponent of numeric literal");
      while (digit()) this.i++;
    }
    return parseNumber(this.b.subarray(start, this.i).toString("latin1")) ?? 0;
  }

  string(): string {
    this.i++;
    // Raw bytes are decoded run by run; an escape ends a run at a character boundary (`\\` is ASCII).
    let s = "";
    let run = this.i;
    for (;;) {
      const c = this.peek();
      if (c === undefined || c < 0x20) this.fail("in string literal");
      if (c === 0x22) break;
      if (c !== 0x5c) {
        this.i++;
        continue;
      }
      s += this.b.subarray(run, this.i).toString("utf8");
      this.i++;
      const e = this.peek();
      const simple = e === undefined ? undefined : SIMPLE_ESCAPES[String.fromCharCode(e)];
      if (simple !== undefined) {
        s += simple;
        this.i++;
      } else if (e === 0x75) {
        this.i++;
        const hex = this.b.subarray(this.i, this.i + 4).toString("latin1");
        for (let k = 0; k < 4; k++, this.i++) if (!/^[0-9a-fA-F]$/.test(String.fromCharCode(this.peek() ?? 0x20))) this.fail("in \\u hexadecimal character escape");
        s += String.fromCharCode(parseInt(hex, 16));
      } else this.fail("in string escape code");
      run = this.i;
    }
    s += this.b.subarray(run, this.i).toString("utf8");
    this.i++;
    // A lone surrogate from \uD800 becomes U+FFFD, as Go decodes it.
    return s.toWellFormed();
  }

  object(depth: number): RObject {
    this.i++;
    const out = new RObject();
    this.ws();
    if (this.peek() === 0x7d) {
      this.i++;
      return out;
    }
    for (;;) {
      this.ws();
      if (this.peek() !== 0x22) this.fail("looking for beginning of object key string");
      const k = this.string();
      this.ws();
      if (this.peek() !== 0x3a) this.fail("after object key");
      this.i++;
      out.set(k, this.value(depth + 1));
      this.ws();
      if (this.peek() === 0x2c) {
        this.i++;
        continue;
      }
      if (this.peek() === 0x7d) {
        this.i++;
        return out;
      }
      this.fail("after object key:value pair");
    }
  }

  array(depth: number): Value[] {
    this.i++;
    const out: Value[] = [];
    this.ws();
    if (this.peek() === 0x5d) {
      this.i++;
      return out;
    }
    for (;;) {
      out.push(this.value(depth + 1));
      this.ws();
      if (this.peek() === 0x2c) {
        this.i++;
        continue;
      }
      if (this.peek() === 0x5d) {
        this.i++;
        return out;
      }
      this.fail("after array element");
    }
  }
}

/**
 * Parses JSON text as OPA's util.UnmarshalJSON does (a json.Decoder reading one value, then one more
 * token): returns the value, or the decoder's error text ("EOF" for no input, "unexpected EOF" for a
 * cut-off value, Go's syntax errors otherwise, and its own message for a second value).
 */
export function parseGoJSON(text: string): { value: Value } | { error: string } {
  const r = new Reader(Buffer.from(text, "utf8"));
  const eof = (e: GoJSONError): string => (e.message === "unexpected end of JSON input" ? "unexpected EOF" : e.message);
  r.ws();
  if (r.peek() === undefined) return { error: "EOF" };
  let value: Value;
  try {
    value = r.value(0);
  } catch (e) {
    if (e instanceof GoJSONError) return { error: eof(e) };
    throw e;
  }
  r.ws();
  const c = r.peek();
  if (c === undefined) return { value };
  // The decoder's Token(): a closing bracket or separator is a syntax error, an opening one a token.
  if (c === 0x7d || c === 0x5d || c === 0x2c || c === 0x3a) return { error: `invalid character ${quoteChar(c)} looking for beginning of value` };
  if (c === 0x7b || c === 0x5b) return { error: `error: invalid character '${String.fromCharCode(c)}' after top-level value` };
  const start = r.i;
  let next: Value;
  try {
    next = r.value(0);
  } catch (e) {
    if (e instanceof GoJSONError) return { error: eof(e) };
    throw e;
  }
  // A trailing null is no token at all, so OPA accepts the input.
  if (next === null) return { value };
  const tok = typeof next === "string" ? next : typeof next === "boolean" ? `%!s(bool=${String(next)})` : Buffer.from(text, "utf8").subarray(start, r.i).toString("utf8");
  return { error: `error: invalid character '${tok}' after top-level value` };
}

/** Go's json.Valid: exactly one JSON value, nothing but white space around it. */
export function isValidJSON(text: string): boolean {
  const r = new Reader(Buffer.from(text, "utf8"));
  try {
    r.value(0);
    r.ws();
    return r.peek() === undefined;
  } catch (e) {
    if (e instanceof GoJSONError) return false;
    throw e;
  }
}
