/**
 * Rego values. Scalars are JS primitives (numbers per number.ts); arrays are JS arrays; objects and
 * sets are hashed by a canonical key so that structurally equal values (1 and 1.0, {"a": [1]} built in
 * any order) are the same member. Values are immutable once built; iteration is in Rego's sort order.
 */
import { BigDec, isNum, numCompare, numKey, numString, parseNumber, type Num } from "./number.ts";

export type Value = null | boolean | Num | string | Value[] | RObject | RSet;

export class RObject {
  readonly map = new Map<string, [Value, Value]>();
  private sortedCache: [Value, Value][] | undefined;

  static from(entries: Iterable<[Value, Value]>): RObject {
    const o = new RObject();
    for (const [k, v] of entries) o.set(k, v);
    return o;
  }
  get size(): number {
    return this.map.size;
  }
  get(k: Value): Value | undefined {
    return this.map.get(keyOf(k))?.[1];
  }
  /** Only while building: objects are immutable once shared. */
  set(k: Value, v: Value): void {
    this.map.set(keyOf(k), [k, v]);
    this.sortedCache = undefined;
  }
  delete(k: Value): void {
    this.map.delete(keyOf(k));
    this.sortedCache = undefined;
  }
  entries(): [Value, Value][] {
    if (!this.sortedCache) this.sortedCache = [...this.map.values()].sort((a, b) => compare(a[0], b[0]));
    return this.sortedCache;
  }
  keys(): Value[] {
    return this.entries().map((e) => e[0]);
  }
}

export class RSet {
  readonly map = new Map<string, Value>();
  private sortedCache: Value[] | undefined;

  static from(items: Iterable<Value>): RSet {
    const s = new RSet();
    for (const v of items) s.add(v);
    return s;
  }
  get size(): number {
    return this.map.size;
  }
  has(v: Value): boolean {
    return this.map.has(keyOf(v));
  }
  add(v: Value): void {
    const k = keyOf(v);
    if (!this.map.has(k)) {
      this.map.set(k, v);
      this.sortedCache = undefined;
    }
  }
  values(): Value[] {
    if (!this.sortedCache) this.sortedCache = [...this.map.values()].sort(compare);
    return this.sortedCache;
  }
}

export type TypeName = "null" | "boolean" | "number" | "string" | "array" | "object" | "set";

export function typeOf(v: Value): TypeName {
  if (v === null) return "null";
  if (typeof v === "boolean") return "boolean";
  if (typeof v === "string") return "string";
  if (Array.isArray(v)) return "array";
  if (v instanceof RObject) return "object";
  if (v instanceof RSet) return "set";
  return "number";
}

const typeRank: Record<TypeName, number> = { null: 0, boolean: 1, number: 2, string: 3, array: 4, object: 5, set: 6 };

/** Rego's total order: null < booleans < numbers < strings < arrays < objects < sets. */
export function compare(a: Value, b: Value): number {
  if (typeof a === "string" && typeof b === "string") return a < b ? -1 : a > b ? 1 : 0;
  const ta = typeOf(a);
  const tb = typeOf(b);
  if (ta !== tb) return typeRank[ta] - typeRank[tb];
  switch (ta) {
    case "null":
      return 0;
    case "boolean":
      return a === b ? 0 : a ? 1 : -1;
    case "number":
      return numCompare(a as Num, b as Num);
    case "array": {
      const x = a as Value[];
      const y = b as Value[];
      for (let i = 0; i < Math.min(x.length, y.length); i++) {
        const c = compare(x[i] as Value, y[i] as Value);
        if (c !== 0) return c;
      }
      return x.length - y.length;
    }
    case "object": {
      const x = (a as RObject).entries();
      const y = (b as RObject).entries();
      for (let i = 0; i < Math.min(x.length, y.length); i++) {
        const [ka, va] = x[i] as [Value, Value];
        const [kb, vb] = y[i] as [Value, Value];
        const c = compare(ka, kb) || compare(va, vb);
        if (c !== 0) return c;
      }
      return x.length - y.length;
    }
    case "set": {
      const x = (a as RSet).values();
      const y = (b as RSet).values();
      for (let i = 0; i < Math.min(x.length, y.length); i++) {
        const c = compare(x[i] as Value, y[i] as Value);
        if (c !== 0) return c;
      }
      return x.length - y.length;
    }
    default:
      return 0;
  }
}

