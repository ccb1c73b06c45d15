// OPA's conformance cases (subsets A, B and C of the corpus OPA_CASES names) against the committed list
// of known failures: a new failure fails, and so does a listed case that now passes (the list only
// shrinks). The corpus is OPA's test data, not part of the repository: without it these tests do not
// run (and say so), except under CI=true, where its absence is a failure.
import { describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { checkKnownFailures, findCaseCorpus, readKnownFailures, runFolders, subsetFolders, SUBSETS } from "../../../scripts/opa-conformance.ts";

const repo = resolve(import.meta.dir, "../../..");
const knownFile = join(repo, "test/policy/known-failures.txt");
const corpus = findCaseCorpus();
const cases = "dir" in corpus ? corpus.dir : undefined;

if ("missing" in corpus) {
  const message = `OPA conformance tests did not run: ${corpus.missing}`;
  if (process.env.CI === "true") {
    test("the OPA conformance case corpus is present (required under CI=true)", () => {
      throw new Error(message);
    });
  } else {
    console.log(message);
  }
}

describe.skipIf(cases === undefined)("OPA conformance", () => {
  const folders = (subset: string) => subsetFolders(cases!, subset);

  test("subsets A, B and C match the known-failures list", () => {
    const results = runFolders(SUBSETS.flatMap(folders));
    const total = results.reduce((n, r) => n + r.outcomes.length, 0);
    expect(total).toBeGreaterThan(1000);
    const check = checkKnownFailures(results, readKnownFailures(knownFile));
    expect(check.newFailures).toEqual([]);
    expect(check.nowPassing).toEqual([]);
  });

  test("every subset-A case passes", () => {
    const results = runFolders(folders(SUBSETS[0]));
    const failed = results.flatMap((r) => r.outcomes.filter((o) => !o.ok).map((o) => `${o.note}: ${o.why ?? ""}`));
    expect(failed).toEqual([]);
  });
});

test("the corpus comes from OPA_CASES, else ../shared/opa-cases beside the repository, else it is missing", () => {
  const root = mkdtempSync(join(tmpdir(), "opa-corpus-"));
  try {
    const given = join(root, "given");
    const beside = join(root, "shared/opa-cases");
    const clone = join(root, "clone");
    for (const d of [given, beside, clone]) mkdirSync(d, { recursive: true });
    writeFileSync(join(given, SUBSETS[0]), "aggregates\n");
    expect(findCaseCorpus({ OPA_CASES: given }, clone)).toEqual({ dir: given });
    const noSibling = findCaseCorpus({}, clone);
    expect("missing" in noSibling && noSibling.missing).toContain("OPA_CASES is not set");
    expect("missing" in noSibling && noSibling.missing).toContain("set OPA_CASES=DIR");
    writeFileSync(join(beside, SUBSETS[0]), "aggregates\n");
    expect(findCaseCorpus({}, clone)).toEqual({ dir: beside });
    // A given OPA_CASES wins, and a wrong one is reported rather than silently replaced.
    const wrong = findCaseCorpus({ OPA_CASES: join(root, "nope") }, clone);
    expect("missing" in wrong && wrong.missing).toContain(`OPA_CASES=${join(root, "nope")} holds no ${SUBSETS[0]}`);
    expect(subsetFolders(given, SUBSETS[0])).toEqual([join(given, "aggregates")]);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
