/** units.parse and units.parse_bytes (SI and IEC suffixes, as OPA). */
import { parseNumber, numArith, isInt, toFloat, type Num } from "../number.ts";
import { builtinErr, register, str } from "./registry.ts";

const si: Record<string, number> = { "": 1, k: 1e3, m: 1e6, g: 1e9, t: 1e12, p: 1e15, e: 1e18 };
const iec: Record<string, number> = { ki: 2 ** 10, mi: 2 ** 20, gi: 2 ** 30, ti: 2 ** 40, pi: 2 ** 50, ei: 2 ** 60 };

function split(name: string, s: string): { n: Num; unit: string } {
  const t = s.replace(/"/g, "");
  const m = /^(-?(?:[0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?|[0-9]+\.))\s*([a-zA-Z]*)$/.exec(t.trim());
  if (!m || t.trim() !== t) throw builtinErr(name, s.trim() === "" ? "no amount provided" : "could not parse amount to a number");
  const n = parseNumber((m[1] as string).replace(/\.$/, ""));
  if (n === undefined) throw builtinErr(name, "could not parse amount to a number");
  return { n, unit: m[2] ?? "" };
}

function scale(n: Num, factor: number | bigint): Num {
  const f = typeof factor === "bigint" ? factor : factor;
  const r = numArith(n, typeof f === "bigint" ? f : Number.isSafeInteger(f) ? f : BigInt(f), "*");
  return r;
}

register("units.parse", 1, (a) => {
  const { n, unit } = split("units.parse", str("units.parse", a, 0));
  if (unit === "m") return toFloat(n) / 1000;
  const lower = unit.toLowerCase();
  if (unit.length === 2 && lower.endsWith("i") && iec[lower] !== undefined) return scale(n, BigInt(iec[lower] as number));
  const f = unit === "" ? 1 : unit === "K" || unit === "k" ? si.k : unit === "M" ? si.m : unit === "G" || unit === "g" ? si.g : unit === "T" || unit === "t" ? si.t : unit === "P" || unit === "p" ? si.p : unit === "E" || unit === "e" ? si.e : undefined;
  if (f === undefined) throw builtinErr("units.parse", "unit not recognized");
  return scale(n, BigInt(f));
});

register("units.parse_bytes", 1, (a) => {
  const { n, unit } = split("units.parse_bytes", str("units.parse_bytes", a, 0));
  const u = unit.toLowerCase().replace(/b$/, "");
  let f: number | undefined;
  if (u === "") f = 1;
  else if (u.endsWith("i")) f = iec[u];
  else f = si[u];
  if (f === undefined) throw builtinErr("units.parse_bytes", "unit not recognized");
  const r = scale(n, BigInt(f));
  return isInt(r) ? r : Math.trunc(toFloat(r));
});
