/**
 * Every shell script under build/ is shellcheck-clean, and the copies embed.ts keeps are in step: the
 * unit inside the boot script is build/systemd/spacelift-launcher.service, and the boot script inside
 * the CloudFormation template is build/user-data/spacelift-boot.sh.
 * What this cannot check: how the scripts behave (the boot-script and Packer tests run them).
 */
import { describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { missingDeployTools } from "../../scripts/testenv/deploy-tools.ts";
import { hostCapability } from "../support/env.ts";
import { BOOT_SCRIPT, TEMPLATE, UNIT, unitInScript, withScript } from "../../build/user-data/embed.ts";

const build = join(import.meta.dir, "../../build");
const scripts = readdirSync(build, { recursive: true, encoding: "utf8" }).filter((f) => f.endsWith(".sh")).map((f) => join(build, f));

describe("build/ shell scripts (cannot check: their behaviour; the boot-script and Packer tests run them)", () => {
  test.skipIf(!hostCapability("shellcheck", missingDeployTools(["shellcheck"]).length === 0))(`shellcheck finds nothing in ${scripts.length} scripts`, () => {
    expect(scripts.length).toBeGreaterThanOrEqual(2);
    const r = spawnSync("shellcheck", ["--severity=style", ...scripts], { encoding: "utf8" });
    expect(r.stdout + r.stderr).toBe("");
    expect(r.status).toBe(0);
  });

  test("the boot script installs the repository's unit, and the template carries the boot script as it is", () => {
    const script = readFileSync(BOOT_SCRIPT, "utf8");
    expect(unitInScript(script)).toBe(readFileSync(UNIT, "utf8"));
    const template = readFileSync(TEMPLATE, "utf8");
    expect(withScript(template, script)).toBe(template);
  });
});
