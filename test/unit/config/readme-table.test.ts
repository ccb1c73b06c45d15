// The README's configuration table, CONFIG_VARIABLES and the schema name the same variables.
import { expect, test } from "bun:test";
import { join } from "node:path";
import { CONFIG_VARIABLES } from "../../../src/config/launcher-config.ts";
import { launcherSchema } from "../../../src/config/schema.ts";

async function readmeTableVariables(): Promise<string[]> {
  const readme = await Bun.file(join(import.meta.dir, "../../../README.md")).text();
  const section = readme.split(/^## /m).find((s) => s.startsWith("Configuration\n"));
  if (section === undefined) throw new Error("README.md has no '## Configuration' section");
  const rows = section.split("\n").filter((l) => l.startsWith("|"));
  expect(rows[0]?.replace(/\s+/g, "")).toBe("|variable|default|meaning|");
  return rows.slice(2).map((row) => {
    const first = /^\|\s*`([^`]+)`\s*\|/.exec(row);
    if (!first?.[1]) throw new Error(`README table row without a variable: ${row}`);
    expect(row.split(/(?<!\\)\|/).length).toBe(5); // | variable | default | meaning |
    return first[1];
  });
}

test("every entry of CONFIG_VARIABLES is in the README table and every variable of the table is in CONFIG_VARIABLES", async () => {
  const table = await readmeTableVariables();
  expect(new Set(table).size).toBe(table.length);
  expect(CONFIG_VARIABLES.filter((v) => !table.includes(v))).toEqual([]);
  expect(table.filter((v) => !CONFIG_VARIABLES.includes(v))).toEqual([]);
});

test("the README says failures are one line naming the variable", async () => {
  const readme = await Bun.file(join(import.meta.dir, "../../../README.md")).text();
  expect(readme.replace(/\s+/g, " ")).toContain("every failure is reported as one line naming the variable");
});

test("CONFIG_VARIABLES is exactly what the schema parses (pattern variables as their patterns)", () => {
  const { schema } = launcherSchema({}, { requireCredentials: true, now: new Date() });
  const fixed = Object.keys(schema.pipe[0].entries).filter((k) => k !== "metadata" && k !== "vcs");
  const patterns = ["SPACELIFT_METADATA_<key>", "SPACELIFT_PRIVATEVCS_MAPPING_NAME_<n>", "SPACELIFT_PRIVATEVCS_MAPPING_BASE_ENDPOINT_<n>"];
  expect([...CONFIG_VARIABLES].sort()).toEqual([...fixed, ...patterns].sort());
});
