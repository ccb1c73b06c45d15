/**
 * Writes the boot script (build/user-data/spacelift-boot.sh) verbatim into the CloudFormation
 * template's user data, the YAML block after the line naming it, and the systemd unit
 * (build/systemd/spacelift-launcher.service) into the boot script's heredoc. Run it after editing
 * either; test/deploy checks that the copies match.
 *
 *   bun build/user-data/embed.ts
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const root = join(import.meta.dir, "..");
export const BOOT_SCRIPT = join(root, "user-data", "spacelift-boot.sh");
export const UNIT = join(root, "systemd", "spacelift-launcher.service");
export const TEMPLATE = join(root, "cloudformation", "workerpool.yaml");
const MARKER = "# The boot script, verbatim: build/user-data/spacelift-boot.sh";

/** The boot script with `unit` as the body of its `<<'UNIT'` heredoc. */
export function withUnit(script: string, unit: string): string {
  const m = /(cat >"\$UNIT" <<'UNIT'\n)([\s\S]*?\n)(UNIT\n)/.exec(script);
  if (!m) throw new Error("the boot script has no <<'UNIT' heredoc");
  return script.slice(0, m.index) + m[1] + unit + m[3] + script.slice(m.index + m[0].length);
}

/** The heredoc's body (what the boot script installs as the unit). */
export function unitInScript(script: string): string {
  return /cat >"\$UNIT" <<'UNIT'\n([\s\S]*?\n)UNIT\n/.exec(script)?.[1] ?? "";
}

/** The template with `script` as the block scalar after the marker comment. */
export function withScript(template: string, script: string): string {
  const lines = template.split("\n");
  const at = lines.findIndex((l) => l.trim().startsWith(MARKER));
  if (at < 0 || lines[at + 1]?.trim() !== "- |") throw new Error(`the template has no "${MARKER}" line followed by "- |"`);
  const indent = " ".repeat(lines[at + 1]!.indexOf("-") + 2);
  let end = at + 2;
  while (end < lines.length && (lines[end] === "" || lines[end]!.startsWith(indent) || lines[end] === "@@BOOT_SCRIPT@@")) end++;
  const block = script.replace(/\n$/, "").split("\n").map((l) => (l === "" ? "" : indent + l));
  return [...lines.slice(0, at + 2), ...block, "", ...lines.slice(end)].join("\n");
}

if (import.meta.main) {
  const script = withUnit(readFileSync(BOOT_SCRIPT, "utf8"), readFileSync(UNIT, "utf8"));
  writeFileSync(BOOT_SCRIPT, script);
  writeFileSync(TEMPLATE, withScript(readFileSync(TEMPLATE, "utf8"), script));
  console.log(`embedded ${UNIT} in ${BOOT_SCRIPT}, and that in ${TEMPLATE}`);
}
