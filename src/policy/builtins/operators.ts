/** Infix operators: arithmetic, set algebra, comparison and membership. */
import { isInt, isNum, numArith, numCompare, numDivide, numRem, toFloat, type Num } from "../number.ts";
import { RObject, RSet, compare, equal, type Value } from "../value.ts";
import { builtinErr, num, register, set, typeErr } from "./registry.ts";

register("plus", 2, (a) => numArith(num("plus", a, 0), num("plus", a, 1), "+"));
register("mul", 2, (a) => numArith(num("mul", a, 0), num("mul", a, 1), "*"));
register("minus", 2, (a) => {
  const [x, y] = a as [Value, Value];
  if (x instanceof RSet && y instanceof RSet) return RSet.from(x.values().filter((v) => !y.has(v)));
  if (x instanceof RSet) throw typeErr("minus", 2, "set", y);
  if (isNum(x) && !isNum(y)) throw typeErr("minus", 2, "number", y);
  if (!isNum(x)) throw typeErr("minus", 1, "one of {number, set}", x);
  return numArith(x, y as Num, "-");
});
register("div", 2, (a) => {
  const r = numDivide(num("div", a, 0), num("div", a, 1));
  if (r === undefined) throw builtinErr("div", "divide by zero");
  return r;
});
register("rem", 2, (a) => {
  const r = numRem(num("rem", a, 0), num("rem", a, 1));
  if (r === "zero") throw builtinErr("rem", "modulo by zero");
  if (r === "float") throw builtinErr("rem", "modulo on floating-point number");
  return r;
});
register("and", 2, (a) => {
  const x = set("and", a, 0);
  const y = set("and", a, 1);
  return RSet.from(x.values().filter((v) => y.has(v)));
});
register("or", 2, (a) => {
  const x = set("or", a, 0);
  const y = set("or", a, 1);
  return RSet.from([...x.values(), ...y.values()]);
});
register("equal", 2, (a) => equal(a[0] as Value, a[1] as Value));
register("neq", 2, (a) => !equal(a[0] as Value, a[1] as Value));
register("lt", 2, (a) => compare(a[0] as Value, a[1] as Value) < 0);
register("lte", 2, (a) => compare(a[0] as Value, a[1] as Value) <= 0);
register("gt", 2, (a) => compare(a[0] as Value, a[1] as Value) > 0);
register("gte", 2, (a) => compare(a[0] as Value, a[1] as Value) >= 0);

function member(x: Value, coll: Value): boolean {
  if (Array.isArray(coll)) return coll.some((v) => equal(v, x));
  if (coll instanceof RSet) return coll.has(x);
  if (coll instanceof RObject) return coll.entries().some(([, v]) => equal(v, x));
  return false;
}
register("internal.member_2", 2, (a) => member(a[0] as Value, a[1] as Value));
register("internal.member_3", 3, (a) => {
  const [k, v, coll] = a as [Value, Value, Value];
  if (Array.isArray(coll)) return typeof k === "number" && Number.isInteger(k) && k >= 0 && k < coll.length && equal(coll[k] as Value, v);
  if (coll instanceof RObject) {
    const x = coll.get(k);
    return x !== undefined && equal(x, v);
  }
  if (coll instanceof RSet) return coll.has(k) && equal(k, v);
  return false;
});

register("abs", 1, (a) => {
  const x = num("abs", a, 0);
  return numCompare(x, 0) < 0 ? numArith(0, x, "-") : x;
});
const rounding = (name: string, f: (x: number) => number): void =>
  register(name, 1, (a) => {
    const x = num(name, a, 0);
    return isInt(x) ? x : f(toFloat(x));
  });
rounding("round", (x) => (x < 0 ? -Math.round(-x) : Math.round(x)));
rounding("ceil", Math.ceil);
rounding("floor", Math.floor);

