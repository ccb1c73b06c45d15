import { beforeAll, describe, expect, test } from "bun:test";
import { createPublicKey, createSign, createVerify, generateKeyPairSync } from "node:crypto";
import { hasCode } from "../../../src/errors.ts";
import { decodePrivateKey, PrivateKeyError } from "../../../src/pki/keys.ts";
import { b64, leaks, makeKey, type TestKey } from "../config/pki-fixtures.ts";

let rsa: TestKey;
let ec: TestKey;
beforeAll(async () => {
  [rsa, ec] = await Promise.all([makeKey("rsa"), makeKey("ec")]);
});

/** The error a value gives; asserts that the message carries no part of the value. */
function failure(value: string, secret = value): PrivateKeyError {
  try {
    decodePrivateKey(value);
  } catch (err) {
    expect(err).toBeInstanceOf(PrivateKeyError);
    const e = err as PrivateKeyError;
    expect(e.message).not.toContain("\n");
    expect(leaks(e.message, secret)).toBe(false);
    expect(leaks(String(e.stack), secret)).toBe(false);
    return e;
  }
  throw new Error("expected decodePrivateKey to throw");
}

function rsaOrEc(type: "rsa" | "ec") {
  return type === "rsa" ? rsa.keyObject : ec.keyObject;
}

describe("accepted encodings", () => {
  test.each([
    ["RSA PKCS#8", () => rsa.pkcs8, "rsa", "pkcs8", "RSA 2048"],
    ["RSA PKCS#1", () => rsa.traditional, "rsa", "pkcs1", "RSA 2048"],
    ["EC P-256 PKCS#8", () => ec.pkcs8, "ec", "pkcs8", "EC P-256"],
    ["EC P-256 SEC1", () => ec.traditional, "ec", "sec1", "EC P-256"],
  ] as const)("%s, base64 of the PEM and the raw PEM", (_name, pem, type, format, description) => {
    for (const value of [b64(pem()), pem(), b64(pem()).replace(/(.{76})/g, "$1\n")]) {
      const key = decodePrivateKey(value);
      expect(key.type).toBe(type);
      expect(key.format).toBe(format);
      expect(key.description).toBe(description);
      // Usable with node:crypto: sign with the decoded key, verify with the original public key.
      const sig = createSign("sha256").update("hello").sign(key.keyObject);
      expect(createVerify("sha256").update("hello").verify(createPublicKey(rsaOrEc(type)), sig)).toBe(true);
      // The PEM for TLS is PKCS#8, whatever came in.
      expect(key.pem.startsWith("-----BEGIN PRIVATE KEY-----")).toBe(true);
      expect(key.spki.equals(createPublicKey(rsaOrEc(type)).export({ type: "spki", format: "der" }))).toBe(true);
    }
  });

  test("P-384 keys work too", async () => {
    const p384 = await makeKey("ec", "P-384");
    expect(decodePrivateKey(b64(p384.traditional)).description).toBe("EC P-384");
  });

  test("a SEC1 file from `openssl ecparam -genkey` (EC PARAMETERS block first)", () => {
    const pem = "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n" + ec.traditional;
    expect(decodePrivateKey(b64(pem)).format).toBe("sec1");
  });

  test("pasted PEM with CRLF, with spaces for newlines, or with literal \\n escapes", () => {
    expect(decodePrivateKey(rsa.pkcs8.replace(/\n/g, "\r\n")).type).toBe("rsa");
    expect(decodePrivateKey(rsa.pkcs8.replace(/\n/g, " ")).type).toBe("rsa");
    expect(decodePrivateKey(rsa.pkcs8.replace(/\n/g, "\\n")).type).toBe("rsa");
  });

  test("the decoded key is usable by WebCrypto", async () => {
    const key = decodePrivateKey(b64(ec.traditional));
    const der = key.keyObject.export({ type: "pkcs8", format: "der" });
    const imported = await crypto.subtle.importKey("pkcs8", der, { name: "ECDSA", namedCurve: "P-256" }, false, ["sign"]);
    const sig = await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, imported, new TextEncoder().encode("x"));
    expect(await crypto.subtle.verify({ name: "ECDSA", hash: "SHA-256" }, ec.keys.publicKey, sig, new TextEncoder().encode("x"))).toBe(true);
  });

  test("the key never serializes", () => {
    const key = decodePrivateKey(b64(rsa.pkcs8));
    const json = JSON.stringify({ key });
    expect(json).toContain("redacted");
    expect(leaks(json, rsa.pkcs8)).toBe(false);
    expect(leaks(Bun.inspect(key), rsa.pkcs8)).toBe(false);
  });
});

