// A valid launcher environment for the configuration tests, and helpers to load variants of it.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError, formatProblem, loadLauncherConfig, type ConfigProblem } from "../../../src/config/launcher-config.ts";
import { b64, DAY, makeCertificate, makeCredentials, makeKey, NOW, tokenJson } from "./pki-fixtures.ts";

export type Env = Record<string, string | undefined>;

export interface Fixture {
  /** token + key (RSA, PKCS#1, base64), certificate valid around NOW, token with a broker. */
  readonly base: Env;
  readonly dir: string;
  readonly policy: string;
  readonly dockerConfigDir: string;
  readonly token: string;
  readonly keyB64: string;
  readonly keyPem: string;
  /** Variants for the cross checks. */
  readonly otherKeyB64: string;
  readonly expiredToken: string;
  readonly futureToken: string;
  readonly noBrokerToken: string;
  readonly certificate: string;
  readonly ca: string;
  cleanup(): void;
}

export async function makeFixture(): Promise<Fixture> {
  const creds = await makeCredentials("rsa");
  const other = await makeKey("rsa");
  const tokenWith = (certificate: string, overrides: Record<string, unknown> = {}) =>
    b64(JSON.stringify(tokenJson(certificate, creds.ca, overrides)));
  const expiredCert = await makeCertificate(creds.key, new Date(NOW.getTime() - 30 * DAY), new Date(NOW.getTime() - DAY));
  const futureCert = await makeCertificate(creds.key, new Date(NOW.getTime() + DAY), new Date(NOW.getTime() + 30 * DAY));
  const dir = mkdtempSync(join(tmpdir(), "launcher-config-"));
  const policy = join(dir, "init.rego");
  writeFileSync(policy, "package spacelift\n");
  const dockerConfigDir = join(dir, "docker");
  mkdirSync(dockerConfigDir);
  writeFileSync(join(dockerConfigDir, "config.json"), "{}");
  return {
    base: { SPACELIFT_TOKEN: creds.token, SPACELIFT_POOL_PRIVATE_KEY: creds.keyB64, PATH: "/usr/bin", HOME: "/root" },
    dir,
    policy,
    dockerConfigDir,
    token: creds.token,
    keyB64: creds.keyB64,
    keyPem: creds.key.traditional,
    otherKeyB64: b64(other.pkcs8),
    expiredToken: tokenWith(expiredCert),
    futureToken: tokenWith(futureCert),
    noBrokerToken: tokenWith(creds.certificate, { broker: undefined }),
    certificate: creds.certificate,
    ca: creds.ca,
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** Load with a fixed clock; returns the problems (empty when the configuration is valid). */
export function problemsOf(env: Env, opts: { requireCredentials?: boolean } = {}): ConfigProblem[] {
  try {
    loadLauncherConfig(env, { ...opts, now: NOW });
    return [];
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return [...err.problems];
  }
}

export function lines(problems: readonly ConfigProblem[]): string[] {
  return problems.map(formatProblem);
}
