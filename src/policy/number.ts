/**
 * Rego numbers. OPA keeps numbers as arbitrary-precision decimals; we keep the common case fast:
 * a JS `number` for floats and safe integers, a `bigint` for integers beyond 2^53, and a `BigDec`
 * (exact decimal m * 10^e) only for literals a double cannot hold exactly (1e400, 0.1234567890123456789).
 * Invariant: a bigint is never within the safe-integer range; a BigDec is never an integer.
 */
export class BigDec {
  constructor(
    readonly m: bigint,
    readonly e: number,
  ) {}
  toString(): string {
    return decString(this.m, this.e);
  }
}

export type Num = number | bigint | BigDec;

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

export function isNum(v: unknown): v is Num {
  return typeof v === "number" || typeof v === "bigint" || v instanceof BigDec;
}

/** Normalizes an exact integer to the cheapest representation. */
export function fromBigInt(b: bigint): number | bigint {
  return b <= MAX_SAFE && b >= -MAX_SAFE ? Number(b) : b;
}

/** Exact decimal of any number: doubles by their shortest round-trip text. */
export function toDec(n: Num): { m: bigint; e: number } {
  if (n instanceof BigDec) return { m: n.m, e: n.e };
  if (typeof n === "bigint") return normDec(n, 0);
  if (Number.isInteger(n) && Math.abs(n) <= Number.MAX_SAFE_INTEGER) return normDec(BigInt(n), 0);
  return parseDec(String(n)) ?? { m: 0n, e: 0 };
}

function normDec(m: bigint, e: number): { m: bigint; e: number } {
  if (m === 0n) return { m: 0n, e: 0 };
  while (m % 10n === 0n) {
    m /= 10n;
    e++;
  }
  return { m, e };
}

function parseDec(text: string): { m: bigint; e: number } | undefined {
  const match = /^(-?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(text);
  if (!match) return undefined;
  const [, sign, int = "", frac = "", exp = "0"] = match;
  const digits = (int + frac).replace(/^0+/, "") || "0";
  const m = BigInt(sign + digits);
  return normDec(m, Number(exp) - frac.length);
}

function decString(m: bigint, e: number): string {
  if (e >= 0) return (m * 10n ** BigInt(e)).toString();
  const neg = m < 0n;
  let s = (neg ? -m : m).toString();
  const places = -e;
  if (s.length <= places) s = "0".repeat(places - s.length + 1) + s;
  const out = s.slice(0, s.length - places) + "." + s.slice(s.length - places);
  return (neg ? "-" : "") + out;
}

/** Builds a number from exact decimal parts, choosing the cheapest faithful representation. */
function fromDec(m: bigint, e: number): Num {
  const d = normDec(m, e);
  if (d.e >= 0) {
    if (d.e > 4000) return new BigDec(d.m, d.e);
    return fromBigInt(d.m * 10n ** BigInt(d.e));
  }
  const text = decString(d.m, d.e);
  const f = Number(text);
  const back = toDec(f);
  if (back.m === d.m && back.e === d.e) return f;
  return new BigDec(d.m, d.e);
}

/** Parses a Rego/JSON number literal exactly. */
export function parseNumber(text: string): Num | undefined {
  if (/^-?\d+$/.test(text)) return fromBigInt(BigInt(text));
  const d = parseDec(text);
  if (!d) return undefined;
  return fromDec(d.m, d.e);
}

export function isInt(n: Num): boolean {
  if (typeof n === "bigint") return true;
  if (typeof n === "number") return Number.isInteger(n);
  return false;
}

export function toBig(n: number | bigint): bigint {
  return typeof n === "bigint" ? n : BigInt(n);
}

export function toFloat(n: Num): number {
  if (typeof n === "number") return n;
  if (typeof n === "bigint") return Number(n);
  return Number(n.toString());
}

export function numCompare(a: Num, b: Num): number {
  if (typeof a === "number" && typeof b === "number") return a < b ? -1 : a > b ? 1 : 0;
  if (isInt(a) && isInt(b) && !(typeof a === "number" && !Number.isSafeInteger(a)) && !(typeof b === "number" && !Number.isSafeInteger(b))) {
    const x = toBig(a as number | bigint);
    const y = toBig(b as number | bigint);
    return x < y ? -1 : x > y ? 1 : 0;
  }
  const x = toDec(a);
  const y = toDec(b);
  const e = Math.min(x.e, y.e);
  const xm = x.m * 10n ** BigInt(x.e - e);
  const ym = y.m * 10n ** BigInt(y.e - e);
  return xm < ym ? -1 : xm > ym ? 1 : 0;
}

/** Canonical text used for hashing: equal numbers give equal text. */
export function numKey(n: Num): string {
  if (typeof n === "number" && Number.isSafeInteger(n)) return String(n);
  if (typeof n === "bigint") return n.toString();
  const d = toDec(n);
  return d.e >= 0 ? (d.m * 10n ** BigInt(d.e)).toString() : `${d.m}e${d.e}`;
}

/** The text OPA prints for a number (JSON output, sprintf %v, format_int...). */
export function numString(n: Num): string {
  if (typeof n === "number") {
    if (Number.isInteger(n) && Math.abs(n) >= 1e21) return BigInt(n).toString();
    return String(n);
  }
  return n.toString();
}

function exactBinary(a: Num, b: Num, op: "+" | "-" | "*"): Num {
  const x = toDec(a);
  const y = toDec(b);
  if (op === "*") return fromDec(x.m * y.m, x.e + y.e);
  const e = Math.min(x.e, y.e);
  const xm = x.m * 10n ** BigInt(x.e - e);
  const ym = y.m * 10n ** BigInt(y.e - e);
  return fromDec(op === "+" ? xm + ym : xm - ym, e);
}

export function numArith(a: Num, b: Num, op: "+" | "-" | "*"): Num {
  if (typeof a === "number" && typeof b === "number") {
    const r = op === "+" ? a + b : op === "-" ? a - b : a * b;
    if (Number.isInteger(a) && Number.isInteger(b)) {
      if (Number.isSafeInteger(r)) return r;
      const x = BigInt(a);
      const y = BigInt(b);
      return fromBigInt(op === "+" ? x + y : op === "-" ? x - y : x * y);
    }
    return r;
  }
  if (isInt(a) && isInt(b)) {
    const x = toBig(a as number | bigint);
    const y = toBig(b as number | bigint);
    return fromBigInt(op === "+" ? x + y : op === "-" ? x - y : x * y);
  }
  return exactBinary(a, b, op);
}

/** Division; undefined on division by zero (the caller raises). */
export function numDivide(a: Num, b: Num): Num | undefined {
  if (numCompare(b, 0) === 0) return undefined;
  if (isInt(a) && isInt(b)) {
    const x = toBig(a as number | bigint);
    const y = toBig(b as number | bigint);
    if (x % y === 0n) return fromBigInt(x / y);
  }
  return toFloat(a) / toFloat(b);
}

/** Remainder of integers (sign of the dividend, like Go's big.Int.Rem). */
export function numRem(a: Num, b: Num): Num | "zero" | "float" {
  if (!isInt(a) || !isInt(b)) return "float";
  const y = toBig(b as number | bigint);
  if (y === 0n) return "zero";
  return fromBigInt(toBig(a as number | bigint) % y);
}
