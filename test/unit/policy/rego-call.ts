// Evaluates one Rego expression through the whole engine (parse, type check, evaluation), the way a
// policy would use a built-in, for the built-in tests of this folder.
import { compileSources, runQuery } from "../../../src/policy/engine.ts";
import { PolicyError } from "../../../src/policy/errors.ts";
import { fromJS, toJS } from "../../../src/policy/value.ts";

export interface CallOptions {
  /** Document bound to `input`, so that operand types are only known at run time. */
  input?: unknown;
  /** OPA's strict built-in errors (default true): a failing built-in raises instead of being undefined. */
  strict?: boolean;
  /** Evaluation clock, ns since the epoch (time.now_ns and io.jwt.decode_verify). */
  nowNs?: bigint;
}

/** The value of `expr` as plain JS (big integers as bigint), or "undefined". */
export function rego(expr: string, opts: CallOptions = {}): unknown {
  const policy = compileSources([{ source: `package t\nimport rego.v1\np := ${expr}\n`, filename: "t.rego" }]);
  const rows = runQuery(policy, "x := data.t.p", opts.input === undefined ? undefined : fromJS(opts.input), {
    strict: opts.strict ?? true,
    ...(opts.nowNs === undefined ? {} : { nowNs: opts.nowNs }),
  });
  const x = rows[0]?.x;
  return x === undefined ? "undefined" : toJS(x);
}

/** The error `expr` raises under strict built-in errors: OPA's code and the message after the location. */
export function regoError(expr: string, opts: CallOptions = {}): { code: string; message: string } {
  try {
    rego(expr, opts);
  } catch (e) {
    if (!(e instanceof PolicyError)) throw e;
    const first = e.errors[0];
    return { code: first?.code ?? e.code, message: first?.message ?? e.message };
  }
  throw new Error(`expected ${expr} to fail`);
}
