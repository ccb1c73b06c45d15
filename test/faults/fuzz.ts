/**
 * The fuzzing harness of the fault suite: seeded and reproducible. Each target gets FAULT_ITERATIONS
 * inputs (default 2,000 in `make test`, 10,000 in `make faults`), mutated from valid samples (bit flips,
 * truncation, splicing, huge numbers, unicode, deep nesting) or made at random, from a PRNG seeded by
 * FAULT_SEED and the target's name, so one target's inputs do not change when another is added.
 *
 * `check` gets each input and throws when the parser did something it must not: a crash (an error
 * other than the documented class), a rejection without a clear message or a stable code. The harness
 * times every input; one over the cap (a hang in all but name) fails. A failure names the target, the
 * input's index, FAULT_SEED and the input itself, so `FAULT_SEED=<seed> bun test <file>` replays it.
 */
import { SpaceliftError } from "../../src/errors.ts";
import { rng } from "../support/random.ts";

/** `make test` runs a fixed seed (the same inputs every time); `make faults` draws one and prints it. */
export const FAULT_SEED = Number(process.env.FAULT_SEED ?? 20261203) >>> 0;
export const FAULT_ITERATIONS = Math.max(1, Number(process.env.FAULT_ITERATIONS ?? 2_000) | 0);
/** Generous: no parser should take anywhere near this for an input of a few KiB, even on a loaded machine. */
const PER_INPUT_CAP_MS = Number(process.env.FAULT_INPUT_CAP_MS ?? 2_000);

export type Rand = () => number;

export interface FuzzReport {
  target: string;
  seed: number;
  inputs: number;
  rejected: number;
  maxMs: number;
  p99Ms: number;
}

/** A stable code: lower-case words joined by dashes (`token-invalid`), or underscores for OPA's (`rego_parse_error`). */
export const STABLE_CODE = /^[a-z][a-z0-9]*([-_][a-z0-9]+)*$/;

/**
 * Runs `check` on FAULT_ITERATIONS inputs of `generate`. `check` returns true when the input was
 * rejected (for the report), false when accepted, and throws on a violation.
 */
export async function fuzz<T>(target: string, generate: (rand: Rand, i: number) => T, check: (input: T) => boolean | Promise<boolean>, show: (input: T) => string = showInput): Promise<FuzzReport> {
  const seed = (FAULT_SEED ^ hash(target)) >>> 0;
  const rand = rng(seed);
  const times: number[] = [];
  let rejected = 0;
  for (let i = 0; i < FAULT_ITERATIONS; i++) {
    const input = generate(rand, i);
    const started = performance.now();
    try {
      if (await check(input)) rejected++;
    } catch (err) {
      throw new Error(`fuzz ${target}: input #${i} failed (replay with FAULT_SEED=${FAULT_SEED}): ${err instanceof Error ? err.message : String(err)}\ninput: ${show(input)}`);
    }
    const ms = performance.now() - started;
    times.push(ms);
    if (ms > PER_INPUT_CAP_MS) throw new Error(`fuzz ${target}: input #${i} took ${Math.round(ms)} ms (cap ${PER_INPUT_CAP_MS} ms; replay with FAULT_SEED=${FAULT_SEED})\ninput: ${show(input)}`);
  }
  times.sort((a, b) => a - b);
  const report = { target, seed: FAULT_SEED, inputs: FAULT_ITERATIONS, rejected, maxMs: round(times.at(-1) ?? 0), p99Ms: round(times[Math.floor(times.length * 0.99)] ?? 0) };
  console.error(`fuzz ${target}: ${report.inputs} inputs (FAULT_SEED=${FAULT_SEED}), ${report.rejected} rejected, p99 ${report.p99Ms} ms, max ${report.maxMs} ms`);
  return report;
}

/**
 * The rejection contract of the parsers that throw: a SpaceliftError (or the documented subclass)
 * with a stable code and a non-empty message. Anything else thrown is a crash, rethrown as such.
 */
export function expectClearRejection(err: unknown, documented: abstract new (...args: never[]) => Error = SpaceliftError): true {
  if (!(err instanceof documented)) throw new Error(`crashed instead of rejecting: ${err instanceof Error ? `${err.constructor.name}: ${err.message}\n${err.stack}` : String(err)}`);
  if (err instanceof SpaceliftError && !STABLE_CODE.test(err.code)) throw new Error(`rejected with an unstable code ${JSON.stringify(err.code)}`);
  if (err.message.trim() === "") throw new Error("rejected with an empty message");
  return true;
}

/** The rejection contract of ParseResult parsers: every problem a non-empty line saying what to do ("...; e.g. ..."). */
export function expectClearProblems(problems: readonly string[]): true {
  if (problems.length === 0) throw new Error("rejected without a problem");
  for (const p of problems) {
    if (p.trim() === "" || /[\r\n]/.test(p)) throw new Error(`a problem that is empty or not one line: ${JSON.stringify(p)}`);
    if (!p.includes("; ")) throw new Error(`a problem without a hint of a good value: ${JSON.stringify(p)}`);
  }
  return true;
}

// ---- inputs ----

const pick = <T>(rand: Rand, items: readonly T[]): T => items[Math.floor(rand() * items.length)]!;
const int = (rand: Rand, n: number): number => Math.floor(rand() * n);

