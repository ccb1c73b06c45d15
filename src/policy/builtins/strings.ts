/** String built-ins. Positions and lengths count Unicode code points, as OPA does. */
import { fromBigInt, isInt, numString, toDec } from "../number.ts";
import { RObject, RSet, type Value } from "../value.ts";
import { BuiltinError } from "../errors.ts";
import { builtinErr, int, items, num, obj, register, str, typeErr } from "./registry.ts";

const cps = (s: string): string[] => [...s];

register("concat", 2, (a) => {
  const sep = str("concat", a, 0);
  const xs = items("concat", a, 1, "one of {array, set}");
  for (const x of xs) if (typeof x !== "string") throw typeErr("concat", 2, "one of {array, set} of strings", a[1] as Value);
  return xs.join(sep);
});
register("contains", 2, (a) => str("contains", a, 0).includes(str("contains", a, 1)));
register("startswith", 2, (a) => str("startswith", a, 0).startsWith(str("startswith", a, 1)));
register("endswith", 2, (a) => str("endswith", a, 0).endsWith(str("endswith", a, 1)));
register("lower", 1, (a) => str("lower", a, 0).toLowerCase());
register("upper", 1, (a) => str("upper", a, 0).toUpperCase());
register("split", 2, (a) => str("split", a, 0).split(str("split", a, 1)));
register("replace", 3, (a) => str("replace", a, 0).split(str("replace", a, 1)).join(str("replace", a, 2)));
register("strings.reverse", 1, (a) => cps(str("strings.reverse", a, 0)).reverse().join(""));
register("strings.count", 2, (a) => {
  const s = str("strings.count", a, 0);
  const sub = str("strings.count", a, 1);
  if (sub === "") return cps(s).length + 1;
  return s.split(sub).length - 1;
});
register("indexof", 2, (a) => {
  const s = str("indexof", a, 0);
  const sub = str("indexof", a, 1);
  const i = s.indexOf(sub);
  return i < 0 ? -1 : cps(s.slice(0, i)).length;
});
register("indexof_n", 2, (a) => {
  const s = str("indexof_n", a, 0);
  const sub = str("indexof_n", a, 1);
  const out: Value[] = [];
  if (sub === "") return out;
  for (let i = s.indexOf(sub); i >= 0; i = s.indexOf(sub, i + 1)) out.push(cps(s.slice(0, i)).length);
  return out;
});
register("substring", 3, (a) => {
  const s = cps(str("substring", a, 0));
  const start = Number(int("substring", a, 1));
  const len = Number(int("substring", a, 2));
  if (start < 0) throw builtinErr("substring", "negative offset");
  if (start >= s.length) return "";
  return (len < 0 ? s.slice(start) : s.slice(start, start + len)).join("");
});

function cutset(name: string, a: Value[]): (c: string) => boolean {
  const set = new Set(cps(str(name, a, 1)));
  return (c) => set.has(c);
}
function trimLeft(s: string, f: (c: string) => boolean): string {
  const c = cps(s);
  let i = 0;
  while (i < c.length && f(c[i] as string)) i++;
  return c.slice(i).join("");
}
function trimRight(s: string, f: (c: string) => boolean): string {
  const c = cps(s);
  let j = c.length;
  while (j > 0 && f(c[j - 1] as string)) j--;
  return c.slice(0, j).join("");
}
register("trim", 2, (a) => trimRight(trimLeft(str("trim", a, 0), cutset("trim", a)), cutset("trim", a)));
register("trim_left", 2, (a) => trimLeft(str("trim_left", a, 0), cutset("trim_left", a)));
register("trim_right", 2, (a) => trimRight(str("trim_right", a, 0), cutset("trim_right", a)));
register("trim_prefix", 2, (a) => {
  const s = str("trim_prefix", a, 0);
  const p = str("trim_prefix", a, 1);
  return s.startsWith(p) ? s.slice(p.length) : s;
});
register("trim_suffix", 2, (a) => {
  const s = str("trim_suffix", a, 0);
  const p = str("trim_suffix", a, 1);
  return p !== "" && s.endsWith(p) ? s.slice(0, s.length - p.length) : s;
});
const isSpace = (c: string): boolean => /\s/u.test(c) || c === "\u0085" || c === "\u00a0";
register("trim_space", 1, (a) => trimRight(trimLeft(str("trim_space", a, 0), isSpace), isSpace));

