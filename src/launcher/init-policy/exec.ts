/**
 * Spacelift's `exec(x)` policy helper: runs a command on the launcher's host and returns an object
 * with its exit status and output. Off unless the operator sets
 * SPACELIFT_LAUNCHER_RUN_INITIALIZATION_POLICY_EXEC_ENABLED (the config then compiles the policy with it).
 *
 * - `x` is an array of strings: the program and its arguments, executed directly (no shell, so nothing
 *   in a run's data can be interpreted as shell syntax). A program without a slash is looked up in PATH.
 * - The result is `{"status": n, "exit_code": n, "stdout": s, "stderr": s}`: `status` is the key
 *   Spacelift's documentation names; `exit_code` is the same number under a self-explanatory name.
 *   A non-zero exit is a result like any other — the policy decides what it means.
 * - Failing to run at all (no such program, wrong argument, killed at the time limit, too much output) is
 *   an evaluation error, so the run is denied: a signature check that could not run must not allow.
 *
 * The evaluator is synchronous, so the command is too (spawnSync); it is bounded by what is left of
 * the policy's time limit and its output by a fixed size.
 */
import { spawnSync } from "node:child_process";
import { PolicyError, fromJS, type Value } from "../../policy/index.ts";

/** Output beyond this (per stream) fails the call: a policy compares short outputs, not logs. */
const EXEC_MAX_OUTPUT_BYTES = 1024 * 1024;

/** The pool's credentials are never handed to a command the policy runs. */
const WITHHELD = new Set(["SPACELIFT_TOKEN", "SPACELIFT_POOL_PRIVATE_KEY"]);
const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

export interface ExecOptions {
  /** Milliseconds the command may still take (what is left of the evaluation's time limit). */
  remainingMs: () => number;
  /** The launcher's environment, minus the pool credentials, is the command's environment. */
  env?: Readonly<Record<string, string | undefined>>;
}

function commandEnvironment(env: Readonly<Record<string, string | undefined>> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env ?? {})) if (v !== undefined && !WITHHELD.has(k)) out[k] = v;
  out.PATH ??= DEFAULT_PATH;
  return out;
}

/** The host function given to the evaluator under the name `exec` (one argument). */
export function execHostFunction(options: ExecOptions): (x: Value) => Value {
  const env = commandEnvironment(options.env);
  return (x: Value): Value => {
    const argv = commandOf(x);
    const [program, ...args] = argv;
    const remaining = Math.floor(options.remainingMs());
    if (program === undefined) throw new PolicyError("eval_builtin_error", "exec: the command array is empty");
    if (remaining <= 0) throw new PolicyError("eval_timeout", `exec: no time left to run ${JSON.stringify(program)}`);
    const r = spawnSync(program, args, {
      env,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
      timeout: remaining,
      killSignal: "SIGKILL",
      maxBuffer: EXEC_MAX_OUTPUT_BYTES,
    });
    if (r.error) {
      const code = (r.error as NodeJS.ErrnoException).code;
      if (code === "ETIMEDOUT") {
        throw new PolicyError("eval_timeout", `exec: ${JSON.stringify(program)} did not finish within the policy's time limit`, undefined, { cause: r.error });
      }
      const why = code === "ENOENT" ? "no such program" : code === "ENOBUFS" ? `more than ${EXEC_MAX_OUTPUT_BYTES} bytes of output` : (code ?? r.error.message);
      throw new PolicyError("eval_builtin_error", `exec: could not run ${JSON.stringify(program)}: ${why}`, undefined, { cause: r.error });
    }
    if (r.status === null) {
      throw new PolicyError("eval_builtin_error", `exec: ${JSON.stringify(program)} was killed by ${r.signal ?? "a signal"}`);
    }
    return fromJS({ status: r.status, exit_code: r.status, stdout: r.stdout, stderr: r.stderr });
  };
}

function commandOf(x: Value): string[] {
  if (!Array.isArray(x) || !x.every((a): a is string => typeof a === "string")) {
    throw new PolicyError("eval_type_error", 'exec: the argument must be an array of strings, e.g. exec(["/usr/local/bin/verify", input.run.id])');
  }
  return x;
}