describe("each failure kind has its own code and never echoes the key", () => {
  test("empty", () => {
    expect(failure("  ").code).toBe("key-empty");
  });

  test("not base64", () => {
    const e = failure("this is not base64 at all!");
    expect(e.code).toBe("key-not-base64");
    expect(e.message).toContain("base64 -w 0 spacelift.key");
  });

  test("base64 but no PEM block (e.g. base64 of DER)", () => {
    const der = rsa.keyObject.export({ type: "pkcs8", format: "der" }).toString("base64");
    expect(failure(der, rsa.pkcs8).code).toBe("key-no-pem");
    expect(failure(b64("hello world, no key here")).code).toBe("key-no-pem");
  });

  test("unsupported type: a CSR, a certificate, a public key, OpenSSH, Ed25519, small RSA, P-224", () => {
    const csr = "-----BEGIN CERTIFICATE REQUEST-----\nMIIBAA==\n-----END CERTIFICATE REQUEST-----\n";
    expect(failure(b64(csr)).message).toContain("a CSR (spacelift.csr) was given instead of the key");
    const pub = createPublicKey(rsa.keyObject).export({ type: "spki", format: "pem" }).toString();
    expect(failure(b64(pub)).message).toContain("a public key was given");
    const ssh = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n";
    expect(failure(b64(ssh)).message).toContain("OpenSSH-format key is not supported");
    const ed = generateKeyPairSync("ed25519").privateKey.export({ type: "pkcs8", format: "pem" }).toString();
    expect(failure(b64(ed)).message).toContain("RSA or EC only");
    const small = generateKeyPairSync("rsa", { modulusLength: 1024 }).privateKey.export({ type: "pkcs8", format: "pem" }).toString();
    expect(failure(b64(small)).message).toContain("RSA 1024, shorter than 2048 bits");
    const k1 = generateKeyPairSync("ec", { namedCurve: "secp224r1" }).privateKey.export({ type: "pkcs8", format: "pem" }).toString();
    expect(failure(b64(k1)).message).toContain("unsupported EC curve");
    for (const pem of [csr, pub, ssh, ed, small, k1]) expect(failure(b64(pem)).code).toBe("key-unsupported");
  });

  test("encrypted keys (PKCS#8 and legacy Proc-Type) tell the operator to use -nodes", () => {
    const enc8 = rsa.keyObject.export({ type: "pkcs8", format: "pem", cipher: "aes-256-cbc", passphrase: "pw" }).toString();
    const enc1 = rsa.keyObject.export({ type: "pkcs1", format: "pem", cipher: "aes-256-cbc", passphrase: "pw" }).toString();
    expect(enc1).toContain("Proc-Type: 4,ENCRYPTED");
    for (const pem of [enc8, enc1]) {
      const e = failure(b64(pem));
      expect(e.code).toBe("key-encrypted");
      expect(e.message).toContain("-nodes");
      expect(hasCode(e, "key-encrypted")).toBe(true);
    }
  });

  test("a damaged key block", () => {
    const lines = rsa.pkcs8.split("\n");
    const damaged = [lines[0], ...lines.slice(1, 6), lines.at(-2), ""].join("\n");
    const e = failure(b64(damaged), rsa.pkcs8);
    expect(e.code).toBe("key-corrupt");
    expect(e.message).toContain("could not be parsed");
  });
});
