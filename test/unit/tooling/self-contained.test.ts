// The repository explains itself: comments and docs point at files inside it (docs/, folder READMEs),
// never at design documents that live outside the repository.
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative, resolve } from "node:path";

const repo = resolve(import.meta.dir, "../../..");
const ROOTS = ["src", "scripts", "build", "docs", "test", "README.md", "Makefile"];
const OUTSIDE = [/\bDESIGN(\.md)?\s*§/, /\bSTYLE\s+\d+\b/, /\bshared\/(DESIGN|STYLE)\.md\b/, /\bshared\/reference\b/];

function* files(path: string): Generator<string> {
  const st = statSync(path);
  if (st.isFile()) {
    if (/\.(ts|md|sh|yaml|yml|json|tf|hcl|service|txt)$|Makefile$/.test(path)) yield path;
    return;
  }
  for (const name of readdirSync(path)) {
    if (name === "node_modules" || name === "dist") continue;
    yield* files(join(path, name));
  }
}

describe("the repository stands on its own", () => {
  test("no comment or document points at design documents outside the repository", () => {
    const found: string[] = [];
    let scanned = 0;
    for (const root of ROOTS) {
      for (const file of files(join(repo, root))) {
        if (file === import.meta.path) continue;
        scanned++;
        readFileSync(file, "utf8")
          .split("\n")
          .forEach((line, i) => {
            if (OUTSIDE.some((re) => re.test(line))) found.push(`${relative(repo, file)}:${i + 1}: ${line.trim()}`);
          });
      }
    }
    expect(scanned).toBeGreaterThan(100);
    expect(found).toEqual([]);
  });

  test("the architecture and security documents exist and the README links them", () => {
    const readme = readFileSync(join(repo, "README.md"), "utf8");
    expect(readme).toContain("docs/architecture.md");
    expect(readme).toContain("docs/security.md");
    for (const doc of ["docs/architecture.md", "docs/security.md"]) expect(readFileSync(join(repo, doc), "utf8").length).toBeGreaterThan(2000);
  });

  test("the README's layout table names every folder under src/", () => {
    const readme = readFileSync(join(repo, "README.md"), "utf8");
    const layout = readme.slice(readme.indexOf("## Layout"));
    const folders = readdirSync(join(repo, "src"), { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => `src/${d.name}/`);
    expect(folders.length).toBeGreaterThan(5);
    expect(folders.filter((f) => !layout.includes(f))).toEqual([]);
  });
});
