// Cross checks between the pool key and the token's certificate.
import { beforeAll, expect, test } from "bun:test";
import { checkCertificateWindow, checkKeyMatchesCertificate } from "../../../src/pki/credentials.ts";
import { decodePrivateKey } from "../../../src/pki/keys.ts";
import { b64, DAY, makeCertificate, makeKey, NOW, type TestKey } from "../config/pki-fixtures.ts";

let rsa: TestKey;
let ec: TestKey;
let other: TestKey;
let rsaCert = "";
let ecCert = "";
beforeAll(async () => {
  [rsa, ec, other] = await Promise.all([makeKey("rsa"), makeKey("ec"), makeKey("rsa")]);
  rsaCert = await makeCertificate(rsa, new Date(NOW.getTime() - DAY), new Date(NOW.getTime() + DAY));
  ecCert = await makeCertificate(ec, new Date(NOW.getTime() - DAY), new Date(NOW.getTime() + DAY));
});

test("the key the certificate was issued for matches, in every encoding", () => {
  for (const pem of [rsa.pkcs8, rsa.traditional]) expect(checkKeyMatchesCertificate(decodePrivateKey(b64(pem)), rsaCert)).toBeUndefined();
  for (const pem of [ec.pkcs8, ec.traditional]) expect(checkKeyMatchesCertificate(decodePrivateKey(b64(pem)), ecCert)).toBeUndefined();
});

test("another key (same type or not) is a key-certificate-mismatch", () => {
  for (const [key, cert] of [[other, rsaCert], [ec, rsaCert], [rsa, ecCert]] as const) {
    const e = checkKeyMatchesCertificate(decodePrivateKey(b64(key.pkcs8)), cert);
    expect(e?.code).toBe("key-certificate-mismatch");
    expect(e?.message).toContain("does not match the pool certificate");
  }
});

test("validity window: inside, expired (with the date), not yet valid (with the date)", () => {
  expect(checkCertificateWindow(rsaCert, NOW)).toBeUndefined();
  const later = new Date(NOW.getTime() + 2 * DAY);
  const expired = checkCertificateWindow(rsaCert, later);
  expect(expired?.code).toBe("certificate-expired");
  expect(expired?.message).toContain(`expired on ${new Date(NOW.getTime() + DAY).toISOString()}`);
  const earlier = new Date(NOW.getTime() - 2 * DAY);
  const early = checkCertificateWindow(rsaCert, earlier);
  expect(early?.code).toBe("certificate-not-yet-valid");
  expect(early?.message).toContain(`not valid before ${new Date(NOW.getTime() - DAY).toISOString()}`);
});
