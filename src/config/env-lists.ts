/**
 * `SPACELIFT_MASK_ENVS` and `SPACELIFT_WHITELIST_ENVS`: comma lists of the launcher's own environment
 * variables to pass into run containers. Values are resolved once, at load, from the launcher's
 * environment, so a listed variable that is not set fails the start instead of silently going missing
 * from every run. Masked values are secrets: no message ever contains them.
 */
import { fail, ok, problem, quote, type ParseResult } from "./parse-result.ts";

/** Which runs get a variable: every run, only read-only (proposed) runs, or only write runs. */
export type RunScope = "all" | "readonly" | "write";

export interface PassedVariable {
  readonly name: string;
  readonly value: string;
  readonly scope: RunScope;
}

export interface ListedName {
  readonly name: string;
  readonly scope: RunScope;
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** The pool credentials never go into a run: a run's code could read them and impersonate the pool. */
const NEVER_PASSED: readonly string[] = ["SPACELIFT_TOKEN", "SPACELIFT_POOL_PRIVATE_KEY"];

/**
 * Parse a list of names. With `scopes`, `ro_NAME` / `wo_NAME` restrict NAME to read-only / write
 * runs (Spacelift's convention; the prefix always wins, so a variable literally named `ro_x` cannot be
 * whitelisted for all runs).
 */
export function parseNameList(text: string, options: { scopes: boolean }): ParseResult<ListedName[]> {
  const good = options.scopes ? "e.g. AWS_REGION,ro_PLAN_ONLY_TOKEN,wo_DEPLOY_KEY" : "e.g. DB_PASSWORD,API_TOKEN";
  if (text === "") return fail("is empty (unset it to pass nothing)", good);
  const names: ListedName[] = [];
  const problems: string[] = [];
  const seen = new Set<string>();
  text.split(",").forEach((raw, index) => {
    const item = raw.trim();
    if (item === "") {
      problems.push(problem(`item ${index + 1} is empty (a doubled, leading or trailing comma)`, good));
      return;
    }
    let scope: RunScope = "all";
    let name = item;
    if (options.scopes && /^(ro|wo)_/.test(item)) {
      scope = item.startsWith("ro_") ? "readonly" : "write";
      name = item.slice(3);
    }
    if (!NAME.test(name)) {
      problems.push(problem(`item ${index + 1} ${quote(item)} is not an environment variable name`, good));
      return;
    }
    if (NEVER_PASSED.includes(name)) {
      problems.push(problem(`item ${index + 1} ${quote(item)}: the pool credentials are never passed to runs`, good));
      return;
    }
    const key = `${scope}:${name}`;
    if (seen.has(key)) return; // listing a name twice changes nothing
    seen.add(key);
    names.push({ name, scope });
  });
  return problems.length > 0 ? { ok: false, problems } : ok(names);
}

/**
 * Look the listed names up in the launcher's environment. A name that is not set is an error naming
 * it. With `secret`, an empty value is an error too: masking an empty string would mask nothing.
 */
export function resolveNames(
  names: readonly ListedName[],
  env: Readonly<Record<string, string | undefined>>,
  options: { secret: boolean },
): ParseResult<PassedVariable[]> {
  const resolved: PassedVariable[] = [];
  const problems: string[] = [];
  for (const { name, scope } of names) {
    const value = env[name];
    if (value === undefined) {
      problems.push(problem(`lists ${name}, which is not set in the launcher's environment`, `export ${name} before starting the launcher, or remove it from the list`));
    } else if (options.secret && value === "") {
      problems.push(problem(`lists ${name}, whose value is empty (nothing to mask)`, `give ${name} its secret value, or remove it from the list`));
    } else {
      resolved.push({ name, value, scope });
    }
  }
  return problems.length > 0 ? { ok: false, problems } : ok(resolved);
}

/**
 * The launcher variables a run of the given kind receives, and the secret values to mask in its
 * output. Masked variables go to every run; whitelisted ones by their scope.
 */
export function environmentForRun(
  lists: { readonly masked: readonly PassedVariable[]; readonly whitelisted: readonly PassedVariable[] },
  kind: "readonly" | "write",
): { env: Record<string, string>; secrets: string[] } {
  const env: Record<string, string> = {};
  for (const v of lists.whitelisted) if (v.scope === "all" || v.scope === kind) env[v.name] = v.value;
  for (const v of lists.masked) env[v.name] = v.value;
  return { env, secrets: lists.masked.map((v) => v.value) };
}
