/**
 * units.parse and units.parse_bytes, as OPA computes them:
 * - quotes are dropped and any space is an error; the amount is the leading run of digits, '.',
 *   and an exponent (`1e3`, `2.5E-2`), the rest is the unit (a lone trailing `e`/`E` is the exa unit);
 * - units.parse keeps the case of the unit's first letter (`m` milli, `M` mega) and lowers the rest
 *   (`KI` is `Ki`), computes exactly (milli is the double nearest 0.001, as OPA's big.Rat.SetFloat64)
 *   and rounds a fraction to 10 decimal places;
 * - units.parse_bytes lowers everything, accepts `k`/`kb`/`ki`/`kib`... (no bare `b`), multiplies in
 *   64-bit binary floating point (Go's big.Float default) and truncates toward zero.
 */
import { fromBigInt, parseNumber, type Num } from "../number.ts";
import { builtinErr, register, str } from "./registry.ts";

const KI = 1n << 10n;
/** Multipliers by lower-case unit letter(s); a Map, so that a unit such as "constructor" is simply unknown. */
const FACTORS = new Map<string, bigint>([
  ["", 1n], ["k", 10n ** 3n], ["m", 10n ** 6n], ["g", 10n ** 9n], ["t", 10n ** 12n], ["p", 10n ** 15n], ["e", 10n ** 18n],
  ["ki", KI], ["mi", KI ** 2n], ["gi", KI ** 3n], ["ti", KI ** 4n], ["pi", KI ** 5n], ["ei", KI ** 6n],
]);
/** OPA caps exponent digits so that "1e100000000" cannot stall the evaluator. */
const MAX_EXPONENT_DIGITS = 6;

/** Splits "10.5KiB" into amount "10.5" and unit "KiB"; null when the exponent is too long. */
function extract(s: string): { num: string; unit: string } | null {
  const digit = (c: string | undefined): boolean => c !== undefined && c >= "0" && c <= "9";
  for (let i = 0; i < s.length; i++) {
    const c = s[i] as string;
    if (!digit(c) && c !== "." && c !== "e" && c !== "E" && c !== "+" && c !== "-") return { num: s.slice(0, i), unit: s.slice(i) };
    if (c !== "e" && c !== "E") continue;
    const next = s[i + 1];
    // `5E` or `5ei`: the e starts the unit, not an exponent.
    if (!digit(next) && next !== "+" && next !== "-") return { num: s.slice(0, i), unit: s.slice(i) };
    if (next === "+" || next === "-") i++;
    let end = i + 1;
    while (digit(s[end])) end++;
    if (end - (i + 1) > MAX_EXPONENT_DIGITS) return null;
  }
  return { num: s, unit: "" };
}

/** A decimal amount as mantissa * 10^exp (Go's big.Rat / big.Float syntax restricted to decimals). */
function decimal(num: string): { m: bigint; e: number } | undefined {
  const d = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(num);
  if (!d) return undefined;
  const [, sign = "", int = "", frac = "", exp = "0"] = d;
  if (int + frac === "") return undefined;
  return { m: BigInt(sign + (int + frac || "0")), e: Number(exp) - frac.length };
}

const bitLen = (x: bigint): number => (x === 0n ? 0 : x.toString(2).length);

/** n/d rounded half-to-even onto a 64-bit mantissa: [mantissa, binary exponent]. */
function round64(n: bigint, d: bigint): [bigint, number] {
  if (n === 0n) return [0n, 0];
  let shift = 64 - (bitLen(n) - bitLen(d));
  let q: bigint;
  let r: bigint;
  for (;;) {
    const num = shift >= 0 ? n << BigInt(shift) : n;
    const den = shift >= 0 ? d : d << BigInt(-shift);
    q = num / den;
    r = num % den;
    if (bitLen(q) > 64) shift--;
    else if (bitLen(q) < 64) shift++;
    else {
      const twice = 2n * r;
      if (twice > den || (twice === den && (q & 1n) === 1n)) q += 1n;
      break;
    }
  }
  if (bitLen(q) > 64) {
    q >>= 1n;
    shift--;
  }
  return [q, -shift];
}

