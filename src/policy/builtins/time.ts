/**
 * time.* built-ins. Timestamps are integer nanoseconds since the epoch (bigint-safe); time zones use
 * the platform's IANA database through Intl.
 */
import { fromBigInt, isInt, toBig, toFloat } from "../number.ts";
import type { Value } from "../value.ts";
import { builtinErr, int, register, str, typeErr } from "./registry.ts";

const NS = 1_000_000n;
const MIN_NS = -9223372036854775808n;
const MAX_NS = 9223372036854775807n;

function checkRange(name: string, ns: bigint): bigint {
  if (ns < MIN_NS || ns > MAX_NS) throw builtinErr(name, "time outside of valid range");
  return ns;
}

/** ns and zone from `x` or `[x, tz]`. */
function nsTz(name: string, v: Value): { ns: bigint; tz: string } {
  if (Array.isArray(v)) {
    const [n, tz] = v;
    if (typeof n !== "number" && typeof n !== "bigint") throw typeErr(name, 1, "number", n ?? null);
    if (typeof tz !== "string") throw typeErr(name, 1, "string", tz ?? null);
    return { ns: toBig(isInt(n) ? n : Math.trunc(toFloat(n))), tz };
  }
  if (typeof v === "number" || typeof v === "bigint") {
    const b = isInt(v) ? toBig(v) : BigInt(Math.trunc(toFloat(v)));
    if (b < MIN_NS || b > MAX_NS) throw builtinErr(name, "timestamp too big");
    return { ns: b, tz: "UTC" };
  }
  throw typeErr(name, 1, "either number (ns) or [number (ns), string (tz)]", v);
}

interface Parts {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
  weekday: number;
  offsetMin: number;
}

function parts(name: string, ns: bigint, tz: string): Parts {
  const ms = Number(ns / NS) - (ns < 0n && ns % NS !== 0n ? 1 : 0);
  const zone = tz === "" || tz === "Local" ? "UTC" : tz;
  let offsetMin = 0;
  if (zone !== "UTC") {
    try {
      const f = new Intl.DateTimeFormat("en-US", { timeZone: zone, timeZoneName: "longOffset" });
      const off = f.formatToParts(new Date(ms)).find((p) => p.type === "timeZoneName")?.value ?? "GMT";
      const m = /GMT([+-])(\d\d):(\d\d)/.exec(off);
      if (m) offsetMin = (m[1] === "-" ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3]));
    } catch {
      throw builtinErr(name, `unknown time zone ${tz}`);
    }
  }
  const d = new Date(ms + offsetMin * 60000);
  return {
    year: d.getUTCFullYear(),
    month: d.getUTCMonth() + 1,
    day: d.getUTCDate(),
    hour: d.getUTCHours(),
    minute: d.getUTCMinutes(),
    second: d.getUTCSeconds(),
    weekday: d.getUTCDay(),
    offsetMin,
  };
}

const weekdays = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
const months = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"];

register("time.now_ns", 0, (_a, ctx) => fromBigInt(ctx.nowNs));
register("time.date", 1, (a) => {
  const { ns, tz } = nsTz("time.date", a[0] as Value);
  const p = parts("time.date", ns, tz);
  return [p.year, p.month, p.day];
});
register("time.clock", 1, (a) => {
  const { ns, tz } = nsTz("time.clock", a[0] as Value);
  const p = parts("time.clock", ns, tz);
  return [p.hour, p.minute, p.second];
});
register("time.weekday", 1, (a) => {
  const { ns, tz } = nsTz("time.weekday", a[0] as Value);
  return weekdays[parts("time.weekday", ns, tz).weekday] as string;
});
register("time.add_date", 4, (a) => {
  const ns = int("time.add_date", a, 0);
  const [y, m, d] = [1, 2, 3].map((i) => Number(int("time.add_date", a, i))) as [number, number, number];
  const ms = Number(ns / NS);
  const sub = ns % NS;
  const date = new Date(ms);
  date.setUTCFullYear(date.getUTCFullYear() + y, date.getUTCMonth() + m, date.getUTCDate() + d);
  return fromBigInt(checkRange("time.add_date", BigInt(date.getTime()) * NS + sub));
});
register("time.diff", 2, (a) => {
  const x = nsTz("time.diff", a[0] as Value);
  const y = nsTz("time.diff", a[1] as Value);
  // As OPA does: both instants are read in the first one's time zone.
  let p1 = parts("time.diff", x.ns, x.tz);
  let p2 = parts("time.diff", y.ns, x.tz);
  if (x.ns > y.ns) [p1, p2] = [p2, p1];
  let year = p2.year - p1.year;
  let month = p2.month - p1.month;
  let day = p2.day - p1.day;
  let hour = p2.hour - p1.hour;
  let min = p2.minute - p1.minute;
  let sec = p2.second - p1.second;
  if (sec < 0) {
    sec += 60;
    min--;
  }
  if (min < 0) {
    min += 60;
    hour--;
  }
  if (hour < 0) {
    hour += 24;
    day--;
  }
  if (day < 0) {
    day += new Date(Date.UTC(p1.year, p1.month, 0)).getUTCDate();
    month--;
  }
  if (month < 0) {
    month += 12;
    year--;
  }
  return [year, month, day, hour, min, sec];
});

