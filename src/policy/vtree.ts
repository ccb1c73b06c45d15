/**
 * Building a virtual document from rules whose heads are refs: objects created along rule paths
 * merge; values produced by one rule are leaves (equal leaves agree, anything else is a conflict);
 * partial sets at the same path union.
 */
import { RObject, RSet, equal, keyOf, type Value } from "./value.ts";

export type VNode =
  | { kind: "obj"; map: Map<string, { key: Value; node: VNode }> }
  | { kind: "leaf"; value: Value }
  | { kind: "set"; set: RSet };

export class Conflict extends Error {}

export function newObj(): VNode {
  return { kind: "obj", map: new Map() };
}

/** Base documents are mergeable objects all the way down. */
export function fromBase(v: Value): VNode {
  if (v instanceof RObject) {
    const n = newObj() as VNode & { kind: "obj" };
    for (const [k, x] of v.entries()) n.map.set(keyOf(k), { key: k, node: fromBase(x) });
    return n;
  }
  return { kind: "leaf", value: v };
}

function merge(into: VNode & { kind: "obj" }, key: Value, node: VNode): void {
  const k = keyOf(key);
  const existing = into.map.get(k);
  if (!existing) {
    into.map.set(k, { key, node });
    return;
  }
  existing.node = mergeNodes(existing.node, node);
}

function mergeNodes(a: VNode, b: VNode): VNode {
  if (a.kind === "obj" && b.kind === "obj") {
    for (const { key, node } of b.map.values()) merge(a, key, node);
    return a;
  }
  if (a.kind === "set" && b.kind === "set") {
    const s = RSet.from(a.set.values());
    for (const v of b.set.values()) s.add(v);
    return { kind: "set", set: s };
  }
  if (a.kind === "leaf" && b.kind === "leaf" && equal(a.value, b.value)) return a;
  if (a.kind === "obj" && a.map.size === 0) return b;
  if (b.kind === "obj" && b.map.size === 0) return a;
  throw new Conflict();
}

/** Inserts `node` at `path` below `root` (creating objects on the way). */
export function insertAt(root: VNode & { kind: "obj" }, path: Value[], node: VNode): void {
  let cur: VNode & { kind: "obj" } = root;
  for (let i = 0; i < path.length - 1; i++) {
    const key = path[i] as Value;
    const k = keyOf(key);
    let e = cur.map.get(k);
    if (!e) {
      e = { key, node: newObj() };
      cur.map.set(k, e);
    }
    if (e.node.kind !== "obj") throw new Conflict();
    cur = e.node;
  }
  if (path.length === 0) {
    mergeNodes(root, node);
    return;
  }
  merge(cur, path[path.length - 1] as Value, node);
}

/** Replaces whatever is at `path` (used by `with data.x as v`). */
export function overrideAt(root: VNode & { kind: "obj" }, path: Value[], node: VNode): void {
  let cur: VNode & { kind: "obj" } = root;
  for (let i = 0; i < path.length - 1; i++) {
    const key = path[i] as Value;
    const k = keyOf(key);
    let e = cur.map.get(k);
    if (!e || e.node.kind !== "obj") {
      const existing = e?.node.kind === "leaf" ? e.node.value : undefined;
      e = { key, node: existing instanceof RObject ? fromBase(existing) : newObj() };
      cur.map.set(k, e);
    }
    cur = e.node as VNode & { kind: "obj" };
  }
  const last = path[path.length - 1] as Value;
  cur.map.set(keyOf(last), { key: last, node });
}

export function toValue(n: VNode): Value {
  if (n.kind === "leaf") return n.value;
  if (n.kind === "set") return n.set;
  const o = new RObject();
  for (const { key, node } of n.map.values()) o.set(key, toValue(node));
  return o;
}
