/**
 * The built-in function table. Each built-in takes evaluated operands and returns a value, or
 * undefined when the call is undefined; it throws BuiltinError for bad operands (raised only under
 * strict built-in errors, otherwise the expression is undefined, as in OPA).
 */
import { BuiltinError } from "../errors.ts";
import { isNum, type Num } from "../number.ts";
import { RObject, RSet, typeOf, type Value } from "../value.ts";

export interface BuiltinContext {
  /** Evaluation start time (ns since epoch), fixed for the whole query like OPA's time.now_ns. */
  nowNs: bigint;
  /** Per-query cache (e.g. compiled regular expressions). */
  cache: Map<string, unknown>;
}

export interface Builtin {
  name: string;
  /** Number of operands; -1 for variadic. */
  arity: number;
  fn: (args: Value[], ctx: BuiltinContext) => Value | undefined;
  /** Relations (e.g. `walk`) return an array of results, each one a solution. */
  relation?: boolean;
}

export const builtins = new Map<string, Builtin>();

export function register(name: string, arity: number, fn: Builtin["fn"], extra: Partial<Builtin> = {}): void {
  builtins.set(name, { name, arity, fn, ...extra });
}

export function typeErr(name: string, pos: number, want: string, got: Value): BuiltinError {
  return new BuiltinError("eval_type_error", `${name}: operand ${pos} must be ${want} but got ${typeOf(got)}`);
}

export function builtinErr(name: string, message: string): BuiltinError {
  return new BuiltinError("eval_builtin_error", `${name}: ${message}`);
}

export function str(name: string, args: Value[], i: number): string {
  const v = args[i] as Value;
  if (typeof v !== "string") throw typeErr(name, i + 1, "string", v);
  return v;
}

export function num(name: string, args: Value[], i: number): Num {
  const v = args[i] as Value;
  if (!isNum(v)) throw typeErr(name, i + 1, "number", v);
  return v;
}

export function arr(name: string, args: Value[], i: number): Value[] {
  const v = args[i] as Value;
  if (!Array.isArray(v)) throw typeErr(name, i + 1, "array", v);
  return v;
}

export function obj(name: string, args: Value[], i: number): RObject {
  const v = args[i] as Value;
  if (!(v instanceof RObject)) throw typeErr(name, i + 1, "object", v);
  return v;
}

export function set(name: string, args: Value[], i: number): RSet {
  const v = args[i] as Value;
  if (!(v instanceof RSet)) throw typeErr(name, i + 1, "set", v);
  return v;
}

/** Elements of an array or set operand. */
export function items(name: string, args: Value[], i: number, want = "one of {array, set}"): Value[] {
  const v = args[i] as Value;
  if (Array.isArray(v)) return v;
  if (v instanceof RSet) return v.values();
  throw typeErr(name, i + 1, want, v);
}

/** An integer operand (numbers.range, bits.*): floats are a type error, as in OPA. */
export function int(name: string, args: Value[], i: number): bigint {
  const v = num(name, args, i);
  if (typeof v === "bigint") return v;
  if (typeof v === "number" && Number.isInteger(v)) return BigInt(v);
  throw new BuiltinError("eval_type_error", `${name}: operand ${i + 1} must be integer number but got floating-point number`);
}
