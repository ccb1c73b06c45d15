// Runs OPA's YAML conformance cases against our Rego engine.
// Usage: bun scripts/opa-conformance.ts [--known-failures FILE] [--write-known-failures FILE] [-v] [DIR...]
// Without DIR, the folders of subsets A, B and C of the case corpus (see findCaseCorpus). Prints
// `folder: P passed, F failed` per folder and finally `N passed, M failed`. With --known-failures,
// exits non-zero when a case fails that is not listed, or a listed case passes.
import { readFileSync, writeFileSync, existsSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { isCaseDir, loadCases, runCase, type CaseOutcome } from "../src/policy/conformance/cases.ts";

const REPO = resolve(import.meta.dir, "..");

/** The subsets the engine is held to: A must pass whole, A to C must match the known-failures list. */
export const SUBSETS = ["subset-A-core-language.txt", "subset-B-common-builtins.txt", "subset-C-jwt-crypto-cidr.txt"] as const;

/**
 * Where OPA's conformance cases are: `OPA_CASES` when set, else `../shared/opa-cases` beside the
 * repository when it exists. The corpus is not part of the repository (it is OPA's test data), so
 * a fresh clone has none: then `missing` says why and how to provide it.
 */
export function findCaseCorpus(env: Record<string, string | undefined> = process.env, repo: string = REPO): { dir: string } | { missing: string } {
  const how = "set OPA_CASES=DIR to a folder of OPA's YAML conformance cases (one folder per topic, with the subset-*.txt lists)";
  const given = env.OPA_CASES;
  if (given !== undefined && given !== "") {
    const dir = resolve(given);
    if (!existsSync(join(dir, SUBSETS[0]))) return { missing: `OPA_CASES=${given} holds no ${SUBSETS[0]}; ${how}` };
    return { dir };
  }
  const beside = resolve(repo, "../shared/opa-cases");
  if (existsSync(join(beside, SUBSETS[0]))) return { dir: beside };
  return { missing: `OPA_CASES is not set and there is no case corpus at ${beside}; ${how}` };
}

/** The case folders a subset list names (one folder name a line). */
export function subsetFolders(corpus: string, subset: string): string[] {
  const file = readFileSync(join(corpus, subset), "utf8");
  return file.split("\n").map((l) => l.trim()).filter((l) => l !== "").map((f) => join(corpus, f));
}

export interface FolderResult {
  folder: string;
  outcomes: CaseOutcome[];
}

export function runFolders(dirs: string[]): FolderResult[] {
  return dirs.filter(isCaseDir).map((dir) => ({ folder: basename(dir), outcomes: loadCases(dir).map((c) => runCase(c)) }));
}

export interface KnownFailureCheck {
  newFailures: string[];
  nowPassing: string[];
}

export function readKnownFailures(file: string): Set<string> {
  if (!existsSync(file)) return new Set();
  return new Set(readFileSync(file, "utf8").split("\n").map((l) => l.trim()).filter((l) => l !== "" && !l.startsWith("#")));
}

export function checkKnownFailures(results: FolderResult[], known: Set<string>): KnownFailureCheck {
  // Notes are not unique upstream: a note fails when any case carrying it fails.
  const failing = new Set<string>();
  const seen = new Set<string>();
  for (const o of results.flatMap((r) => r.outcomes)) {
    seen.add(o.note);
    if (!o.ok) failing.add(o.note);
  }
  return {
    newFailures: [...failing].filter((n) => !known.has(n)),
    nowPassing: [...known].filter((n) => seen.has(n) && !failing.has(n)),
  };
}

function main(argv: string[]): number {
  const dirs: string[] = [];
  let knownFile: string | undefined;
  let writeFile: string | undefined;
  let verbose = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === "--known-failures") knownFile = argv[++i];
    else if (a === "--write-known-failures") writeFile = argv[++i];
    else if (a === "-v" || a === "--verbose") verbose = true;
    else dirs.push(a);
  }
  if (dirs.length === 0) {
    const corpus = findCaseCorpus();
    if ("missing" in corpus) {
      console.error(`opa-conformance: ${corpus.missing}`);
      return 2;
    }
    dirs.push(...SUBSETS.flatMap((s) => subsetFolders(corpus.dir, s)));
  }
  const results = runFolders(dirs);
  let passed = 0;
  let failed = 0;
  for (const r of results) {
    const p = r.outcomes.filter((o) => o.ok).length;
    const f = r.outcomes.length - p;
    passed += p;
    failed += f;
    console.log(`${r.folder}: ${p} passed, ${f} failed`);
    if (verbose) for (const o of r.outcomes) if (!o.ok) console.log(`  FAIL ${o.note}: ${o.why ?? ""}`);
  }
  console.log(`${passed} passed, ${failed} failed`);
  if (writeFile) {
    const notes = [...new Set(results.flatMap((r) => r.outcomes.filter((o) => !o.ok).map((o) => o.note)))].sort();
    writeFileSync(writeFile, notes.map((n) => n + "\n").join(""));
  }
  if (knownFile) {
    const check = checkKnownFailures(results, readKnownFailures(knownFile));
    for (const n of check.newFailures) console.log(`new failure: ${n}`);
    for (const n of check.nowPassing) console.log(`now passing (remove from ${knownFile}): ${n}`);
    if (check.newFailures.length > 0 || check.nowPassing.length > 0) return 1;
  }
  return 0;
}

if (import.meta.main) process.exit(main(process.argv.slice(2)));
