/**
 * Fails on exports of `src/` that nothing imports: dead code that still looks like an API. Run by
 * `make check`. A use is an import (or `namespace.name`) in another file of src/, scripts/ or build/;
 * an import from test/ counts only when the export is a deliberate test seam, marked `@testSeam` in its
 * doc comment (without a seam the test exercises a path the programs never take). Types count as used
 * by any reference at all, their own file included, because exported signatures name them.
 *   bun scripts/unused-exports.ts      prints `file:line: name is exported but never imported; ...`
 */
import { relative, resolve } from "node:path";
import ts from "typescript";

const ROOT = resolve(import.meta.dir, "..");

interface Finding {
  file: string;
  line: number;
  name: string;
  why: string;
}

function loadProgram(): ts.Program {
  const configPath = resolve(ROOT, "tsconfig.json");
  const read = ts.readConfigFile(configPath, (p) => ts.sys.readFile(p));
  const parsed = ts.parseJsonConfigFileContent(read.config, ts.sys, ROOT);
  return ts.createProgram({ rootNames: parsed.fileNames, options: parsed.options });
}

type Area = "src" | "test" | "other";
function areaOf(root: string, file: string): Area {
  const rel = relative(root, file);
  if (rel.startsWith("src/")) return "src";
  if (rel.startsWith("test/")) return "test";
  return "other";
}

/** The symbol and every alias it goes through (import -> re-export -> declaration). */
function aliasChain(checker: ts.TypeChecker, symbol: ts.Symbol): ts.Symbol[] {
  const chain = [symbol];
  let s = symbol;
  while (s.flags & ts.SymbolFlags.Alias) {
    const next = checker.getImmediateAliasedSymbol(s);
    if (!next || chain.includes(next)) break;
    chain.push(next);
    s = next;
  }
  return chain;
}

/** `const { name } = await import("./m.ts")`: the export `name` of m, not the local variable. */
function destructuredProperty(checker: ts.TypeChecker, node: ts.Identifier): ts.Symbol | undefined {
  const element = node.parent;
  if (!ts.isBindingElement(element) || !ts.isObjectBindingPattern(element.parent)) return undefined;
  if (element.propertyName === undefined ? element.name !== node : element.propertyName !== node) return undefined;
  return checker.getTypeAtLocation(element.parent).getProperty(node.text);
}

/** Marked `@testSeam` in its doc comment (for a re-export: where it is declared). */
function isTestSeam(checker: ts.TypeChecker, symbol: ts.Symbol): boolean {
  return aliasChain(checker, symbol).some((s) =>
    (s.declarations ?? []).some((d) => ts.getJSDocCommentsAndTags(d).some((doc) => doc.getText().includes("@testSeam"))),
  );
}

export function findUnusedExports(program: ts.Program = loadProgram(), root: string = ROOT): Finding[] {
  const checker = program.getTypeChecker();
  const files = program.getSourceFiles().filter((f) => !f.isDeclarationFile && !f.fileName.includes("/node_modules/"));
  // symbol -> the areas of the files that use it (outside the file declaring it), and whether its own file does.
  const usedFrom = new Map<ts.Symbol, Set<Area>>();
  const usedInOwnFile = new Set<ts.Symbol>();

  for (const file of files) {
    const area = areaOf(root, file.fileName);
    const visit = (node: ts.Node): void => {
      if (ts.isIdentifier(node) && !ts.isExportSpecifier(node.parent)) {
        const symbol = destructuredProperty(checker, node) ?? checker.getSymbolAtLocation(node);
        if (symbol) {
          for (const s of aliasChain(checker, symbol)) {
            const declaredHere = (s.declarations ?? []).some((d) => d.getSourceFile() === file);
            const isDeclarationName = (s.declarations ?? []).some((d) => (d as ts.NamedDeclaration).name === node);
            if (isDeclarationName) continue;
            if (declaredHere) usedInOwnFile.add(s);
            else {
              const areas = usedFrom.get(s) ?? new Set<Area>();
              areas.add(area);
              usedFrom.set(s, areas);
            }
          }
        }
      }
      ts.forEachChild(node, visit);
    };
    visit(file);
  }

  const findings: Finding[] = [];
  for (const file of files) {
    if (areaOf(root, file.fileName) !== "src") continue;
    const moduleSymbol = checker.getSymbolAtLocation(file);
    if (!moduleSymbol) continue;
    for (const exported of checker.getExportsOfModule(moduleSymbol)) {
      const declaration = exported.declarations?.[0];
      if (!declaration || declaration.getSourceFile() !== file) continue; // re-exports are judged where declared
      const target = exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported;
      const isTypeOnly = !(target.flags & ts.SymbolFlags.Value);
      const areas = usedFrom.get(exported) ?? new Set<Area>();
      const where = relative(root, file.fileName);
      const line = file.getLineAndCharacterOfPosition(declaration.getStart()).line + 1;
      if (areas.has("src") || areas.has("other")) continue;
      if (isTypeOnly && usedInOwnFile.has(exported)) continue;
      if (areas.has("test")) {
        if (isTestSeam(checker, exported)) continue;
        findings.push({ file: where, line, name: exported.name, why: "only tests import it: remove it and test what the programs call, or mark it @testSeam in its doc comment" });
        continue;
      }
      findings.push({ file: where, line, name: exported.name, why: isTypeOnly ? "nothing uses it: remove it" : "nothing outside its file uses it: remove it, or drop `export`" });
    }
  }
  return findings.sort((a, b) => (a.file === b.file ? a.line - b.line : a.file < b.file ? -1 : 1));
}

if (import.meta.main) {
  const findings = findUnusedExports();
  for (const f of findings) console.log(`${f.file}:${f.line}: ${f.name} is exported but never imported; ${f.why}`);
  if (findings.length > 0) {
    console.log(`${findings.length} unused export${findings.length === 1 ? "" : "s"}`);
    process.exit(1);
  }
}