const NASTY = [
  "", " ", "\u0000", "\n", "\r\n", "\t", "\\", '"', "'", "%", "%00", "../", "..", "/", ":", ",", "=", ";", "{", "}", "[", "]",
  "9".repeat(400), "1e309", "-1e309", "NaN", "Infinity", "-0", "0x10", "1_000", "18446744073709551616", "2147483648", "-2147483649",
  "\ud800", "\udfff", "\u202e", "\u200b", "\ufeff", "é", "e\u0301", "😀", "𝟘", "ＡＢＣ", "İ", "ß",
  "null", "true", "false", "[]", "{}", "__proto__", "constructor", "prototype",
];

/** One mutation of `s` (a valid sample, usually), from `others` for splicing. */
export function mutateString(rand: Rand, s: string, others: readonly string[] = []): string {
  switch (int(rand, 11)) {
    case 0: // flip a bit of one character
      if (s.length === 0) return pick(rand, NASTY);
      {
        const at = int(rand, s.length);
        return s.slice(0, at) + String.fromCharCode(s.charCodeAt(at) ^ (1 << int(rand, 8))) + s.slice(at + 1);
      }
    case 1: // truncate
      return s.slice(0, int(rand, s.length + 1));
    case 2: // drop a slice
      {
        const a = int(rand, s.length + 1);
        return s.slice(0, a) + s.slice(a + int(rand, 16));
      }
    case 3: // insert something nasty
      {
        const at = int(rand, s.length + 1);
        return s.slice(0, at) + pick(rand, NASTY) + s.slice(at);
      }
    case 4: // splice with another sample
      {
        const o = others.length > 0 ? pick(rand, others) : s;
        return s.slice(0, int(rand, s.length + 1)) + o.slice(int(rand, o.length + 1));
      }
    case 5: // duplicate a slice many times (long inputs)
      {
        const a = int(rand, s.length + 1);
        const piece = s.slice(a, a + 1 + int(rand, 8)) || "x";
        return s.slice(0, a) + piece.repeat(1 + int(rand, 2000)) + s.slice(a);
      }
    case 6: // replace a number with a huge or odd one
      return s.replace(/\d+(\.\d+)?/, pick(rand, ["99999999999999999999999", "1e309", "-1", "0", "4294967296", "2147483648", "0.0000001", "NaN"]));
    case 7: // deep nesting
      {
        const depth = 1 + int(rand, 5000);
        const [open, close] = pick(rand, [["[", "]"], ["{", "}"], ["(", ")"], ['{"a":', "}"]]);
        return open!.repeat(depth) + s + (rand() < 0.5 ? close!.repeat(depth) : "");
      }
    case 8: // change case
      return rand() < 0.5 ? s.toUpperCase() : s.toLowerCase();
    case 9: // random characters
      return randomString(rand, 1 + int(rand, 64));
    default: // a nasty value alone
      return pick(rand, NASTY);
  }
}

/** Several mutations stacked: most inputs end up near-valid, some far away. */
export function mutate(rand: Rand, s: string, others: readonly string[] = []): string {
  let out = s;
  const rounds = 1 + int(rand, 3);
  for (let i = 0; i < rounds; i++) out = mutateString(rand, out, others);
  return out;
}

/** Random characters, ASCII mostly, with control, non-BMP and lone surrogate code units. */
export function randomString(rand: Rand, length: number): string {
  let out = "";
  for (let i = 0; i < length; i++) {
    const r = rand();
    if (r < 0.7) out += String.fromCharCode(32 + int(rand, 95));
    else if (r < 0.8) out += String.fromCharCode(int(rand, 32));
    else if (r < 0.9) out += String.fromCodePoint(0x80 + int(rand, 0x2ff80));
    else out += String.fromCharCode(0xd800 + int(rand, 0x800));
  }
  return out;
}

export function randomBytes(rand: Rand, length: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = int(rand, 256);
  return out;
}

/** A JSON-shaped mutation: a random field of `value` replaced by an odd value (recursively, one path). */
export function mutateJson(rand: Rand, value: unknown, depth = 0): unknown {
  const odd = (): unknown =>
    pick(rand, [null, true, 0, -1, 1e308, -1e308, 2 ** 53 + 1, 0.5, "", "x".repeat(int(rand, 100_000)), pick(rand, NASTY), [], {}, [[[[[]]]]], { a: { b: { c: {} } } }, randomString(rand, 20)]);
  if (depth > 6 || value === null || typeof value !== "object" || rand() < 0.2) return odd();
  if (Array.isArray(value)) {
    const copy = [...(value as unknown[])];
    if (copy.length === 0 || rand() < 0.2) copy.push(odd());
    else {
      const at = int(rand, copy.length);
      if (rand() < 0.2) copy.splice(at, 1);
      else copy[at] = mutateJson(rand, copy[at], depth + 1);
    }
    return copy;
  }
  const copy: Record<string, unknown> = { ...(value as Record<string, unknown>) };
  const keys = Object.keys(copy);
  const r = rand();
  if (keys.length === 0 || r < 0.15) copy[pick(rand, ["extra", "__proto__", "constructor", randomString(rand, 5)])] = odd();
  else if (r < 0.3) delete copy[pick(rand, keys)];
  else {
    const k = pick(rand, keys);
    copy[k] = mutateJson(rand, copy[k], depth + 1);
  }
  return copy;
}

export function showInput(input: unknown): string {
  const text = typeof input === "string" ? JSON.stringify(input) : input instanceof Uint8Array ? `bytes ${Buffer.from(input).toString("hex")}` : safeJson(input);
  return text.length > 2000 ? `${text.slice(0, 2000)}… (${text.length} characters)` : text;
}

function safeJson(v: unknown): string {
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

function hash(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h >>> 0;
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
