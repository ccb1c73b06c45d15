/**
 * `spacelift-launcher policy eval --policy FILE --input FILE [--query Q]`: evaluates an init policy
 * the way the launcher would (or any query), prints JSON; errors as file:line:col, exit 1.
 */
import { readFile } from "node:fs/promises";
import { compilePolicy, evaluate } from "./index.ts";
import { PolicyError } from "./errors.ts";
import { evaluateInitPolicy } from "./spacelift.ts";
import { toJS, type Value } from "./value.ts";

export interface CliIO {
  stdout: { write(s: string): unknown };
  stderr: { write(s: string): unknown };
}

const usage = "usage: spacelift-launcher policy eval --policy FILE --input FILE [--query QUERY]\n";

function json(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => (typeof x === "bigint" ? x.toString() : x));
}

export async function policyEvalCommand(args: string[], io: CliIO): Promise<number> {
  const rest = args[0] === "eval" ? args.slice(1) : args;
  let policyFile: string | undefined;
  let inputFile: string | undefined;
  let query: string | undefined;
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i];
    const next = rest[i + 1];
    if ((a === "--policy" || a === "--input" || a === "--query") && next === undefined) {
      io.stderr.write(`${a} needs a value\n${usage}`);
      return 1;
    }
    if (a === "--policy") policyFile = rest[++i];
    else if (a === "--input") inputFile = rest[++i];
    else if (a === "--query") query = rest[++i];
    else {
      io.stderr.write(`unknown argument ${a ?? ""}\n${usage}`);
      return 1;
    }
  }
  if (!policyFile || !inputFile) {
    io.stderr.write(usage);
    return 1;
  }
  let source: string;
  let input: unknown;
  try {
    source = await readFile(policyFile, "utf8");
    input = JSON.parse(await readFile(inputFile, "utf8"));
  } catch (e) {
    io.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
  try {
    const policy = compilePolicy(source, policyFile);
    if (query !== undefined) {
      const rows = evaluate(policy, query, input);
      io.stdout.write(json(rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, toJS(v as Value)])))) + "\n");
      return 0;
    }
    const r = evaluateInitPolicy(policy, input);
    const out: Record<string, unknown> = { deny: r.deny, outcome: r.outcome };
    if (policyDefinesSample(policy)) out.sample = r.sample;
    io.stdout.write(json(out) + "\n");
    return 0;
  } catch (e) {
    if (e instanceof PolicyError) {
      io.stderr.write(e.message + "\n");
      return 1;
    }
    throw e;
  }
}

function policyDefinesSample(policy: ReturnType<typeof compilePolicy>): boolean {
  let node = policy.root;
  for (const p of policy.pkg) {
    const c = node.children.get(p);
    if (!c) return false;
    node = c;
  }
  return node.children.has("sample");
}