const durUnits: Record<string, bigint> = { ns: 1n, us: 1000n, "µs": 1000n, "μs": 1000n, ms: NS, s: 1000n * NS, m: 60000n * NS, h: 3600000n * NS };
register("time.parse_duration_ns", 1, (a) => {
  const s = str("time.parse_duration_ns", a, 0);
  const m = /^([+-])?((?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+$/.exec(s);
  if (!m && s !== "0") throw builtinErr("time.parse_duration_ns", `time: invalid duration ${JSON.stringify(s)}`);
  let total = 0;
  for (const part of s.matchAll(/(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/g)) total += Number(part[1]) * Number(durUnits[part[2] as string]);
  return fromBigInt(BigInt(Math.round(s.startsWith("-") ? -total : total)));
});

/** Parses RFC 3339 text to ns (keeps nanosecond precision). */
function rfc3339(name: string, s: string): bigint {
  const m = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})$/.exec(s);
  if (!m) throw builtinErr(name, `parsing time ${JSON.stringify(s)} as "2006-01-02T15:04:05Z07:00": cannot parse`);
  const [, y, mo, d, h, mi, se, frac = "", off = "Z"] = m;
  let ms = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(se));
  if (Number(y) < 100) ms = new Date(ms).setUTCFullYear(Number(y));
  let offMin = 0;
  if (off !== "Z" && off !== "z") offMin = (off[0] === "-" ? -1 : 1) * (Number(off.slice(1, 3)) * 60 + Number(off.slice(4, 6)));
  const ns = BigInt(ms - offMin * 60000) * NS + BigInt(frac.padEnd(9, "0") || "0");
  return checkRange(name, ns);
}
register("time.parse_rfc3339_ns", 1, (a) => fromBigInt(rfc3339("time.parse_rfc3339_ns", str("time.parse_rfc3339_ns", a, 0))));

const layouts: Record<string, string> = {
  ANSIC: "Mon Jan _2 15:04:05 2006",
  UnixDate: "Mon Jan _2 15:04:05 MST 2006",
  RFC822: "02 Jan 06 15:04 MST",
  RFC822Z: "02 Jan 06 15:04 -0700",
  RFC850: "Monday, 02-Jan-06 15:04:05 MST",
  RFC1123: "Mon, 02 Jan 2006 15:04:05 MST",
  RFC1123Z: "Mon, 02 Jan 2006 15:04:05 -0700",
  RFC3339: "2006-01-02T15:04:05Z07:00",
  RFC3339Nano: "2006-01-02T15:04:05.999999999Z07:00",
  Kitchen: "3:04PM",
};
const tokenRe = /2006|06|January|Jan|01|15|1|Monday|Mon|02|_2|2|03|3|04|4|05|5|PM|pm|MST|Z07:00|-07:00|-0700|Z0700|\.0+|\.9+/g;

