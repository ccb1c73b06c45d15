/**
 * Running OPA's YAML conformance cases (v1/test/cases/testdata) with OPA's semantics: result rows
 * compared as a set, `sort_bindings`, `want_defined`, `want_error(_code)`, `strict_error`, `input_term`.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { compileSources, runQuery } from "../engine.ts";
import { PolicyError } from "../errors.ts";
import { RObject, RSet, compare, fromJS, keyOf, toJSON, type Value } from "../value.ts";

export interface Case {
  note: string;
  query: string;
  modules?: string[];
  data?: unknown;
  input?: unknown;
  input_term?: string;
  want_result?: Record<string, unknown>[];
  want_defined?: boolean;
  want_error?: string;
  want_error_code?: string;
  sort_bindings?: boolean;
  strict_error?: boolean;
}

export interface CaseOutcome {
  note: string;
  ok: boolean;
  why?: string;
}

export function loadCases(dir: string): Case[] {
  const out: Case[] = [];
  for (const f of readdirSync(dir).sort()) {
    if (!f.endsWith(".yaml") && !f.endsWith(".yml")) continue;
    const text = readFileSync(join(dir, f), "utf8");
    for (const doc of parseAllDocuments(text, { intAsBigInt: true })) {
      if ("errors" in doc && doc.errors.length > 0) continue;
      const js = doc.toJS({ maxAliasCount: -1 }) as { cases?: Case[] } | null;
      for (const c of js?.cases ?? []) out.push(c);
    }
  }
  return out;
}

export function isCaseDir(dir: string): boolean {
  try {
    return statSync(dir).isDirectory();
  } catch {
    return false;
  }
}

/** What OPA's JSON API would return: sets as arrays, non-string keys as JSON text. */
function asJSON(v: Value, sortArrays: boolean): Value {
  if (v instanceof RSet) return v.values().map((x) => asJSON(x, sortArrays));
  if (Array.isArray(v)) {
    const xs = v.map((x) => asJSON(x, sortArrays));
    return xs;
  }
  if (v instanceof RObject) {
    const o = new RObject();
    for (const [k, x] of v.entries()) o.set(typeof k === "string" ? k : toJSON(k), asJSON(x, sortArrays));
    return o;
  }
  return v;
}

function rowKey(row: Record<string, Value>, sort: boolean): string {
  const o = new RObject();
  for (const [k, v] of Object.entries(row)) {
    let x = asJSON(v, sort);
    if (sort && Array.isArray(x)) x = [...x].sort(compare);
    o.set(k, x);
  }
  return keyOf(o);
}

function errorText(e: PolicyError): string {
  const d = e.errors[0];
  return d ? `${d.file}:${d.line}: ${d.code}: ${d.message}` : e.message;
}

export function runCase(c: Case, nowNs?: bigint): CaseOutcome {
  const note = c.note;
  try {
    const policy = compileSources((c.modules ?? []).map((source, i) => ({ source, filename: `test-${i}.rego` })));
    const data = fromJS(c.data ?? {});
    let input: Value | undefined = c.input === undefined ? undefined : fromJS(c.input);
    if (c.input_term !== undefined) {
      const rows = runQuery(policy, `__input__ = ${c.input_term}`, undefined, { data });
      input = rows[0]?.["__input__"];
    }
    const rows = runQuery(policy, c.query, input, { data, strict: c.strict_error ?? false, ...(nowNs ? { nowNs } : {}) });
    if (c.want_error !== undefined || c.want_error_code !== undefined) return { note, ok: false, why: `expected error, got ${rows.length} rows` };
    if (c.want_defined !== undefined) {
      const ok = rows.length > 0 === c.want_defined;
      return { note, ok, ...(ok ? {} : { why: `defined=${rows.length > 0}` }) };
    }
    const want = new Set((c.want_result ?? []).map((r) => rowKey(Object.fromEntries(Object.entries(r).map(([k, v]) => [k, fromJS(v)])), c.sort_bindings ?? false)));
    const got = new Set(rows.map((r) => rowKey(r, c.sort_bindings ?? false)));
    const ok = want.size === got.size && [...want].every((k) => got.has(k));
    return { note, ok, ...(ok ? {} : { why: `got ${[...got].join(" | ").slice(0, 400)} want ${[...want].join(" | ").slice(0, 400)}` }) };
  } catch (e) {
    if (!(e instanceof PolicyError)) return { note, ok: false, why: `crash: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}` };
    if (c.want_error === undefined && c.want_error_code === undefined) return { note, ok: false, why: `error: ${e.message}` };
    if (c.want_error_code !== undefined && e.code !== c.want_error_code) return { note, ok: false, why: `code ${e.code} (${e.message}) want ${c.want_error_code}` };
    if (c.want_error !== undefined && !errorText(e).includes(c.want_error) && !e.message.includes(c.want_error)) {
      return { note, ok: false, why: `message ${errorText(e)} want ${c.want_error}` };
    }
    return { note, ok: true };
  }
}
