/** regex.* and glob.* built-ins. Go RE2 syntax is translated to JavaScript RegExp where they differ. */
import { BuiltinError } from "../errors.ts";
import type { BuiltinContext } from "./registry.ts";
import { arr, builtinErr, int, register, str } from "./registry.ts";
import type { Value } from "../value.ts";

function compile(name: string, pattern: string, ctx: BuiltinContext, global = false): RegExp {
  const key = `re:${global ? "g" : ""}:${pattern}`;
  const cached = ctx.cache.get(key);
  if (cached instanceof RegExp) {
    cached.lastIndex = 0;
    return cached;
  }
  let src = pattern;
  let flags = global ? "g" : "";
  const inline = /^\(\?([imsU]+)\)/.exec(src);
  if (inline) {
    src = src.slice(inline[0].length);
    for (const f of inline[1] as string) if (f !== "U" && !flags.includes(f)) flags += f;
  }
  src = src.replace(/\(\?P</g, "(?<").replace(/\\z/g, "$").replace(/\\A/g, "^");
  let re: RegExp;
  try {
    re = new RegExp(src, flags + "u");
  } catch {
    try {
      re = new RegExp(src, flags);
    } catch (e) {
      throw builtinErr(name, `error parsing regexp: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  ctx.cache.set(key, re);
  return re;
}

register("regex.match", 2, (a, ctx) => compile("regex.match", str("regex.match", a, 0), ctx).test(str("regex.match", a, 1)));
register("re_match", 2, (a, ctx) => compile("re_match", str("re_match", a, 0), ctx).test(str("re_match", a, 1)));
register("regex.is_valid", 1, (a, ctx) => {
  if (typeof a[0] !== "string") return false;
  try {
    compile("regex.is_valid", a[0], ctx);
    return true;
  } catch (e) {
    if (e instanceof BuiltinError) return false;
    throw e;
  }
});
register("regex.split", 2, (a, ctx) => str("regex.split", a, 1).split(compile("regex.split", str("regex.split", a, 0), ctx)).filter((x): x is string => x !== undefined));
register("regex.find_n", 3, (a, ctx) => {
  const re = compile("regex.find_n", str("regex.find_n", a, 0), ctx, true);
  const n = Number(int("regex.find_n", a, 2));
  const out: Value[] = [];
  for (const m of str("regex.find_n", a, 1).matchAll(re)) {
    if (n >= 0 && out.length >= n) break;
    out.push(m[0]);
  }
  return out;
});
register("regex.find_all_string_submatch_n", 3, (a, ctx) => {
  const name = "regex.find_all_string_submatch_n";
  const re = compile(name, str(name, a, 0), ctx, true);
  const n = Number(int(name, a, 2));
  const out: Value[] = [];
  for (const m of str(name, a, 1).matchAll(re)) {
    if (n >= 0 && out.length >= n) break;
    out.push([...m].map((g) => g ?? ""));
  }
  return out;
});
register("regex.replace", 3, (a, ctx) => {
  const re = compile("regex.replace", str("regex.replace", a, 1), ctx, true);
  const repl = str("regex.replace", a, 2).replace(/\$\{(\w+)\}/g, (_m, g: string) => (/^\d+$/.test(g) ? `$${g}` : `$<${g}>`));
  return str("regex.replace", a, 0).replace(re, repl);
});

/** gobwas/glob: `*` stops at delimiters, `**` does not, `?`, classes, `{a,b}` alternatives. */
function globToRegExp(pattern: string, delims: string[]): RegExp {
  const d = delims.map((c) => c.replace(/[\\\]^-]/g, "\\$&")).join("");
  const notDelim = d ? `[^${d}]` : "[\\s\\S]";
  let re = "";
  let depth = 0;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] as string;
    if (c === "\\") {
      re += (pattern[++i] ?? "").replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
    } else if (c === "*") {
      if (pattern[i + 1] === "*") {
        re += "[\\s\\S]*";
        i++;
      } else re += `${notDelim}*`;
    } else if (c === "?") re += notDelim;
    else if (c === "[") {
      const end = pattern.indexOf("]", i + 1);
      if (end < 0) throw new Error("unexpected end of input");
      let body = pattern.slice(i + 1, end);
      if (body.startsWith("!")) body = "^" + body.slice(1);
      re += `[${body}]`;
      i = end;
    } else if (c === "{") {
      re += "(?:";
      depth++;
    } else if (c === "}" && depth > 0) {
      re += ")";
      depth--;
    } else if (c === "," && depth > 0) re += "|";
    else re += c.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
  }
  if (depth !== 0) throw new Error("unexpected end of input");
  return new RegExp(`^${re}$`, "u");
}

register("glob.match", 3, (a, ctx) => {
  const pattern = str("glob.match", a, 0);
  const d = a[1] as Value;
  let delims: string[];
  if (d === null) delims = [];
  else {
    const xs = arr("glob.match", a, 1);
    delims = xs.length === 0 ? ["."] : xs.map((x) => (typeof x === "string" ? x : ""));
  }
  const key = `glob:${JSON.stringify(delims)}:${pattern}`;
  let re = ctx.cache.get(key) as RegExp | undefined;
  if (!re) {
    try {
      re = globToRegExp(pattern, delims);
    } catch (e) {
      throw builtinErr("glob.match", e instanceof Error ? e.message : String(e));
    }
    ctx.cache.set(key, re);
  }
  return re.test(str("glob.match", a, 2));
});
register("glob.quote_meta", 1, (a) => str("glob.quote_meta", a, 0).replace(/[*?\\[\]{}]/g, "\\$&"));