export function equal(a: Value, b: Value): boolean {
  if (a === b) return true;
  if (typeof a === "string" || typeof b === "string") return false;
  return compare(a, b) === 0;
}

/** Canonical hash key: equal values give equal keys. */
export function keyOf(v: Value): string {
  if (typeof v === "string") return "s" + v;
  if (v === null) return "n";
  if (v === true) return "t";
  if (v === false) return "f";
  if (Array.isArray(v)) return "[" + v.map(nestedKey).join(",") + "]";
  if (v instanceof RObject) {
    return "{" + [...v.map.entries()].map(([k, e]) => JSON.stringify(k) + ":" + nestedKey(e[1])).sort().join(",") + "}";
  }
  if (v instanceof RSet) return "<" + [...v.map.keys()].map((k) => JSON.stringify(k)).sort().join(",") + ">";
  return "#" + numKey(v);
}

function nestedKey(v: Value): string {
  return typeof v === "string" ? JSON.stringify(v) : keyOf(v);
}

/** Converts parsed JSON/YAML (bigint-aware) into a Rego value. */
export function fromJS(x: unknown): Value {
  if (x === null || x === undefined) return null;
  if (typeof x === "boolean" || typeof x === "string") return x;
  if (typeof x === "number") return x;
  if (typeof x === "bigint") return (parseNumber(x.toString()) as Num) ?? 0;
  if (Array.isArray(x)) return x.map(fromJS);
  if (x instanceof RObject || x instanceof RSet || x instanceof BigDec) return x;
  if (x instanceof Set) return RSet.from([...(x as Set<unknown>)].map(fromJS));
  if (x instanceof Map) return RObject.from([...(x as Map<unknown, unknown>)].map(([k, v]) => [fromJS(k), fromJS(v)]));
  if (typeof x === "object") {
    const o = new RObject();
    for (const [k, v] of Object.entries(x as Record<string, unknown>)) o.set(k, fromJS(v));
    return o;
  }
  return String(x);
}

/** Converts a value to plain JS for JSON output: sets become sorted arrays, big numbers stay exact. */
export function toJS(v: Value): unknown {
  if (v === null || typeof v === "boolean" || typeof v === "string") return v;
  if (Array.isArray(v)) return v.map(toJS);
  if (v instanceof RSet) return v.values().map(toJS);
  if (v instanceof RObject) {
    const out: Record<string, unknown> = {};
    for (const [k, val] of v.entries()) out[typeof k === "string" ? k : toJSON(k)] = toJS(val);
    return out;
  }
  if (typeof v === "number") return v;
  return v; // bigint / BigDec: toJSON renders them exactly
}

/** JSON text of a value (OPA's json.marshal format: compact, keys sorted, sets as arrays). */
export function toJSON(v: Value): string {
  if (v === null || typeof v === "boolean") return String(v);
  if (typeof v === "string") return JSON.stringify(v);
  if (isNum(v)) return numString(v);
  if (Array.isArray(v)) return "[" + v.map(toJSON).join(",") + "]";
  if (v instanceof RSet) return "[" + v.values().map(toJSON).join(",") + "]";
  const parts: string[] = [];
  for (const [k, val] of v.entries()) parts.push(JSON.stringify(typeof k === "string" ? k : toJSON(k)) + ":" + toJSON(val));
  return "{" + parts.join(",") + "}";
}

/** Rego's own text form of a value (sets as {..}, used by sprintf %v and error messages). */
export function toRegoString(v: Value): string {
  if (v instanceof RSet) return v.size === 0 ? "set()" : "{" + v.values().map(toRegoString).join(", ") + "}";
  if (Array.isArray(v)) return "[" + v.map(toRegoString).join(", ") + "]";
  if (v instanceof RObject) return "{" + v.entries().map(([k, x]) => toRegoString(k) + ": " + toRegoString(x)).join(", ") + "}";
  return toJSON(v);
}