function parseBytesAmount(m: bigint, e: number, factor: bigint): bigint {
  const neg = m < 0n;
  const abs = neg ? -m : m;
  // Amount below any byte count: skip building 10^|e| for inputs such as 5e-999999.
  if (e < 0 && -e > abs.toString().length + 1) return 0n;
  const [fm, fe] = e >= 0 ? round64(abs * 10n ** BigInt(e), 1n) : round64(abs, 10n ** BigInt(-e));
  const [pm, pe] = round64(fm * factor, 1n);
  const exp = fe + pe;
  const int = exp >= 0 ? pm << BigInt(exp) : pm >> BigInt(-exp);
  return neg ? -int : int;
}

register("units.parse_bytes", 1, (a) => {
  const name = "units.parse_bytes";
  const s = str(name, a, 0).toLowerCase().replace(/"/g, "");
  if (s.includes(" ")) throw builtinErr(name, "spaces not allowed in resource strings");
  const parts = extract(s);
  if (!parts) throw builtinErr(name, "exponent too large");
  if (parts.num === "") throw builtinErr(name, "no byte amount provided");
  // "kb" and "kib" are "k" and "ki"; a bare "b" is not a unit.
  const u = parts.unit.length > 1 && parts.unit.endsWith("b") ? parts.unit.slice(0, -1) : parts.unit;
  const factor = FACTORS.get(u);
  if (factor === undefined) throw builtinErr(name, `byte unit ${parts.unit} not recognized`);
  const d = decimal(parts.num);
  if (!d) throw builtinErr(name, "could not parse byte amount to a number");
  return fromBigInt(parseBytesAmount(d.m, d.e, factor));
});

/** 0.001 as the exact binary fraction of its double, the factor OPA multiplies milli by. */
const MILLI_NUM = BigInt(0.001 * 2 ** 62);
const MILLI_DEN = 1n << 62n;

/** An exact rational as OPA prints it: the integer, or the fraction rounded to 10 places (half away from zero). */
function rational(n: bigint, d: bigint): Num {
  if (n % d === 0n) return fromBigInt(n / d);
  const neg = n < 0n !== d < 0n;
  const an = n < 0n ? -n : n;
  const ad = d < 0n ? -d : d;
  const scaled = an * 10n ** 10n;
  let q = scaled / ad;
  if (2n * (scaled % ad) >= ad) q += 1n;
  const digits = q.toString().padStart(11, "0");
  const text = `${neg ? "-" : ""}${digits.slice(0, -10)}.${digits.slice(-10)}`;
  return parseNumber(text) ?? 0;
}

function unitsAmount(m: bigint, e: number, unit: string): Num {
  if (unit === "m") {
    // Tiny amounts round to 0 at 10 places; do not build 10^|e| for them.
    if (e < 0 && -e > m.toString().length + 12) return 0;
    return e >= 0 ? rational(m * 10n ** BigInt(e) * MILLI_NUM, MILLI_DEN) : rational(m * MILLI_NUM, MILLI_DEN * 10n ** BigInt(-e));
  }
  // UNITS was checked by the caller, so the factor exists.
  const f = FACTORS.get(unit.toLowerCase()) ?? 1n;
  // Exact integers of any size (1e999999 stays a decimal of the engine, not a million-digit bigint).
  if (e >= 0) return parseNumber(`${m * f}e${e}`) ?? 0;
  if (-e > (m * f).toString().length + 12) return 0;
  return rational(m * f, 10n ** BigInt(-e));
}

const UNITS = new Set(["", "m", "k", "K", "M", "g", "G", "t", "T", "p", "P", "e", "E", "ki", "Ki", "mi", "Mi", "gi", "Gi", "ti", "Ti", "pi", "Pi", "ei", "Ei"]);

register("units.parse", 1, (a) => {
  const name = "units.parse";
  const s = str(name, a, 0).replace(/"/g, "");
  if (s.includes(" ")) throw builtinErr(name, "spaces not allowed in resource strings");
  const parts = extract(s);
  if (!parts) throw builtinErr(name, "exponent too large");
  if (parts.num === "") throw builtinErr(name, "no amount provided");
  // Only the first letter keeps its case, so that m (milli) and M (mega) differ.
  const unit = parts.unit.length > 1 ? parts.unit[0] + parts.unit.slice(1).toLowerCase() : parts.unit;
  if (!UNITS.has(unit)) throw builtinErr(name, `unit ${unit} not recognized`);
  const d = decimal(parts.num);
  if (!d) throw builtinErr(name, "could not parse amount to a number");
  return unitsAmount(d.m, d.e, unit);
});
