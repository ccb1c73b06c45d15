/**
 * `make release` (build/release.ts) with throwaway OpenPGP keys made here: what an operator checks —
 * `gpg --verify` with only the public key, `sha256sum -c` — passes on the release and fails once a
 * byte is flipped; the key comes only from the environment and never shows in the output.
 * What this cannot check: the real release key, and the build itself (`--from` takes prepared binaries;
 * the build has its own test).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { missingDeployTools } from "../../scripts/testenv/deploy-tools.ts";
import { hostCapability } from "../support/env.ts";

const RELEASE = join(import.meta.dir, "../../build/release.ts");
const BINARIES = ["mothership-aarch64", "mothership-x86_64", "spacelift-launcher-aarch64", "spacelift-launcher-x86_64"];
const ready = hostCapability("gpg", missingDeployTools(["gpg"]).length === 0);
const dir = mkdtempSync(join(tmpdir(), "release-test-"));

function run(cmd: string, args: string[], env: Record<string, string> = {}, cwd?: string) {
  const r = spawnSync(cmd, args, { encoding: "utf8", env: { ...process.env, ...env }, cwd });
  return { code: r.status, out: r.stdout + r.stderr };
}

/** A fresh key in its own GNUPGHOME: the armored secret key and a home holding only its public key. */
function makeKey(name: string, passphrase = ""): { secret: string; verifierHome: string } {
  const home = join(dir, `${name}-signer`);
  const verifierHome = join(dir, `${name}-verifier`);
  mkdirSync(home, { mode: 0o700 });
  mkdirSync(verifierHome, { mode: 0o700 });
  const gpg = (h: string, args: string[], input?: string) => spawnSync("gpg", ["--homedir", h, "--batch", "--pinentry-mode", "loopback", "--passphrase", passphrase, ...args], { encoding: "utf8", input });
  expect(gpg(home, ["--quick-gen-key", `${name} <${name}@example.invalid>`, "ed25519", "sign", "never"]).status).toBe(0);
  const secret = gpg(home, ["--armor", "--export-secret-keys"]).stdout;
  expect(gpg(verifierHome, ["--import"], gpg(home, ["--armor", "--export"]).stdout).status).toBe(0);
  spawnSync("gpgconf", ["--homedir", home, "--kill", "gpg-agent"]);
  return { secret, verifierHome };
}

describe.skipIf(!ready)("make release (cannot check: the real release key, the build itself)", () => {
  const from = join(dir, "built");
  let key: { secret: string; verifierHome: string };

  beforeAll(() => {
    mkdirSync(from);
    for (const name of BINARIES) writeFileSync(join(from, name), randomBytes(4096));
    key = makeKey("release");
  }, 60_000);
  afterAll(() => {
    for (const home of ["release-verifier", "other-verifier", "protected-verifier"]) spawnSync("gpgconf", ["--homedir", join(dir, home), "--kill", "gpg-agent"]);
    rmSync(dir, { recursive: true, force: true });
  });

  const verify = (home: string, out: string) => run("gpg", ["--homedir", home, "--batch", "--verify", join(out, "SHA256SUMS.asc"), join(out, "SHA256SUMS")]);

  test("writes the binaries, SHA256SUMS and a signature that gpg --verify and sha256sum -c accept; a flipped byte fails them", () => {
    const out = join(dir, "out");
    const r = run(process.execPath, [RELEASE, "--from", from, "--out", out], { RELEASE_GPG_KEY: key.secret });
    expect(r.code, r.out).toBe(0);
    expect(r.out).not.toContain("PRIVATE KEY");
    for (const name of BINARIES) expect(readFileSync(join(out, name)).equals(readFileSync(join(from, name)))).toBe(true);
    expect(readFileSync(join(out, "release-key.asc"), "utf8")).toContain("BEGIN PGP PUBLIC KEY BLOCK");
    expect(readFileSync(join(out, "release-key.asc"), "utf8")).not.toContain("PRIVATE");
    const good = verify(key.verifierHome, out);
    expect(good.code, good.out).toBe(0);
    expect(good.out).toContain("Good signature");
    expect(run("sha256sum", ["-c", "SHA256SUMS"], {}, out).code).toBe(0);

    const sums = readFileSync(join(out, "SHA256SUMS"));
    const flipped = Buffer.from(sums);
    flipped[3] = flipped[3]! ^ 0x01;
    writeFileSync(join(out, "SHA256SUMS"), flipped);
    const bad = verify(key.verifierHome, out);
    expect(bad.code).not.toBe(0);
    expect(bad.out).toContain("BAD signature");
    writeFileSync(join(out, "SHA256SUMS"), sums);

    const launcher = readFileSync(join(out, "spacelift-launcher-x86_64"));
    launcher[100] = launcher[100]! ^ 0x80;
    writeFileSync(join(out, "spacelift-launcher-x86_64"), launcher);
    const check = run("sha256sum", ["-c", "SHA256SUMS"], {}, out);
    expect(check.code).not.toBe(0);
    expect(check.out).toContain("spacelift-launcher-x86_64: FAILED");
  }, 60_000);

  test("a signature by another key does not verify", () => {
    const other = makeKey("other");
    const out = join(dir, "other-out");
    expect(run(process.execPath, [RELEASE, "--from", from, "--out", out], { RELEASE_GPG_KEY: other.secret }).code).toBe(0);
    expect(verify(key.verifierHome, out).code).not.toBe(0);
  }, 60_000);

  test("a passphrase-protected key signs with RELEASE_GPG_PASSPHRASE and not without the right one", () => {
    const protectedKey = makeKey("protected", "correct horse");
    const out = join(dir, "protected-out");
    const wrong = run(process.execPath, [RELEASE, "--from", from, "--out", out], { RELEASE_GPG_KEY: protectedKey.secret, RELEASE_GPG_PASSPHRASE: "wrong" });
    expect(wrong.code).toBe(1);
    expect(wrong.out).toContain("signing SHA256SUMS failed");
    expect(wrong.out).not.toContain("wrong");
    const right = run(process.execPath, [RELEASE, "--from", from, "--out", out], { RELEASE_GPG_KEY: protectedKey.secret, RELEASE_GPG_PASSPHRASE: "correct horse" });
    expect(right.code, right.out).toBe(0);
    expect(verify(protectedKey.verifierHome, out).code).toBe(0);
  }, 60_000);

  test("without RELEASE_GPG_KEY, or without binaries, it stops and says what to do", () => {
    const none = run(process.execPath, [RELEASE, "--from", from, "--out", join(dir, "none")], { RELEASE_GPG_KEY: "" });
    expect(none.code).toBe(1);
    expect(none.out).toContain("RELEASE_GPG_KEY must hold the armored OpenPGP private key");
    const empty = join(dir, "empty");
    mkdirSync(empty);
    const missing = run(process.execPath, [RELEASE, "--from", empty, "--out", join(dir, "none")], { RELEASE_GPG_KEY: key.secret });
    expect(missing.code).toBe(1);
    expect(missing.out).toContain("lacks mothership-aarch64");
  });
});
