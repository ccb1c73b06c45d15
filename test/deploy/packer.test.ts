/**
 * The Packer template (build/packer/spacelift-worker.pkr.hcl) read with @cdktf/hcl2json, and its
 * provisioning script executed for real as root in a throwaway mount namespace (boot-sandbox.ts) with
 * the files the template uploads: the release's launcher is installed only when it matches SHA256SUMS.
 * What this cannot check: `packer build` itself (EC2, the base AMI, the amazon plugin) and installing
 * Docker on a bare image (the tools are already on this host, so that step is skipped).
 */
import { afterAll, describe, expect, test } from "bun:test";
import { parse } from "@cdktf/hcl2json";
import { createHash } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { dist } from "../../scripts/demo/world.ts";
import { missingDeployTools } from "../../scripts/testenv/deploy-tools.ts";
import { hostCapability } from "../support/env.ts";
import { BOOT_SCRIPT, BootSandbox } from "./boot-sandbox.ts";
import { LAUNCHER_NAME, TAMPERED_MARKER } from "./boot-world.ts";

const packer = join(import.meta.dir, "../../build/packer");
const UNIT = join(import.meta.dir, "../../build/systemd/spacelift-launcher.service");
const tools = missingDeployTools(["docker", "aws", "curl", "jq", "gpg", "unshare"]);
const ready = hostCapability(`root, ${tools.join(", ") || "the tools"} and a built ${LAUNCHER_NAME}`, process.getuid?.() === 0 && tools.length === 0 && existsSync(join(dist, LAUNCHER_NAME)));

interface PackerJson {
  source: { "amazon-ebs": { worker: Array<{ metadata_options: Array<Record<string, unknown>>; imds_support: string }> } };
  /** Provisioners grouped by type (hcl2json keeps the order within a type). */
  build: Array<{ provisioner: Record<string, Array<Record<string, unknown>>> }>;
  variable: Record<string, unknown>;
}

describe("Packer template (cannot check: packer build on EC2, installing Docker on a bare image)", () => {
  const sandbox = new BootSandbox();
  const dir = mkdtempSync(join(tmpdir(), "packer-test-"));
  afterAll(() => {
    sandbox.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test("uploads the launcher, SHA256SUMS, the boot script and the unit, runs provision.sh, builds with IMDSv2", async () => {
    const hcl = (await parse("spacelift-worker.pkr.hcl", readFileSync(join(packer, "spacelift-worker.pkr.hcl"), "utf8"))) as unknown as PackerJson;
    expect(Object.keys(hcl.variable).sort()).toEqual(["arch", "instance_type", "region", "release_dir"]);
    const source = hcl.source["amazon-ebs"].worker[0]!;
    expect(source.metadata_options[0]).toMatchObject({ http_tokens: "required", http_put_response_hop_limit: 1 });
    expect(source.imds_support).toBe("v2.0");
    const provisioners = hcl.build[0]!.provisioner;
    const file = provisioners.file![0]!;
    expect(file.sources).toEqual(["${var.release_dir}/${local.launcher}", "${var.release_dir}/SHA256SUMS", "${path.root}/../user-data/spacelift-boot.sh", "${path.root}/../systemd/spacelift-launcher.service"]);
    // The paths it uploads from build/ exist.
    for (const f of (file.sources as string[]).filter((s) => s.startsWith("${path.root}"))) expect(existsSync(join(packer, f.replace("${path.root}/", "")))).toBe(true);
    const shell = provisioners.shell!.find((s) => s.script)!;
    expect(shell.script).toBe("${path.root}/provision.sh");
    expect(shell.environment_vars).toEqual(["STAGING=/tmp/spacelift-packer", "LAUNCHER_NAME=${local.launcher}"]);
  });

  /** What the file provisioner uploads, with `binary` under the launcher's name. */
  function staging(name: string, binary: string): string {
    const staged = join(dir, name);
    mkdirSync(staged);
    copyFileSync(binary, join(staged, LAUNCHER_NAME));
    const sum = createHash("sha256").update(readFileSync(join(dist, LAUNCHER_NAME))).digest("hex");
    writeFileSync(join(staged, "SHA256SUMS"), `${sum}  ${LAUNCHER_NAME}\n`);
    copyFileSync(BOOT_SCRIPT, join(staged, "spacelift-boot.sh"));
    copyFileSync(UNIT, join(staged, "spacelift-launcher.service"));
    return staged;
  }

  test.skipIf(!ready)("provision.sh installs the verified launcher, the boot script and the unit, and enables Docker", async () => {
    const staged = staging("good", join(dist, LAUNCHER_NAME));
    const r = await sandbox.boot("provision-good", { STAGING: staged, LAUNCHER_NAME }, {}, "", join(packer, "provision.sh"));
    expect(r.exit, r.output).toBe(0);
    expect(r.output).toContain(`installed ${LAUNCHER_NAME}`);
    expect(readFileSync(r.changed("/usr/local/bin/spacelift-launcher")).equals(readFileSync(join(dist, LAUNCHER_NAME)))).toBe(true);
    expect(statSync(r.changed("/usr/local/bin/spacelift-launcher")).mode & 0o777).toBe(0o755);
    expect(readFileSync(r.changed("/usr/local/lib/spacelift/spacelift-boot.sh"), "utf8")).toBe(readFileSync(BOOT_SCRIPT, "utf8"));
    expect(readFileSync(r.changed("/etc/systemd/system/spacelift-launcher.service"), "utf8")).toBe(readFileSync(UNIT, "utf8"));
    expect(r.systemctl).toEqual(["enable docker.service"]);
    expect(existsSync(staged)).toBe(false);
  }, 60_000);

  test.skipIf(!ready)("provision.sh refuses a launcher that does not match SHA256SUMS and never runs it", async () => {
    rmSync(TAMPERED_MARKER, { force: true });
    const tampered = join(dir, "tampered");
    writeFileSync(tampered, `#!/bin/sh\ntouch ${TAMPERED_MARKER}\n`, { mode: 0o755 });
    const r = await sandbox.boot("provision-tampered", { STAGING: staging("tampered-staging", tampered), LAUNCHER_NAME }, {}, "", join(packer, "provision.sh"));
    expect(r.exit).toBe(1);
    expect(r.output).toContain(`provision: ${LAUNCHER_NAME} does not match SHA256SUMS`);
    expect(existsSync(r.changed("/usr/local/bin/spacelift-launcher"))).toBe(false);
    expect(existsSync(TAMPERED_MARKER)).toBe(false);
  }, 60_000);
});
