/** Type predicates, type_name, to_number and the deprecated cast_* built-ins. */
import { isNum, parseNumber } from "../number.ts";
import { RObject, RSet, typeOf, type Value } from "../value.ts";
import { BuiltinError } from "../errors.ts";
import { builtinErr, register, typeErr } from "./registry.ts";

for (const t of ["null", "boolean", "number", "string", "array", "object", "set"] as const) {
  register(`is_${t}`, 1, (a) => typeOf(a[0] as Value) === t);
}
register("type_name", 1, (a) => typeOf(a[0] as Value));

register("to_number", 1, (a) => {
  const v = a[0] as Value;
  if (v === null) return 0;
  if (typeof v === "boolean") return v ? 1 : 0;
  if (isNum(v)) return v;
  if (typeof v === "string") {
    const t = v.trim();
    const n = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(t) ? parseNumber(t.replace(/^\+/, "").replace(/^(-?)\./, "$10.").replace(/\.($|[eE])/, "$1")) : undefined;
    if (n === undefined && /^[+-]?(inf(inity)?|nan)$/i.test(t)) throw new BuiltinError("eval_type_error", `to_number: operand 1 must be a finite number but got ${JSON.stringify(v)}`);
    if (n === undefined) throw builtinErr("to_number", `strconv.ParseFloat: parsing ${JSON.stringify(v)}: invalid syntax`);
    return n;
  }
  throw typeErr("to_number", 1, "one of {null, boolean, number, string}", v);
});

register("cast_array", 1, (a) => {
  const v = a[0] as Value;
  if (Array.isArray(v)) return v;
  if (v instanceof RSet) return v.values();
  throw typeErr("cast_array", 1, "one of {array, set}", v);
});
register("cast_set", 1, (a) => {
  const v = a[0] as Value;
  if (Array.isArray(v)) return RSet.from(v);
  if (v instanceof RSet) return v;
  throw typeErr("cast_set", 1, "one of {array, set}", v);
});
register("cast_string", 1, (a) => (typeof a[0] === "string" ? a[0] : undefined));
register("cast_boolean", 1, (a) => (typeof a[0] === "boolean" ? a[0] : undefined));
register("cast_null", 1, (a) => (a[0] === null ? null : undefined));
register("cast_object", 1, (a) => (a[0] instanceof RObject ? a[0] : undefined));
