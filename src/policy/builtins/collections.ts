/** Sets, arrays and objects: union, intersection, array.*, object.*, json.filter/remove, walk. */
import { RObject, RSet, equal, type Value } from "../value.ts";
import { BuiltinError } from "../errors.ts";
import { arr, builtinErr, int, obj, register, set, str, typeErr } from "./registry.ts";
import { fromBigInt } from "../number.ts";

register("union", 1, (a) => {
  const s = set("union", a, 0);
  const out = new RSet();
  for (const x of s.values()) {
    if (!(x instanceof RSet)) throw typeErr("union", 1, "set of sets", s);
    for (const y of x.values()) out.add(y);
  }
  return out;
});
register("intersection", 1, (a) => {
  const s = set("intersection", a, 0);
  const sets = s.values();
  for (const x of sets) if (!(x instanceof RSet)) throw typeErr("intersection", 1, "set of sets", s);
  if (sets.length === 0) return new RSet();
  const [first, ...rest] = sets as RSet[];
  return RSet.from((first as RSet).values().filter((v) => rest.every((r) => r.has(v))));
});

register("array.concat", 2, (a) => [...arr("array.concat", a, 0), ...arr("array.concat", a, 1)]);
register("array.reverse", 1, (a) => [...arr("array.reverse", a, 0)].reverse());
register("array.slice", 3, (a) => {
  const xs = arr("array.slice", a, 0);
  let start = Number(int("array.slice", a, 1));
  let stop = Number(int("array.slice", a, 2));
  if (start < 0) start = 0;
  if (stop > xs.length) stop = xs.length;
  if (start >= stop) return [];
  return xs.slice(start, stop);
});
register("array.flatten", 1, (a) => {
  return arr("array.flatten", a, 0).flatMap((x) => (Array.isArray(x) ? x : [x]));
});

register("object.get", 3, (a) => {
  const o = obj("object.get", a, 0);
  const key = a[1] as Value;
  if (Array.isArray(key)) {
    let cur: Value = o;
    for (const k of key) {
      let next: Value | undefined;
      if (cur instanceof RObject) next = cur.get(k);
      else if (Array.isArray(cur) && typeof k === "number" && Number.isInteger(k)) next = cur[k];
      else if (cur instanceof RSet && cur.has(k)) next = k;
      if (next === undefined) return a[2] as Value;
      cur = next;
    }
    return cur;
  }
  const v = o.get(key);
  return v === undefined ? (a[2] as Value) : v;
});
register("object.keys", 1, (a) => RSet.from(obj("object.keys", a, 0).keys()));

function keySet(name: string, v: Value, pos: number): RSet {
  if (v instanceof RSet) return v;
  if (Array.isArray(v)) return RSet.from(v);
  if (v instanceof RObject) return RSet.from(v.keys());
  throw typeErr(name, pos, "one of {object, set, array}", v);
}
register("object.remove", 2, (a) => {
  const o = obj("object.remove", a, 0);
  const drop = keySet("object.remove", a[1] as Value, 2);
  return RObject.from(o.entries().filter(([k]) => !drop.has(k)));
});
register("object.filter", 2, (a) => {
  const o = obj("object.filter", a, 0);
  const keep = keySet("object.filter", a[1] as Value, 2);
  return RObject.from(o.entries().filter(([k]) => keep.has(k)));
});

function mergeObjects(x: RObject, y: RObject): RObject {
  const out = RObject.from(x.entries());
  for (const [k, v] of y.entries()) {
    const cur = out.get(k);
    if (cur instanceof RObject && v instanceof RObject) out.set(k, mergeObjects(cur, v));
    else out.set(k, v);
  }
  return out;
}
register("object.union", 2, (a) => mergeObjects(obj("object.union", a, 0), obj("object.union", a, 1)));
register("object.union_n", 1, (a) => {
  const xs = arr("object.union_n", a, 0);
  let out = new RObject();
  for (const x of xs) {
    if (!(x instanceof RObject)) throw typeErr("object.union_n", 1, "array of objects", a[0] as Value);
    out = mergeObjects(out, x);
  }
  return out;
});

/**
 * object.subset as OPA defines it: objects recursively (a shared key's values may themselves be
 * subsets: objects, sets or arrays), sets by membership, arrays as a contiguous run in order, and a
 * set within an array by membership; values inside sets and arrays are compared whole.
 */
function objectSubset(sup: RObject, sub: RObject): boolean {
  return sub.entries().every(([k, v]) => {
    const s = sup.get(k);
    if (s === undefined) return false;
    if (equal(s, v)) return true;
    if (s instanceof RObject && v instanceof RObject) return objectSubset(s, v);
    if (s instanceof RSet && v instanceof RSet) return setSubset(s, v);
    if (Array.isArray(s) && Array.isArray(v)) return arraySubset(s, v);
    return false;
  });
}

function setSubset(sup: RSet, sub: RSet): boolean {
  return sub.values().every((v) => sup.has(v));
}

function arraySubset(sup: Value[], sub: Value[]): boolean {
  if (sub.length > sup.length) return false;
  for (let i = 0; i + sub.length <= sup.length; i++) if (sub.every((v, j) => equal(v, sup[i + j] as Value))) return true;
  return false;
}

