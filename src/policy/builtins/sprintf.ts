/** sprintf: Go's fmt verbs as OPA exposes them (%v %s %d %f %e %g %x %X %o %b %q %t %c %%). */
import { isInt, isNum, numString, toBig, toFloat, type Num } from "../number.ts";
import { toRegoString, type Value } from "../value.ts";
import { arr, register, str } from "./registry.ts";

function pad(s: string, width: number | undefined, left: boolean, zero: boolean): string {
  if (width === undefined || s.length >= width) return s;
  if (left) return s + " ".repeat(width - s.length);
  if (zero) {
    const neg = s.startsWith("-") ? "-" : "";
    const body = neg ? s.slice(1) : s;
    return neg + "0".repeat(width - s.length) + body;
  }
  return " ".repeat(width - s.length) + s;
}

function goFloat(x: number, verb: string, prec: number | undefined): string {
  if (verb === "f" || verb === "F") return x.toFixed(prec ?? 6);
  if (verb === "e" || verb === "E") {
    const s = x.toExponential(prec ?? 6).replace(/e([+-])(\d)$/, "e$10$2");
    return verb === "E" ? s.toUpperCase() : s;
  }
  // %g: shortest representation
  if (prec !== undefined) return String(Number(x.toPrecision(prec)));
  const s = String(x);
  return s.replace(/e\+?(-?)(\d)$/, "e+$10$2").replace("e+-", "e-");
}

function valueText(v: Value): string {
  if (typeof v === "string") return v;
  if (isNum(v)) return numString(v);
  return toRegoString(v);
}

function sprintf(format: string, args: Value[]): string {
  let out = "";
  let ai = 0;
  const re = /%([-+ #0]*)(\d+)?(?:\.(\d+))?([a-zA-Z%])/g;
  let last = 0;
  for (let m = re.exec(format); m; m = re.exec(format)) {
    out += format.slice(last, m.index);
    last = re.lastIndex;
    const [, flags = "", w, p, verb = "v"] = m;
    if (verb === "%") {
      out += "%";
      continue;
    }
    const width = w === undefined ? undefined : Number(w);
    const prec = p === undefined ? undefined : Number(p);
    const left = flags.includes("-");
    const zero = flags.includes("0");
    if (ai >= args.length) {
      out += `%!${verb}(MISSING)`;
      continue;
    }
    const v = args[ai++] as Value;
    let s: string;
    switch (verb) {
      case "v":
      case "s":
        s = valueText(v);
        if (prec !== undefined && typeof v === "string") s = s.slice(0, prec);
        break;
      case "d":
        s = isNum(v) && isInt(v) ? toBig(v as number | bigint).toString() : `%!d(${valueText(v)})`;
        if (flags.includes("+") && !s.startsWith("-")) s = "+" + s;
        break;
      case "f":
      case "F":
      case "e":
      case "E":
      case "g":
      case "G":
        s = isNum(v) ? goFloat(toFloat(v), verb, prec) : `%!${verb}(${valueText(v)})`;
        break;
      case "x":
      case "X":
      case "o":
      case "b": {
        const base = verb === "o" ? 8 : verb === "b" ? 2 : 16;
        if (isNum(v) && isInt(v)) s = toBig(v as Num as number | bigint).toString(base);
        else if (typeof v === "string") s = [...new TextEncoder().encode(v)].map((c) => c.toString(16).padStart(2, "0")).join("");
        else s = `%!${verb}(${valueText(v)})`;
        if (verb === "X") s = s.toUpperCase();
        break;
      }
      case "q":
        s = JSON.stringify(typeof v === "string" ? v : valueText(v));
        break;
      case "t":
        s = typeof v === "boolean" ? String(v) : `%!t(${valueText(v)})`;
        break;
      case "c":
        s = isNum(v) ? String.fromCodePoint(Number(toFloat(v))) : `%!c(${valueText(v)})`;
        break;
      default:
        s = `%!${verb}(${valueText(v)})`;
    }
    out += pad(s, width, left, zero);
  }
  out += format.slice(last);
  if (ai < args.length) out += "%!(EXTRA " + args.slice(ai).map((a) => valueText(a)).join(", ") + ")";
  return out;
}

register("sprintf", 2, (a) => sprintf(str("sprintf", a, 0), arr("sprintf", a, 1)));
