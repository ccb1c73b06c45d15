import { describe, expect, test } from "bun:test";
import { makeKeyAndCsr, sampleRunSpec, type KeyKind } from "./fixtures.ts";
import { loadOrCreateCa, issuePoolCertificate, type CertificateAuthority } from "../../../src/pki/ca.ts";
import { verifyCsr } from "../../../src/pki/csr.ts";
import { certificateParseCount, decryptRun, encryptRun, importRunDecryptionKey } from "../../../src/protocol/envelope.ts";
import { hasCode } from "../../../src/errors.ts";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

async function withCa<T>(fn: (ca: CertificateAuthority) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), "envelope-"));
  try {
    return await fn(await loadOrCreateCa(dir));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function poolFor(ca: CertificateAuthority, kind: KeyKind): Promise<{ certPem: string; key: CryptoKey }> {
  const { csrPem, pkcs8 } = await makeKeyAndCsr(kind);
  const csr = await verifyCsr(csrPem);
  const cert = await issuePoolCertificate(ca, "01JPOOL0000000000000000000", csr.publicKey);
  return { certPem: cert.pem, key: await importRunDecryptionKey(pkcs8) };
}

function header(jwe: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(jwe.split(".")[0] ?? "", "base64url").toString("utf8")) as Record<string, unknown>;
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error("expected a rejection");
}

describe("JWE envelope", () => {
  for (const [kind, alg] of [["rsa", "RSA-OAEP-256"], ["p256", "ECDH-ES+A256KW"], ["p384", "ECDH-ES+A256KW"]] as const) {
    test(`${kind}: round trip with alg ${alg}, A256GCM`, async () => {
      await withCa(async (ca) => {
        const pool = await poolFor(ca, kind);
        const spec = sampleRunSpec();
        const jwe = await encryptRun(spec, pool.certPem);
        expect(jwe.split(".")).toHaveLength(5);
        expect(header(jwe)).toMatchObject({ alg, enc: "A256GCM" });
        expect(jwe).not.toContain("s3cr3t");
        expect(await decryptRun(jwe, pool.key)).toEqual(spec);
      });
    });
  }

  test("two encryptions of the same run differ (fresh CEK and IV)", async () => {
    await withCa(async (ca) => {
      const pool = await poolFor(ca, "p256");
      const spec = sampleRunSpec();
      expect(await encryptRun(spec, pool.certPem)).not.toBe(await encryptRun(spec, pool.certPem));
    });
  });

  test("a pool certificate is parsed once for many runs; a new certificate (pool reset) is parsed again", async () => {
    await withCa(async (ca) => {
      const first = await poolFor(ca, "p256");
      const before = certificateParseCount();
      const jwes = await Promise.all(Array.from({ length: 50 }, () => encryptRun(sampleRunSpec(), first.certPem)));
      expect(certificateParseCount() - before).toBe(1);
      for (const jwe of jwes.slice(0, 3)) expect(await decryptRun(jwe, first.key)).toEqual(sampleRunSpec());
      const reset = await poolFor(ca, "p256");
      const jwe = await encryptRun(sampleRunSpec(), reset.certPem);
      expect(certificateParseCount() - before).toBe(2);
      expect(await decryptRun(jwe, reset.key)).toEqual(sampleRunSpec());
      // A certificate that cannot be parsed fails every time; it is not kept as a cached failure.
      const bad = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
      expect(hasCode(await rejection(encryptRun(sampleRunSpec(), bad)), "envelope-unsupported")).toBe(true);
      expect(hasCode(await rejection(encryptRun(sampleRunSpec(), bad)), "envelope-unsupported")).toBe(true);
      expect(certificateParseCount() - before).toBe(4);
    });
  });

  test("one changed byte in any part is detected", async () => {
    await withCa(async (ca) => {
      const pool = await poolFor(ca, "rsa");
      const jwe = await encryptRun(sampleRunSpec(), pool.certPem);
      const parts = jwe.split(".");
      for (const i of [1, 3, 4]) {
        const bytes = Buffer.from(parts[i] ?? "", "base64url");
        bytes[Math.floor(bytes.length / 2)]! ^= 0x01;
        const tampered = parts.map((p, j) => (j === i ? bytes.toString("base64url") : p)).join(".");
        const err = await rejection(decryptRun(tampered, pool.key));
        expect(hasCode(err, "envelope-decrypt-failed")).toBe(true);
      }
      // The protected header is authenticated data: changing it (here: an added field) fails too.
      const h = { ...header(jwe), kid: "x" };
      const forged = [Buffer.from(JSON.stringify(h)).toString("base64url"), ...parts.slice(1)].join(".");
      expect(hasCode(await rejection(decryptRun(forged, pool.key)), "envelope-decrypt-failed")).toBe(true);
    });
  });

  test("another pool's key cannot decrypt", async () => {
    await withCa(async (ca) => {
      for (const kind of ["rsa", "p256"] as const) {
        const a = await poolFor(ca, kind);
        const b = await poolFor(ca, kind);
        const jwe = await encryptRun(sampleRunSpec(), a.certPem);
        expect(hasCode(await rejection(decryptRun(jwe, b.key)), "envelope-decrypt-failed")).toBe(true);
      }
    });
  });

  test("key of the wrong type and malformed input are distinct errors", async () => {
    await withCa(async (ca) => {
      const rsa = await poolFor(ca, "rsa");
      const ec = await poolFor(ca, "p256");
      const p384 = await poolFor(ca, "p384");
      const jwe = await encryptRun(sampleRunSpec(), rsa.certPem);
      expect(hasCode(await rejection(decryptRun(jwe, ec.key)), "envelope-key-mismatch")).toBe(true);
      const ecJwe = await encryptRun(sampleRunSpec(), ec.certPem);
      expect(hasCode(await rejection(decryptRun(ecJwe, p384.key)), "envelope-key-mismatch")).toBe(true);
      expect(hasCode(await rejection(decryptRun("a.b.c", rsa.key)), "envelope-malformed")).toBe(true);
      expect(hasCode(await rejection(decryptRun("!!.a.b.c.d", rsa.key)), "envelope-malformed")).toBe(true);
      const noneAlg = [Buffer.from('{"alg":"dir","enc":"A256GCM"}').toString("base64url"), ...jwe.split(".").slice(1)].join(".");
      expect(hasCode(await rejection(decryptRun(noneAlg, rsa.key)), "envelope-unsupported")).toBe(true);
    });
  });
});

test("Concat KDF matches the RFC 7518 appendix C example", async () => {
  const { concatKdf } = await import("../../../src/protocol/envelope.ts");
  const z = new Uint8Array([158, 86, 217, 29, 129, 113, 53, 211, 114, 131, 66, 131, 191, 132, 38, 156, 251, 49, 110, 163, 218, 128, 106, 72, 246, 218, 167, 121, 140, 254, 144, 196]);
  const key = await concatKdf(z, "A128GCM", new TextEncoder().encode("Alice"), new TextEncoder().encode("Bob"), 128);
  expect(Buffer.from(key).toString("base64url")).toBe("VqqN6vgjbSBcIijNcacQGg");
});