register("time.parse_ns", 2, (a) => {
  const layout = layouts[str("time.parse_ns", a, 0)] ?? str("time.parse_ns", a, 0);
  const value = str("time.parse_ns", a, 1);
  const fields: Record<string, number> = { year: 1, month: 1, day: 1, hour: 0, min: 0, sec: 0, ns: 0, off: 0, pm: -1 };
  let re = "";
  const order: string[] = [];
  let last = 0;
  for (const m of layout.matchAll(tokenRe)) {
    re += layout.slice(last, m.index).replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    last = (m.index ?? 0) + m[0].length;
    const t = m[0];
    order.push(t);
    if (t === "2006") re += "(\\d{4})";
    else if (t === "January") re += `(${months.join("|")})`;
    else if (t === "Jan") re += `(${months.map((x) => x.slice(0, 3)).join("|")})`;
    else if (t === "Monday") re += `(${weekdays.join("|")})`;
    else if (t === "Mon") re += `(${weekdays.map((x) => x.slice(0, 3)).join("|")})`;
    else if (t === "_2") re += " ?(\\d{1,2})";
    else if (t === "PM" || t === "pm") re += "(AM|PM|am|pm)";
    else if (t === "MST") re += "([A-Z]{3,4}|[+-]\\d{2})";
    else if (t.startsWith("Z") || t.startsWith("-")) re += "(Z|[+-]\\d{2}:?\\d{2})";
    else if (t.startsWith(".")) re += "(?:\\.(\\d+))?";
    else if (t.length === 1) re += "(\\d{1,2})";
    else re += "(\\d{2})";
    // Go accepts a fractional second right after the seconds even when the layout has none.
    if ((t === "05" || t === "5") && !layout.startsWith(".", last)) {
      re += "(?:\\.(\\d+))?";
      order.push(".9");
    }
  }
  re += layout.slice(last).replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const m = new RegExp(`^${re}$`).exec(value);
  if (!m) throw builtinErr("time.parse_ns", `parsing time ${JSON.stringify(value)} as ${JSON.stringify(layout)}: cannot parse`);
  order.forEach((t, i) => {
    const g = m[i + 1];
    if (g === undefined) return;
    if (t === "2006") fields.year = Number(g);
    else if (t === "06") fields.year = 2000 + Number(g) - (Number(g) >= 69 ? 100 : 0);
    else if (t === "January" || t === "Jan") fields.month = months.findIndex((x) => x.startsWith(g)) + 1;
    else if (t === "01" || t === "1") fields.month = Number(g);
    else if (t === "02" || t === "_2" || t === "2") fields.day = Number(g);
    else if (t === "15" || t === "03" || t === "3") fields.hour = Number(g);
    else if (t === "04" || t === "4") fields.min = Number(g);
    else if (t === "05" || t === "5") fields.sec = Number(g);
    else if (t === "PM" || t === "pm") fields.pm = g.toUpperCase() === "PM" ? 1 : 0;
    else if (t.startsWith(".")) fields.ns = Number(g.padEnd(9, "0").slice(0, 9));
    else if (t.startsWith("Z") || t.startsWith("-")) {
      if (g !== "Z") {
        const d = g.replace(":", "");
        fields.off = (d[0] === "-" ? -1 : 1) * (Number(d.slice(1, 3)) * 60 + Number(d.slice(3, 5)));
      }
    }
  });
  if (fields.pm === 1 && (fields.hour ?? 0) < 12) fields.hour = (fields.hour ?? 0) + 12;
  if (fields.pm === 0 && fields.hour === 12) fields.hour = 0;
  const d = new Date(Date.UTC(2000, 0, 1));
  d.setUTCFullYear(fields.year ?? 1, (fields.month ?? 1) - 1, fields.day ?? 1);
  d.setUTCHours(fields.hour ?? 0, fields.min ?? 0, fields.sec ?? 0, 0);
  const ns = BigInt(d.getTime() - (fields.off ?? 0) * 60000) * NS + BigInt(fields.ns ?? 0);
  return fromBigInt(checkRange("time.parse_ns", ns));
});

const pad = (n: number, w = 2): string => String(n).padStart(w, "0");
register("time.format", 1, (a) => {
  const v = a[0] as Value;
  let layout = layouts.RFC3339Nano as string;
  let input: Value = v;
  if (Array.isArray(v) && v.length === 3) {
    input = [v[0] as Value, v[1] as Value];
    layout = typeof v[2] === "string" ? (layouts[v[2]] ?? v[2]) : layout;
  }
  const { ns, tz } = nsTz("time.format", input);
  const p = parts("time.format", ns, tz);
  const frac = Number(((ns % 1_000_000_000n) + 1_000_000_000n) % 1_000_000_000n);
  const off = p.offsetMin;
  const offStr = (colon: boolean, z: boolean): string => (z && off === 0 ? "Z" : `${off < 0 ? "-" : "+"}${pad(Math.floor(Math.abs(off) / 60))}${colon ? ":" : ""}${pad(Math.abs(off) % 60)}`);
  return layout.replace(tokenRe, (t) => {
    switch (t) {
      case "2006": return String(p.year);
      case "06": return pad(p.year % 100);
      case "January": return months[p.month - 1] as string;
      case "Jan": return (months[p.month - 1] as string).slice(0, 3);
      case "01": return pad(p.month);
      case "1": return String(p.month);
      case "Monday": return weekdays[p.weekday] as string;
      case "Mon": return (weekdays[p.weekday] as string).slice(0, 3);
      case "02": return pad(p.day);
      case "_2": return String(p.day).padStart(2, " ");
      case "2": return String(p.day);
      case "15": return pad(p.hour);
      case "03": return pad(p.hour % 12 || 12);
      case "3": return String(p.hour % 12 || 12);
      case "04": return pad(p.minute);
      case "4": return String(p.minute);
      case "05": return pad(p.second);
      case "5": return String(p.second);
      case "PM": return p.hour >= 12 ? "PM" : "AM";
      case "pm": return p.hour >= 12 ? "pm" : "am";
      case "MST": return tz === "UTC" || tz === "" ? "UTC" : offStr(false, false);
      case "Z07:00": return offStr(true, true);
      case "-07:00": return offStr(true, false);
      case "-0700": return offStr(false, false);
      case "Z0700": return offStr(false, true);
      default: {
        if (t.startsWith(".0")) return "." + String(frac).padStart(9, "0").slice(0, t.length - 1);
        const digits = String(frac).padStart(9, "0").slice(0, t.length - 1).replace(/0+$/, "");
        return digits ? "." + digits : "";
      }
    }
  });
});
