/**
 * A small argv parser for the mothership CLI: positionals, `--flag value`, `--flag=value`,
 * repeatable flags and boolean switches. Unknown flags are usage errors, never silently ignored.
 */
import { SpaceliftError } from "../../errors.ts";

export interface ParsedArgs {
  positionals: string[];
  flags: Map<string, string[]>;
  switches: Set<string>;
}

export interface ArgSpec {
  /** Flags that take a value. */
  values: readonly string[];
  /** Flags without a value. */
  switches: readonly string[];
}

export const usageError = (message: string) => new SpaceliftError("usage", message);

export function parseArgs(argv: readonly string[], spec: ArgSpec): ParsedArgs {
  const out: ParsedArgs = { positionals: [], flags: new Map(), switches: new Set() };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? "";
    if (!arg.startsWith("--") || arg === "--") {
      out.positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const name = arg.slice(2, eq === -1 ? undefined : eq);
    if (spec.switches.includes(name)) {
      if (eq !== -1) throw usageError(`--${name} takes no value`);
      out.switches.add(name);
      continue;
    }
    if (!spec.values.includes(name)) throw usageError(`unknown option --${name}`);
    let value: string | undefined;
    if (eq !== -1) value = arg.slice(eq + 1);
    else {
      value = argv[i + 1];
      i++;
    }
    if (value === undefined) throw usageError(`--${name} needs a value`);
    out.flags.set(name, [...(out.flags.get(name) ?? []), value]);
  }
  return out;
}

export function flag(a: ParsedArgs, name: string): string | undefined {
  return a.flags.get(name)?.at(-1);
}

export function requiredFlag(a: ParsedArgs, name: string): string {
  const v = flag(a, name);
  if (v === undefined || v === "") throw usageError(`--${name} is required`);
  return v;
}

export function all(a: ParsedArgs, name: string): string[] {
  return a.flags.get(name) ?? [];
}

/** "HOST:PORT", "[::1]:PORT" or ":PORT"; PORT 0 means "any free port". */
export function hostPort(value: string, what: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(value);
  const port = Number(m?.[3]);
  if (!m || port > 65535) throw usageError(`${what} must be HOST:PORT, e.g. 127.0.0.1:8080 (got ${JSON.stringify(value)})`);
  return { host: m[1] ?? (m[2] || "0.0.0.0"), port };
}

/** Splits K=V at the first "="; the value may contain more. */
export function keyValue(item: string, what: string): [string, string] {
  const eq = item.indexOf("=");
  if (eq <= 0) throw usageError(`${what} must be NAME=VALUE (got ${JSON.stringify(item)})`);
  return [item.slice(0, eq), item.slice(eq + 1)];
}
