/**
 * Go durations, exactly the grammar of Go's `time.ParseDuration` — `[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+`
 * or a lone `0` — because operators copy these values from Spacelift's documentation and from
 * existing Go-launcher deployments (`1000s`, `120m`, `1h30m`, `1.5h`, `300ms`). Arithmetic follows
 * Go too (integer nanoseconds, fractions truncated, overflow past 2^63-1 ns is an error); the result
 * is given in milliseconds. Negative durations parse in Go but mean nothing for this launcher, so they
 * are rejected here.
 */
import { fail, ok, quote, type ParseResult } from "./parse-result.ts";

const NS_PER_UNIT: Readonly<Record<string, bigint>> = {
  ns: 1n,
  us: 1_000n,
  "µs": 1_000n, // U+00B5 MICRO SIGN
  "μs": 1_000n, // U+03BC GREEK SMALL LETTER MU
  ms: 1_000_000n,
  s: 1_000_000_000n,
  m: 60_000_000_000n,
  h: 3_600_000_000_000n,
};
const MAX_NS = (1n << 63n) - 1n;
const GOOD = "e.g. 90m, 1h30m, 1.5h or 5400s (units ns, us, ms, s, m, h)";

/** Parse a Go duration into milliseconds (may be fractional below 1 ms). Zero is allowed, as in Go. @testSeam */
export function parseGoDuration(text: string): ParseResult<number> {
  if (text === "") return fail("is empty", GOOD);
  let s = text;
  if (s[0] === "-") return fail(`${quote(text)} is negative`, GOOD);
  if (s[0] === "+") s = s.slice(1);
  if (s === "0") return ok(0);
  if (s === "") return fail(`${quote(text)} has no number`, GOOD);

  let total = 0n;
  while (s !== "") {
    const m = /^([0-9]*)(?:\.([0-9]*))?/.exec(s);
    const intDigits = m?.[1] ?? "";
    const fracDigits = m?.[2];
    const consumed = m?.[0].length ?? 0;
    if (intDigits === "" && (fracDigits === undefined || fracDigits === "")) {
      return fail(`${quote(text)} is not a Go duration (expected a number at ${quote(s, 20)})`, GOOD);
    }
    s = s.slice(consumed);
    // The unit is everything up to the next digit or dot, as in Go: "7 minutes" has unit " minutes".
    const unitMatch = /^[^0-9.]*/.exec(s);
    const unit = unitMatch?.[0] ?? "";
    if (unit === "") return fail(`${quote(text)} is not a Go duration (a number without a unit)`, GOOD);
    // Own keys only: a unit such as "__proto__" or "constructor" must not find Object.prototype's.
    const perUnit = Object.hasOwn(NS_PER_UNIT, unit) ? NS_PER_UNIT[unit] : undefined;
    if (perUnit === undefined) {
      return fail(`${quote(text)} is not a Go duration (unknown unit ${quote(unit, 20)})`, GOOD);
    }
    s = s.slice(unit.length);

    const whole = intDigits === "" ? 0n : BigInt(intDigits);
    if (whole > MAX_NS / perUnit) return fail(`${quote(text)} is out of range`, GOOD);
    let ns = whole * perUnit;
    if (fracDigits !== undefined && fracDigits !== "") {
      // Go keeps at most the digits that fit its integer and scales in floating point; 18 digits is
      // beyond any precision that matters at nanosecond resolution.
      const digits = fracDigits.slice(0, 18);
      const scale = 10 ** digits.length;
      ns += BigInt(Math.trunc(Number(digits) * (Number(perUnit) / scale)));
    }
    total += ns;
    if (total > MAX_NS) return fail(`${quote(text)} is out of range`, GOOD);
  }
  return ok(Number(total) / 1e6);
}

/**
 * The longest timeout a timer can hold: JavaScript timers take a signed 32-bit millisecond delay
 * and fire IMMEDIATELY when given more, which would kill every run at once.
 * @testSeam
 */
export const MAX_TIMEOUT_MS = 2 ** 31 - 1;

/** A timeout: a Go duration that is neither zero nor longer than a timer can hold. */
export function parseTimeout(text: string): ParseResult<number> {
  const parsed = parseGoDuration(text);
  if (!parsed.ok) return parsed;
  if (parsed.value === 0) return fail(`${quote(text)} is zero, which is no timeout at all`, GOOD);
  if (parsed.value > MAX_TIMEOUT_MS) {
    return fail(`${quote(text)} is longer than ${formatGoDuration(MAX_TIMEOUT_MS)}, the longest supported timeout`, GOOD);
  }
  return parsed;
}

/** Milliseconds back to a short Go-style duration: 420000 -> "7m", 5400000 -> "1h30m", 300 -> "300ms". */
export function formatGoDuration(ms: number): string {
  if (ms === 0) return "0s";
  if (ms < 1000) return `${ms}ms`;
  const h = Math.floor(ms / 3_600_000);
  const m = Math.floor((ms % 3_600_000) / 60_000);
  const s = (ms % 60_000) / 1000;
  return `${h ? `${h}h` : ""}${m ? `${m}m` : ""}${s ? `${Number(s.toFixed(3))}s` : ""}`;
}
