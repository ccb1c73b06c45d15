// The unused-exports check of `make check`, on a small program of its own.
import { expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import ts from "typescript";
import { findUnusedExports } from "../../../scripts/unused-exports.ts";

const FILES: Record<string, string> = {
  "src/lib.ts": [
    "export interface Options { n: number }",
    "export type Unused = string;",
    "export function used(o: Options): number { return o.n; }",
    "export function unused(): number { return 1; }",
    "export function helper(): number { return 2; }",
    "export const local = helper() + 1;",
    "export function testedOnly(): number { return 3; }",
    "/** Parsed on its own by the tests. @testSeam */",
    "export function seam(): number { return 4; }",
    "export function lazy(): number { return 5; }",
  ].join("\n"),
  "src/barrel.ts": 'export { used, helper } from "./lib.ts";',
  "src/main.ts": [
    'import { used } from "./barrel.ts";',
    "console.log(used({ n: 1 }));",
    'export async function start(): Promise<number> { const { lazy } = await import("./lib.ts"); return lazy(); }',
    "void start();",
  ].join("\n"),
  "test/lib.test.ts": 'import { seam, testedOnly } from "../src/lib.ts";\nconsole.log(seam(), testedOnly());',
};

test("reports exports nothing imports, test-only exports without @testSeam, and unused re-exports", () => {
  const root = mkdtempSync(join(tmpdir(), "unused-exports-"));
  try {
    for (const [name, text] of Object.entries(FILES)) {
      mkdirSync(join(root, name, ".."), { recursive: true });
      writeFileSync(join(root, name), text);
    }
    const program = ts.createProgram({
      rootNames: Object.keys(FILES).map((f) => join(root, f)),
      options: { strict: true, noEmit: true, allowImportingTsExtensions: true, module: ts.ModuleKind.Preserve, moduleResolution: ts.ModuleResolutionKind.Bundler, target: ts.ScriptTarget.ESNext },
    });
    const found = findUnusedExports(program, root).map((f) => `${f.file}:${f.line} ${f.name}: ${f.why.split(":")[0]}`);
    expect(found).toEqual([
      "src/barrel.ts:1 helper: nothing outside its file uses it",
      "src/lib.ts:2 Unused: nothing uses it",
      "src/lib.ts:4 unused: nothing outside its file uses it",
      // A re-export nobody imports is no use either.
      "src/lib.ts:5 helper: nothing outside its file uses it",
      "src/lib.ts:6 local: nothing outside its file uses it",
      "src/lib.ts:7 testedOnly: only tests import it",
      "src/main.ts:3 start: nothing outside its file uses it",
    ]);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
