/**
 * The operator's extra CA certificates (SPACELIFT_ADDITIONAL_CA_CERTIFICATES[_FILE]) for run
 * containers, so that git, curl, Terraform providers and the like inside a run trust a private VCS or
 * registry behind a corporate CA. Written at launcher start into `<scratch>/ca-certificates/` and
 * mounted read-only at RUN_CA_MOUNT in every run:
 *
 * - `additional-ca-certificates.pem`: the extra CAs alone, for tools that ADD a file to their own
 *   store (`NODE_EXTRA_CA_CERTS`).
 * - `ca-bundle.pem`: the public roots this launcher trusts (Mozilla's list, as the runtime ships it)
 *   followed by the extra CAs, for tools whose variable REPLACES their store (`SSL_CERT_FILE`,
 *   `GIT_SSL_CAINFO`, `CURL_CA_BUNDLE`, `REQUESTS_CA_BUNDLE`, `AWS_CA_BUNDLE`): pointing those at the
 *   extra CAs alone would break every public TLS connection of the run.
 *
 * A run's own variable of the same name, or one the operator passes with SPACELIFT_WHITELIST_ENVS,
 * wins over these.
 */
import { chmod, mkdir, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { rootCertificates } from "node:tls";

/** Where the files appear inside run containers. */
export const RUN_CA_MOUNT = "/opt/spacelift-ca";
const EXTRA_FILE = "additional-ca-certificates.pem";
const BUNDLE_FILE = "ca-bundle.pem";

export function runCaHostDir(scratchDir: string): string {
  return join(scratchDir, "ca-certificates");
}

/** The variables a run gets when extra CAs are configured (README: Private CAs). */
export function runCaEnvironment(): Record<string, string> {
  const bundle = `${RUN_CA_MOUNT}/${BUNDLE_FILE}`;
  return {
    SSL_CERT_FILE: bundle,
    GIT_SSL_CAINFO: bundle,
    CURL_CA_BUNDLE: bundle,
    REQUESTS_CA_BUNDLE: bundle,
    AWS_CA_BUNDLE: bundle,
    NODE_EXTRA_CA_CERTS: `${RUN_CA_MOUNT}/${EXTRA_FILE}`,
  };
}

/**
 * Writes both files (readable by any user of the image: they are public certificates), replacing
 * what an earlier start left; removes the directory when there are no extra CAs.
 */
export async function writeRunCaFiles(scratchDir: string, pems: readonly string[]): Promise<void> {
  const dir = runCaHostDir(scratchDir);
  if (pems.length === 0) {
    await rm(dir, { recursive: true, force: true });
    return;
  }
  const extra = pems.map((pem) => (pem.endsWith("\n") ? pem : `${pem}\n`)).join("");
  const bundle = rootCertificates.map((pem) => `${pem}\n`).join("") + extra;
  await mkdir(dir, { recursive: true, mode: 0o755 });
  await chmod(dir, 0o755);
  for (const [name, text] of [[EXTRA_FILE, extra], [BUNDLE_FILE, bundle]] as const) {
    const temp = join(dir, `.${name}.${process.pid}`);
    await writeFile(temp, text, { mode: 0o644 });
    await chmod(temp, 0o644);
    await rename(temp, join(dir, name));
  }
}
