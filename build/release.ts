/**
 * `make release`: builds every binary (build/build.ts), copies them into a release directory with a
 * fresh SHA256SUMS and signs it: SHA256SUMS.asc is a detached, armored OpenPGP signature made by
 * Debian's `gpg` with the key in RELEASE_GPG_KEY (an armored private key; RELEASE_GPG_PASSPHRASE if it
 * has one), imported into a throwaway GNUPGHOME that is removed afterwards. The public half is written
 * beside it as release-key.asc, for operators to get through a channel they trust (docs/deploy/releases.md).
 *
 *   bun build/release.ts [--out DIR] [--from DIR]
 *     --out   the release directory (default dist/release); `mothership serve --downloads DIR` serves it
 *     --from  take the binaries already in DIR instead of building (default: build into dist/)
 */
import { spawnSync, type SpawnSyncReturns } from "node:child_process";
import { createHash } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const root = join(import.meta.dir, "..");
const BINARIES = ["mothership-aarch64", "mothership-x86_64", "spacelift-launcher-aarch64", "spacelift-launcher-x86_64"];

class ReleaseError extends Error {}
function fail(message: string): never {
  throw new ReleaseError(message);
}

function option(argv: string[], name: string): string | undefined {
  const i = argv.indexOf(`--${name}`);
  if (i < 0) return undefined;
  const value = argv[i + 1];
  if (!value || value.startsWith("--")) fail(`--${name} needs a directory`);
  return value;
}

/**
 * gpg with a private home, never asking a terminal: the key goes to stdin and the passphrase (empty when
 * none) is read from a 0600 file in that home, so neither is ever on argv.
 */
function gpg(home: string, args: string[], input?: string): SpawnSyncReturns<string> {
  const passphrase = ["--pinentry-mode", "loopback", "--passphrase-file", join(home, "passphrase")];
  return spawnSync("gpg", ["--homedir", home, "--batch", "--no-tty", "--quiet", ...passphrase, ...args], { input, encoding: "utf8", timeout: 120_000 });
}

function release(argv: string[]): void {
  const out = resolve(option(argv, "out") ?? join(root, "dist", "release"));
  const from = option(argv, "from");
  const secretKey = process.env.RELEASE_GPG_KEY ?? "";
  if (!secretKey.includes("BEGIN PGP PRIVATE KEY BLOCK")) {
    fail("RELEASE_GPG_KEY must hold the armored OpenPGP private key that signs releases (gpg --armor --export-secret-keys KEYID)");
  }
  if (spawnSync("gpg", ["--version"]).status !== 0) fail("gpg is not installed; apt-get install gpg");

  if (from === undefined) {
    const built = spawnSync(process.execPath, [join(root, "build", "build.ts")], { cwd: root, stdio: "inherit" });
    if (built.status !== 0) fail("the build failed");
  }
  const source = resolve(from ?? join(root, "dist"));
  const missing = BINARIES.filter((name) => !existsSync(join(source, name)));
  if (missing.length > 0) fail(`${source} lacks ${missing.join(", ")}; run make build or give --from DIR`);

  mkdirSync(out, { recursive: true });
  const sums: string[] = [];
  for (const name of BINARIES) {
    // Copies, never links: a release must not change when dist/ is rebuilt.
    copyFileSync(join(source, name), join(out, name));
    sums.push(`${createHash("sha256").update(readFileSync(join(out, name))).digest("hex")}  ${name}`);
  }
  writeFileSync(join(out, "SHA256SUMS"), sums.join("\n") + "\n");

  const home = mkdtempSync(join(tmpdir(), "release-gnupg-"));
  try {
    writeFileSync(join(home, "passphrase"), process.env.RELEASE_GPG_PASSPHRASE ?? "", { mode: 0o600 });
    const imported = gpg(home, ["--import"], secretKey);
    if (imported.status !== 0) fail(`RELEASE_GPG_KEY could not be imported: ${imported.stderr.trim()}`);
    const listed = gpg(home, ["--list-secret-keys", "--with-colons"]).stdout;
    const fingerprint = /^fpr:(?:[^:]*:){8}([0-9A-F]{40,64}):/m.exec(listed)?.[1];
    if (!fingerprint) fail("RELEASE_GPG_KEY holds no secret key");
    const signed = gpg(home, ["--yes", "--armor", "--local-user", fingerprint, "--output", join(out, "SHA256SUMS.asc"), "--detach-sign", join(out, "SHA256SUMS")]);
    if (signed.status !== 0) fail(`signing SHA256SUMS failed: ${signed.stderr.trim()}`);
    const exported = gpg(home, ["--armor", "--export", fingerprint]);
    writeFileSync(join(out, "release-key.asc"), exported.stdout);
    console.log(`release in ${out}: ${BINARIES.join(", ")}, SHA256SUMS, SHA256SUMS.asc (key ${fingerprint}), release-key.asc`);
  } finally {
    // The agent gpg started for this home goes with it.
    spawnSync("gpgconf", ["--homedir", home, "--kill", "gpg-agent"]);
    rmSync(home, { recursive: true, force: true });
  }
}

try {
  release(process.argv.slice(2));
} catch (err) {
  if (!(err instanceof ReleaseError)) throw err;
  console.error(`release: ${err.message}`);
  process.exit(1);
}
