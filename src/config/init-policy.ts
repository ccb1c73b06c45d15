/**
 * `SPACELIFT_LAUNCHER_RUN_INITIALIZATION_POLICY`: the Rego file is read, parsed and checked once, at
 * load, so a broken policy stops the launcher (and fails `spacelift-launcher check`) instead of failing
 * every run it receives later. The compiled policy travels in the config inside a small holder.
 *
 * `exec(x)` runs commands on the launcher's host, so a policy may only call it when the operator opts
 * in with `SPACELIFT_LAUNCHER_RUN_INITIALIZATION_POLICY_EXEC_ENABLED`; otherwise the policy is compiled
 * without it, and a call to it is reported at its file:line:col with the variable to set.
 */
import { readFileSync } from "node:fs";
import type * as PolicyEngine from "../policy/index.ts";
import type { CompiledPolicy, PolicyErrorDetail } from "../policy/index.ts";
import { fail, ok, type ParseResult } from "./parse-result.ts";
import { parseReadableFile } from "./values.ts";

export const EXEC_ENABLED_VARIABLE = "SPACELIFT_LAUNCHER_RUN_INITIALIZATION_POLICY_EXEC_ENABLED";

const GOOD = "fix the policy and try it with `spacelift-launcher policy eval --policy FILE --input FILE`";
const GOOD_PATH = "give the path of a readable .rego file, e.g. /etc/spacelift/init-policy.rego";

/**
 * A compiled run-initialization policy. A class (not a plain object) so the config's deep freeze leaves
 * the engine's structures alone, and so serializing or inspecting the config shows the path and not
 * the whole syntax tree.
 */
export class InitializationPolicy {
  constructor(
    /** Absolute path of the file. */
    readonly path: string,
    readonly compiled: CompiledPolicy,
    /** Whether the policy was compiled with the `exec` host function. */
    readonly execEnabled: boolean,
  ) {
    Object.freeze(this);
  }

  toJSON(): { path: string; execEnabled: boolean } {
    return { path: this.path, execEnabled: this.execEnabled };
  }

  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return `InitializationPolicy(${this.path})`;
  }
}

/** Read, parse and check the policy file; every failure is one problem line with file:line:col. */
export function parseInitializationPolicy(raw: string, execEnabled: boolean): ParseResult<InitializationPolicy> {
  const file = parseReadableFile(raw, GOOD_PATH);
  if (!file.ok) return file;
  const path = file.value;
  let source: string;
  try {
    source = readFileSync(path, "utf8");
  } catch {
    return fail(`${JSON.stringify(raw)} could not be read`, GOOD_PATH);
  }
  const hosts = execEnabled ? ["sanitized", "exec"] : ["sanitized"];
  const first = tryCompile(source, path, hosts);
  if (first instanceof InitializationPolicyFailure) {
    // Compiles with exec but not without: the only problem is a call to the disabled helper.
    if (!execEnabled && !(tryCompile(source, path, ["sanitized", "exec"]) instanceof InitializationPolicyFailure)) {
      const at = first.errors[0];
      const where = at ? `${location(at)}: ` : "";
      return fail(`${where}the policy calls exec(), which is disabled`, `set ${EXEC_ENABLED_VARIABLE}=true to let the policy run commands on this host`);
    }
    return fail(`is not a valid policy: ${summary(first.errors)}`, GOOD);
  }
  return ok(new InitializationPolicy(path, first, execEnabled));
}

class InitializationPolicyFailure {
  constructor(readonly errors: readonly PolicyErrorDetail[]) {}
}

function tryCompile(source: string, path: string, hosts: string[]): CompiledPolicy | InitializationPolicyFailure {
  // The Rego engine is loaded only when a policy is configured: ~6 MB resident that a launcher without
  // one never pays (docs/performance.md). Synchronous, as configuration loading is.
  const { compilePolicy, PolicyError } = require("../policy/index.ts") as typeof PolicyEngine;
  try {
    return compilePolicy(source, path, hosts);
  } catch (err) {
    if (err instanceof PolicyError) return new InitializationPolicyFailure(err.errors);
    // The engine reports every problem of a policy as a PolicyError; anything else is still the
    // policy's fault from the operator's point of view (e.g. nesting deep enough to exhaust the stack).
    const message = err instanceof Error ? err.message : String(err);
    return new InitializationPolicyFailure([{ file: path, line: 0, col: 0, message, code: "rego_compile_error" }]);
  }
}

function location(e: PolicyErrorDetail): string {
  return e.file ? `${e.file}:${e.line}:${e.col}` : "";
}

/** `file:line:col: code: message` for the first error (the config's one-line rule), and how many more. */
function summary(errors: readonly PolicyErrorDetail[]): string {
  const first = errors[0];
  if (first === undefined) return "unknown error";
  const at = location(first);
  const text = `${at ? `${at}: ` : ""}${first.code}: ${first.message}`;
  return errors.length > 1 ? `${text} (and ${errors.length - 1} more error${errors.length > 2 ? "s" : ""})` : text;
}