register("strings.replace_n", 2, (a) => {
  const patterns = obj("strings.replace_n", a, 0);
  let s = str("strings.replace_n", a, 1);
  const pairs: [string, string][] = [];
  for (const [k, v] of patterns.entries()) {
    if (typeof k !== "string") throw new BuiltinError("eval_type_error", "strings.replace_n: operand 1 non-string key found in pattern object");
    if (typeof v !== "string") throw new BuiltinError("eval_type_error", "strings.replace_n: operand 1 non-string value found in pattern object");
    pairs.push([k, v]);
  }
  // Go's strings.NewReplacer: at each position, the first matching pattern in argument order wins.
  let out = "";
  let i = 0;
  outer: while (i < s.length) {
    for (const [k, v] of pairs) {
      if (k !== "" && s.startsWith(k, i)) {
        out += v;
        i += k.length;
        continue outer;
      }
    }
    out += s[i];
    i++;
  }
  s = out;
  return s;
});

function stringsOf(name: string, a: Value[], i: number): string[] {
  const v = a[i] as Value;
  if (typeof v === "string") return [v];
  const xs = Array.isArray(v) ? v : v instanceof RSet ? v.values() : undefined;
  if (!xs) throw typeErr(name, i + 1, "one of {string, set, array}", v);
  for (const x of xs) if (typeof x !== "string") throw new BuiltinError("eval_type_error", `${name}: operand ${i + 1} must be array of strings but got array containing ${typeof x === "number" ? "number" : typeof x}`);
  return xs as string[];
}
register("strings.any_prefix_match", 2, (a) => {
  const ss = stringsOf("strings.any_prefix_match", a, 0);
  const ps = stringsOf("strings.any_prefix_match", a, 1);
  return ss.some((s) => ps.some((p) => s.startsWith(p)));
});
register("strings.any_suffix_match", 2, (a) => {
  const ss = stringsOf("strings.any_suffix_match", a, 0);
  const ps = stringsOf("strings.any_suffix_match", a, 1);
  return ss.some((s) => ps.some((p) => s.endsWith(p)));
});
register("strings.split_n", 3, (a) => {
  const s = str("strings.split_n", a, 0);
  const sep = str("strings.split_n", a, 1);
  const n = Number(int("strings.split_n", a, 2));
  const parts = sep === "" ? cps(s) : s.split(sep);
  if (n >= 0) return parts.slice(0, n);
  return parts.slice(Math.max(0, parts.length + n));
});

/** format_int: the number truncated toward zero, in base 2, 8, 10 or 16 (lower-case digits, `-` sign). */
register("format_int", 2, (a) => {
  const n = num("format_int", a, 0);
  const base = num("format_int", a, 1);
  const b = isInt(base) ? Number(base) : NaN;
  if (![2, 8, 10, 16].includes(b)) throw new BuiltinError("eval_type_error", "format_int: operand 2 must be one of {2, 8, 10, 16}");
  // Exact for every number, also decimals beyond a double's precision (BigInt division truncates toward zero).
  const d = toDec(n);
  const i = d.e >= 0 ? d.m * 10n ** BigInt(d.e) : d.m / 10n ** BigInt(-d.e);
  return i.toString(b);
});

register("strings.render_template", 2, (a) => {
  const tpl = str("strings.render_template", a, 0);
  const vars = obj("strings.render_template", a, 1);
  return tpl.replace(/\{\{\s*\.(\w+)\s*\}\}/g, (_m, k: string) => {
    const v = vars.get(k);
    return v === undefined ? "<no value>" : typeof v === "string" ? v : numString(v as number);
  });
});
void fromBigInt;
void RObject;
