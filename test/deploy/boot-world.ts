/**
 * Everything the boot script talks to, on loopback: a signed release (`build/release.ts` with a
 * throwaway OpenPGP key) served by a real mothership's /downloads and uploaded by the `aws` CLI into
 * s3rver buckets (one genuine, one with a tampered binary, one with a tampered SHA256SUMS), Secrets
 * Manager with the pool's token and key, and IMDSv2 handing out the instance's metadata and role
 * credentials. The mothership is started from the release directory, so it serves that release by default.
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, copyFileSync, linkSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DemoWorld, dist, repoRoot } from "../../scripts/demo/world.ts";
import { AWS_ACCESS_KEY, startImds, startS3, startSecretsManager, type Imds, type SecretsManager, type StandIn } from "../../scripts/testenv/aws-stand-ins.ts";

export const ARCH = process.arch === "arm64" ? "aarch64" : "x86_64";
export const LAUNCHER_NAME = `spacelift-launcher-${ARCH}`;
export const INSTANCE = { "instance-id": "i-0123456789abcdef0", "ami-id": "ami-0ead0234bef4f51b0", "placement/region": "eu-west-1", "tags/instance/aws:autoscaling:groupName": "spacelift-workers-ab12cd" };
/** A tampered binary: if anything ever executes it, it leaves this file behind. */
export const TAMPERED_MARKER = "/tmp/spacelift-boot-tampered-binary-ran";

