// OPA's conformance cases (subsets A, B and C of ../shared/opa-cases) against the committed list of
// known failures: a new failure fails, and so does a listed case that now passes (the list only shrinks).
import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { checkKnownFailures, readKnownFailures, runFolders } from "../../../scripts/opa-conformance.ts";

const repo = resolve(import.meta.dir, "../../..");
const cases = resolve(repo, "../shared/opa-cases");
const knownFile = join(repo, "test/policy/known-failures.txt");

function folders(subset: string): string[] {
  const file = readFileSync(join(cases, subset), "utf8");
  return file.split("\n").map((l) => l.trim()).filter((l) => l !== "").map((f) => join(cases, f));
}

describe("OPA conformance", () => {
  test("the case corpus is present", () => {
    expect(existsSync(join(cases, "subset-A-core-language.txt"))).toBe(true);
  });

  test("subsets A, B and C match the known-failures list", () => {
    const dirs = ["subset-A-core-language.txt", "subset-B-common-builtins.txt", "subset-C-jwt-crypto-cidr.txt"].flatMap(folders);
    const results = runFolders(dirs);
    const total = results.reduce((n, r) => n + r.outcomes.length, 0);
    expect(total).toBeGreaterThan(1000);
    const check = checkKnownFailures(results, readKnownFailures(knownFile));
    expect(check.newFailures).toEqual([]);
    expect(check.nowPassing).toEqual([]);
  });

  test("every subset-A case passes", () => {
    const results = runFolders(folders("subset-A-core-language.txt"));
    const failed = results.flatMap((r) => r.outcomes.filter((o) => !o.ok).map((o) => `${o.note}: ${o.why ?? ""}`));
    expect(failed).toEqual([]);
  });
});