register("object.subset", 2, (a) => {
  const [sup, sub] = a as [Value, Value];
  if (sup instanceof RObject && sub instanceof RObject) return objectSubset(sup, sub);
  if (sup instanceof RSet && sub instanceof RSet) return setSubset(sup, sub);
  if (Array.isArray(sup) && Array.isArray(sub)) return arraySubset(sup, sub);
  if (Array.isArray(sup) && sub instanceof RSet) {
    const members = RSet.from(sup);
    return sub.values().every((v) => members.has(v));
  }
  throw new BuiltinError("eval_type_error", "object.subset: both arguments object.subset must be of the same type or array and set");
});

/** Paths for json.filter / json.remove: "a/b" strings or arrays of segments. */
function paths(name: string, v: Value): Value[][] {
  const xs = Array.isArray(v) ? v : v instanceof RSet ? v.values() : undefined;
  if (!xs) throw typeErr(name, 2, "one of {set, array}", v);
  return xs.map((p) => {
    if (typeof p === "string") return p.replace(/^\//, "").split("/").filter((s) => s !== "").map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~"));
    if (Array.isArray(p)) return p;
    throw typeErr(name, 2, "one of {set, array} containing string paths or array of path segments", p);
  });
}

type Trie = Map<string, { key: Value; sub: Trie; leaf: boolean }>;
function trie(ps: Value[][]): Trie {
  const root: Trie = new Map();
  for (const p of ps) {
    let cur = root;
    p.forEach((seg, i) => {
      const k = typeof seg === "string" ? seg : JSON.stringify(seg);
      let e = cur.get(k);
      if (!e) cur.set(k, (e = { key: seg, sub: new Map(), leaf: false }));
      if (i === p.length - 1) e.leaf = true;
      cur = e.sub;
    });
  }
  return root;
}
const segKey = (k: Value): string => (typeof k === "string" ? k : typeof k === "number" ? String(k) : JSON.stringify(k));

function filterBy(v: Value, t: Trie): Value {
  if (v instanceof RObject) {
    const out = new RObject();
    for (const [k, x] of v.entries()) {
      const e = t.get(segKey(k));
      if (e) out.set(k, e.leaf ? x : filterBy(x, e.sub));
    }
    return out;
  }
  if (Array.isArray(v)) {
    const out: Value[] = [];
    v.forEach((x, i) => {
      const e = t.get(String(i));
      if (e) out.push(e.leaf ? x : filterBy(x, e.sub));
    });
    return out;
  }
  if (v instanceof RSet) {
    const out = new RSet();
    for (const x of v.values()) {
      const e = t.get(segKey(x));
      if (e) out.add(e.leaf ? x : filterBy(x, e.sub));
    }
    return out;
  }
  return v;
}
function removeBy(v: Value, t: Trie): Value {
  if (v instanceof RObject) {
    const out = new RObject();
    for (const [k, x] of v.entries()) {
      const e = t.get(segKey(k));
      if (e?.leaf) continue;
      out.set(k, e ? removeBy(x, e.sub) : x);
    }
    return out;
  }
  if (Array.isArray(v)) {
    const out: Value[] = [];
    v.forEach((x, i) => {
      const e = t.get(String(i));
      if (e?.leaf) return;
      out.push(e ? removeBy(x, e.sub) : x);
    });
    return out;
  }
  if (v instanceof RSet) {
    const out = new RSet();
    for (const x of v.values()) {
      const e = t.get(segKey(x));
      if (e?.leaf) continue;
      out.add(e ? removeBy(x, e.sub) : x);
    }
    return out;
  }
  return v;
}
register("json.filter", 2, (a) => filterBy(obj("json.filter", a, 0), trie(paths("json.filter", a[1] as Value))));
register("json.remove", 2, (a) => removeBy(obj("json.remove", a, 0), trie(paths("json.remove", a[1] as Value))));

register(
  "walk",
  1,
  (a) => {
    const out: Value[] = [];
    const visit = (path: Value[], v: Value): void => {
      out.push([path, v]);
      if (Array.isArray(v)) v.forEach((x, i) => visit([...path, i], x));
      else if (v instanceof RObject) for (const [k, x] of v.entries()) visit([...path, k], x);
      else if (v instanceof RSet) for (const x of v.values()) visit([...path, x], x);
    };
    visit([], a[0] as Value);
    return out;
  },
  { relation: true },
);

register("numbers.range", 2, (a) => {
  const x = int("numbers.range", a, 0);
  const y = int("numbers.range", a, 1);
  const out: Value[] = [];
  if (x <= y) for (let i = x; i <= y; i++) out.push(fromBigInt(i));
  else for (let i = x; i >= y; i--) out.push(fromBigInt(i));
  return out;
});
register("numbers.range_step", 3, (a) => {
  const x = int("numbers.range_step", a, 0);
  const y = int("numbers.range_step", a, 1);
  const step = int("numbers.range_step", a, 2);
  if (step <= 0n) throw builtinErr("numbers.range_step", "step must be a positive integer");
  const out: Value[] = [];
  if (x <= y) for (let i = x; i <= y; i += step) out.push(fromBigInt(i));
  else for (let i = x; i >= y; i -= step) out.push(fromBigInt(i));
  return out;
});
void str;
