/**
 * A CA in a temp dir and a pool CSR, made once per test file: what the control-plane and API tests need to
 * create real pools (real certificates, so run encryption and pool checks are the real ones).
 */
import "reflect-metadata";
import { afterAll, beforeAll } from "bun:test";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadOrCreateCa, type CertificateAuthority } from "../../../src/pki/ca.ts";
import { makeKeyAndCsr } from "../protocol/fixtures.ts";

export interface TestCa {
  readonly ca: CertificateAuthority;
  readonly csrPem: string;
}

/** Registers the file's beforeAll/afterAll; read `ca` and `csrPem` inside tests or hooks. */
export function useTestCa(prefix: string): TestCa {
  let dir = "";
  let ca: CertificateAuthority | undefined;
  let csrPem = "";
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), `${prefix}-`));
    ca = await loadOrCreateCa(join(dir, "ca"));
    csrPem = (await makeKeyAndCsr("p256")).csrPem;
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  return {
    get ca() {
      if (!ca) throw new Error("useTestCa: the CA is made in beforeAll; read it inside a test or hook");
      return ca;
    },
    get csrPem() {
      return csrPem;
    },
  };
}
