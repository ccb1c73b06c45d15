/** Aggregates over collections: count, sum, product, max, min, sort, all, any. */
import { fromBigInt, isNum, numArith, type Num } from "../number.ts";
import { RObject, RSet, compare, type Value } from "../value.ts";
import { register, typeErr } from "./registry.ts";

register("count", 1, (a) => {
  const v = a[0] as Value;
  if (typeof v === "string") return [...v].length;
  if (Array.isArray(v)) return v.length;
  if (v instanceof RObject || v instanceof RSet) return v.size;
  throw typeErr("count", 1, "one of {array, object, set, string}", v);
});

function numbers(name: string, v: Value): Num[] {
  const xs = Array.isArray(v) ? v : v instanceof RSet ? v.values() : undefined;
  if (!xs) throw typeErr(name, 1, "one of {array, set}", v);
  for (const x of xs) if (!isNum(x)) throw typeErr(name, 1, "array of numbers", v);
  return xs as Num[];
}

register("sum", 1, (a) => numbers("sum", a[0] as Value).reduce<Num>((s, x) => numArith(s, x, "+"), 0));
register("product", 1, (a) => numbers("product", a[0] as Value).reduce<Num>((s, x) => numArith(s, x, "*"), 1));

function extreme(name: string, sign: number): void {
  register(name, 1, (a) => {
    const v = a[0] as Value;
    const xs = Array.isArray(v) ? v : v instanceof RSet ? v.values() : undefined;
    if (!xs) throw typeErr(name, 1, "one of {array, set}", v);
    if (xs.length === 0) return undefined;
    return xs.reduce((m, x) => (compare(x, m) * sign > 0 ? x : m));
  });
}
extreme("max", 1);
extreme("min", -1);

register("sort", 1, (a) => {
  const v = a[0] as Value;
  if (Array.isArray(v)) return [...v].sort(compare);
  if (v instanceof RSet) return [...v.values()];
  throw typeErr("sort", 1, "one of {array, set}", v);
});

function quantifier(name: string, every: boolean): void {
  register(name, 1, (a) => {
    const v = a[0] as Value;
    const xs = Array.isArray(v) ? v : v instanceof RSet ? v.values() : undefined;
    if (!xs) throw typeErr(name, 1, "one of {array, set}", v);
    return every ? xs.every((x) => x === true) : xs.some((x) => x === true);
  });
}
quantifier("all", true);
quantifier("any", false);
void fromBigInt;
