// The release binaries: both architectures, checksums, size limit, and `version` on each (aarch64 under qemu).
import { beforeAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";

const root = join(import.meta.dir, "../../..");
const dist = join(root, "dist");
const FILES = ["spacelift-launcher-x86_64", "spacelift-launcher-aarch64", "mothership-x86_64", "mothership-aarch64"];
const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string };

beforeAll(() => {
  if (FILES.every((f) => existsSync(join(dist, f)))) return;
  const r = spawnSync(process.execPath, ["build/build.ts"], { cwd: root, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`build failed: ${r.stderr}`);
}, 300_000);

describe("release binaries", () => {
  test("all four binaries exist and SHA256SUMS verifies with sha256sum -c", () => {
    const sums = readFileSync(join(dist, "SHA256SUMS"), "utf8");
    for (const f of FILES) expect(sums).toContain(`  ${f}\n`);
    const r = spawnSync("sha256sum", ["-c", "SHA256SUMS"], { cwd: dist, encoding: "utf8" });
    expect(r.stdout).not.toContain("FAILED");
    expect(r.status).toBe(0);
  });

  test("each launcher is at most 120 MB", () => {
    for (const f of ["spacelift-launcher-x86_64", "spacelift-launcher-aarch64"]) {
      expect(statSync(join(dist, f)).size).toBeLessThanOrEqual(120 * 1024 * 1024);
    }
  });

  test("x86_64 launcher prints version, commit and target", () => {
    const r = spawnSync(join(dist, "spacelift-launcher-x86_64"), ["version"], { encoding: "utf8" });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^spacelift-launcher ${pkg.version.replace(/\./g, "\\.")} \\(commit [0-9a-f]{12}(-dirty)?, linux-x86_64\\)\\n$`));
  });

  test("aarch64 launcher runs `version` under qemu-aarch64-static", () => {
    const r = spawnSync(
      "qemu-aarch64-static",
      ["-L", "/usr/aarch64-linux-gnu", join(dist, "spacelift-launcher-aarch64"), "version"],
      { encoding: "utf8", timeout: 120_000 },
    );
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(r.stdout).toContain("linux-aarch64)");
  }, 120_000);

  test("mothership binaries print their version", () => {
    const r = spawnSync(join(dist, "mothership-x86_64"), ["version"], { encoding: "utf8" });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^mothership \S+ \(commit \S+, linux-x86_64\)/);
  });
});
