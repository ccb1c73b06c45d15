import "reflect-metadata";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import * as x509 from "@peculiar/x509";
import { readFileSync } from "node:fs";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { issuePoolCertificate, issueServerCertificate, loadOrCreateCa } from "../../../src/pki/ca.ts";
import { verifyCsr } from "../../../src/pki/csr.ts";
import { normalizeSerial } from "../../../src/pki/der.ts";
import { hasCode } from "../../../src/errors.ts";
import { makeKeyAndCsr } from "../protocol/fixtures.ts";

let dir = "";
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "pki-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function opensslCsr(args: string[]): string {
  const key = join(dir, `k${Math.random()}.key`);
  const csr = join(dir, `c${Math.random()}.csr`);
  const r = Bun.spawnSync(["openssl", "req", "-new", ...args, "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=operator"], { stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(r.stderr.toString());
  return readFileSync(csr, "utf8");
}

describe("CA", () => {
  test("created once, then loaded with the same certificate; key file is private", async () => {
    const a = await loadOrCreateCa(join(dir, "ca"));
    const b = await loadOrCreateCa(join(dir, "ca"));
    expect(b.certificatePem).toBe(a.certificatePem);
    expect((await stat(join(dir, "ca", "ca.key"))).mode & 0o077).toBe(0);
    const bc = a.certificate.getExtension(x509.BasicConstraintsExtension);
    expect(bc?.ca).toBe(true);
    expect(await a.certificate.verify({ signatureOnly: true })).toBe(true);
  });

  test("pool certificate: signed by the CA, client-auth EKU, CN and SAN name the pool, serial recorded", async () => {
    const ca = await loadOrCreateCa(join(dir, "ca"));
    const csr = await verifyCsr(opensslCsr(["-newkey", "rsa:2048"]));
    expect(csr.keyType).toBe("RSA");
    const issued = await issuePoolCertificate(ca, "01JPOOLAAAAAAAAAAAAAAAAAAA", csr.publicKey);
    const cert = new x509.X509Certificate(issued.pem);
    expect(await cert.verify({ publicKey: ca.certificate.publicKey, signatureOnly: true })).toBe(true);
    expect(cert.subject).toContain("CN=01JPOOLAAAAAAAAAAAAAAAAAAA");
    expect(cert.getExtension(x509.ExtendedKeyUsageExtension)?.usages).toEqual([x509.ExtendedKeyUsage.clientAuth]);
    expect(JSON.stringify(cert.getExtension(x509.SubjectAlternativeNameExtension)?.names.toJSON())).toContain("urn:spacelift:pool:01JPOOLAAAAAAAAAAAAAAAAAAA");
    expect(normalizeSerial(cert.serialNumber)).toBe(issued.serial);
    expect(Buffer.from(cert.publicKey.rawData).equals(Buffer.from(csr.publicKey.rawData))).toBe(true);
    // openssl agrees that the chain verifies for client use.
    const caFile = join(dir, "ca", "ca.crt");
    const leaf = join(dir, "leaf.crt");
    await Bun.write(leaf, issued.pem);
    const r = Bun.spawnSync(["openssl", "verify", "-purpose", "sslclient", "-CAfile", caFile, leaf], { stderr: "pipe" });
    expect(r.stdout.toString()).toContain(": OK");
  });

  test("server certificate covers loopback and the configured host", async () => {
    const ca = await loadOrCreateCa(join(dir, "ca"));
    const s = await issueServerCertificate(ca, ["mothership.example.com", "10.1.2.3"]);
    const cert = new x509.X509Certificate(s.certificatePem);
    const names = JSON.stringify(cert.getExtension(x509.SubjectAlternativeNameExtension)?.names.toJSON());
    for (const n of ["127.0.0.1", "localhost", "mothership.example.com", "10.1.2.3"]) expect(names).toContain(n);
    expect(s.keyPem).toContain("BEGIN PRIVATE KEY");
    expect(await readFile(join(dir, "ca", "ca.crt"), "utf8")).toBe(ca.certificatePem);
  });
});

describe("CSR verification", () => {
  test("accepts openssl EC P-256 and in-process P-384 requests", async () => {
    expect((await verifyCsr(opensslCsr(["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]))).keySize).toBe("P-256");
    expect((await verifyCsr((await makeKeyAndCsr("p384")).csrPem)).keyType).toBe("EC");
  });

  test("refuses a request whose signature does not match (one flipped bit in the signature)", async () => {
    const pem = (await makeKeyAndCsr("rsa")).csrPem;
    const der = Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ""), "base64");
    der[der.length - 5]! ^= 0x01;
    const forged = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString("base64")}\n-----END CERTIFICATE REQUEST-----\n`;
    let err: unknown;
    try {
      await verifyCsr(forged);
    } catch (e) {
      err = e;
    }
    expect(hasCode(err, "csr-signature-invalid")).toBe(true);
  });

  test.each([
    ["not PEM", "hello", "csr-malformed"],
    ["PEM garbage", "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n", "csr-malformed"],
  ])("%s -> %s", async (_n, pem, code) => {
    let err: unknown;
    try {
      await verifyCsr(pem);
    } catch (e) {
      err = e;
    }
    expect(hasCode(err, code)).toBe(true);
  });

  test("refuses RSA keys under 2048 bits", async () => {
    let err: unknown;
    try {
      await verifyCsr(opensslCsr(["-newkey", "rsa:1024"]));
    } catch (e) {
      err = e;
    }
    expect(hasCode(err, "csr-key-unsupported")).toBe(true);
  });
});