function sh(cmd: string, args: string[], opts: { env?: Record<string, string>; input?: string; cwd?: string } = {}): string {
  const r = spawnSync(cmd, args, { encoding: "utf8", env: { ...process.env, ...opts.env }, input: opts.input, cwd: opts.cwd });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

export class BootWorld {
  world!: DemoWorld;
  s3!: StandIn;
  secrets!: SecretsManager;
  imds!: Imds;
  releaseDir = "";
  publicKey = "";
  key = "";
  readonly dir = mkdtempSync(join(tmpdir(), "boot-world-"));

  constructor(readonly dockerHost: string) {}

  async start(log: (m: string) => void): Promise<void> {
    const dir = this.dir;
    this.releaseDir = this.release(dir);
    this.world = new DemoWorld({ mothership: join(this.releaseDir, `mothership-${ARCH}`), launcher: join(this.releaseDir, LAUNCHER_NAME) }, this.dockerHost, log);
    await this.world.startMothership();
    await this.world.createPool("boot-script");
    this.key = readFileSync(join(this.world.dir, "spacelift.key"), "utf8");

    this.s3 = await startS3(join(dir, "s3"), ["genuine", "tampered-binary", "tampered-sums"]);
    await this.upload(dir);
    this.secrets = startSecretsManager();
    this.secrets.secrets.set("spacelift/pool-credentials", JSON.stringify({ SPACELIFT_TOKEN: this.world.token, SPACELIFT_POOL_PRIVATE_KEY: Buffer.from(this.key).toString("base64") }));
    this.secrets.secrets.set("spacelift/pool-credentials-pem", JSON.stringify({ SPACELIFT_TOKEN: this.world.token, SPACELIFT_POOL_PRIVATE_KEY: this.key }));
    const ca = readFileSync(join(this.world.data, "ca", "ca.crt"), "utf8");
    this.secrets.secrets.set("spacelift/ca-certs", Buffer.from(JSON.stringify({ caCertificates: [Buffer.from(ca).toString("base64")] })).toString("base64"));
    this.secrets.secrets.set("spacelift/userdata", '#!/bin/bash\nset -eu\necho "SPACELIFT_METADATA_custom=from-user-data" >>"$LAUNCHER_ENV_FILE"\ntouch /etc/spacelift/custom-user-data-ran\n');
    this.imds = startImds(INSTANCE);
  }

  /** `build/release.ts` over the built binaries (linked into a temp dir), signed with a fresh key. */
  private release(dir: string): string {
    const home = join(dir, "gnupg");
    mkdirSync(home, { mode: 0o700 });
    sh("gpg", ["--homedir", home, "--batch", "--passphrase", "", "--quick-gen-key", "Boot Test Release <release@example.invalid>", "ed25519", "sign", "never"]);
    const secretKey = sh("gpg", ["--homedir", home, "--batch", "--armor", "--export-secret-keys"]);
    this.publicKey = sh("gpg", ["--homedir", home, "--batch", "--armor", "--export"]);
    spawnSync("gpgconf", ["--homedir", home, "--kill", "gpg-agent"]);
    const from = join(dir, "built");
    mkdirSync(from);
    for (const name of ["mothership-aarch64", "mothership-x86_64", "spacelift-launcher-aarch64", "spacelift-launcher-x86_64"]) linkSync(join(dist, name), join(from, name));
    const out = join(dir, "release");
    sh(process.execPath, [join(repoRoot, "build/release.ts"), "--from", from, "--out", out], { env: { RELEASE_GPG_KEY: secretKey } });
    return out;
  }

  /**
   * The operator's upload (`aws s3 cp --recursive`) into the genuine bucket, and two bad copies. The CLI
   * runs as a child process that this one must keep serving (s3rver lives here): never spawnSync.
   */
  private async upload(dir: string): Promise<void> {
    const cp = async (from: string, to: string): Promise<void> => {
      const args = ["s3", "cp", "--no-progress", "--endpoint-url", this.s3.url, ...(from.endsWith("/") ? ["--recursive"] : []), from, to];
      const proc = Bun.spawn(["aws", ...args], { env: { ...process.env, ...this.awsEnv() }, stdout: "ignore", stderr: "pipe" });
      const [stderr, code] = await Promise.all([new Response(proc.stderr).text(), proc.exited]);
      if (code !== 0) throw new Error(`aws ${args.join(" ")} failed (${code}): ${stderr}`);
    };
    const files = join(dir, "upload");
    mkdirSync(files);
    for (const name of [LAUNCHER_NAME, "SHA256SUMS", "SHA256SUMS.asc"]) copyFileSync(join(this.releaseDir, name), join(files, name));
    await cp(`${files}/`, "s3://genuine/");
    // The same release with another binary under the launcher's name: a script that marks that it ran.
    const tampered = join(dir, "tampered");
    writeFileSync(tampered, `#!/bin/sh\ntouch ${TAMPERED_MARKER}\n`);
    chmodSync(tampered, 0o755);
    await cp(`${files}/`, "s3://tampered-binary/");
    await cp(tampered, `s3://tampered-binary/${LAUNCHER_NAME}`);
    // A SHA256SUMS rewritten to match the tampered binary (its signature is the genuine one's).
    const sums = readFileSync(join(files, "SHA256SUMS"), "utf8").replace(/^[0-9a-f]{64}(?=  spacelift-launcher-)/gm, createHash("sha256").update(readFileSync(tampered)).digest("hex"));
    writeFileSync(join(dir, "SHA256SUMS.tampered"), sums);
    await cp(`${files}/`, "s3://tampered-sums/");
    await cp(tampered, `s3://tampered-sums/${LAUNCHER_NAME}`);
    await cp(join(dir, "SHA256SUMS.tampered"), "s3://tampered-sums/SHA256SUMS");
  }

  /** The test's own CLI calls use the static key; the boot script gets its credentials from IMDS. */
  awsEnv(): Record<string, string> {
    return { AWS_ACCESS_KEY_ID: AWS_ACCESS_KEY, AWS_SECRET_ACCESS_KEY: "S3RVER", AWS_DEFAULT_REGION: "eu-west-1", AWS_EC2_METADATA_DISABLED: "true" };
  }

  /** The environment the boot script runs in: no AWS keys, only the instance metadata service. */
  bootEnv(): Record<string, string> {
    return { AWS_EC2_METADATA_SERVICE_ENDPOINT: `${this.imds.url}/`, AWS_CONFIG_FILE: "/dev/null", AWS_SHARED_CREDENTIALS_FILE: "/dev/null" };
  }

  /** The settings every scenario shares (the CloudFormation parameters' variables). */
  settings(extra: Record<string, string>): Record<string, string> {
    return {
      SECRET_NAME: "spacelift/pool-credentials",
      IMDS_ENDPOINT: this.imds.url,
      S3_ENDPOINT_URL: this.s3.url,
      SECRETS_MANAGER_ENDPOINT_URL: this.secrets.url,
      ...extra,
    };
  }

  /** The mothership's API URL (https, its CA's certificate), from its data dir. */
  httpUrl(): string {
    return (JSON.parse(readFileSync(join(this.world.data, "endpoint.json"), "utf8")) as { http_url: string }).http_url;
  }

  sha256(path: string): string {
    return createHash("sha256").update(readFileSync(path)).digest("hex");
  }

  async close(): Promise<void> {
    await this.s3?.stop().catch(() => {});
    await this.secrets?.stop();
    await this.imds?.stop();
    await this.world?.close();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
