/**
 * The mothership's own client certificate for an external broker (docs/external-broker.md): CN
 * `mothership`, from the mothership's CA, kept in the data dir. Every replica holds a copy of the same
 * CA, so each makes (or keeps) its own certificate with the same CN and the broker's ACL for
 * `user mothership` covers them all.
 */
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import * as x509 from "@peculiar/x509";
import { toPem } from "../pki/der.ts";
import type { CertificateAuthority } from "../pki/ca.ts";

/** The CN (and so, with `use_identity_as_username`, the broker user name) of the mothership's client certificate. */
export const MOTHERSHIP_BROKER_USER = "mothership";
const DAY = 24 * 60 * 60 * 1000;
const KEY_ALG = { name: "ECDSA", namedCurve: "P-256" } as const;

export interface BrokerClientIdentity {
  certificatePem: string;
  keyPem: string;
}

/**
 * The mothership's client certificate for an external broker, in `<data>/broker-client/`
 * (`mothership.key` 0600, `mothership.crt`): made on first use, issued again when it has less than
 * 30 days left or another CA issued it.
 */
export async function loadOrCreateBrokerClientIdentity(dataDir: string, ca: CertificateAuthority): Promise<BrokerClientIdentity> {
  const dir = join(dataDir, "broker-client");
  const certPath = join(dir, "mothership.crt");
  const keyPath = join(dir, "mothership.key");
  const existing = await Promise.all([readFile(certPath, "utf8"), readFile(keyPath, "utf8")]).catch(() => null);
  if (existing) {
    const cert = new x509.X509Certificate(existing[0]);
    const fresh = cert.notAfter.getTime() - Date.now() > 30 * DAY;
    if (fresh && cert.issuer === ca.certificate.subject && (await cert.verify({ publicKey: ca.certificate.publicKey, signatureOnly: true }))) {
      return { certificatePem: existing[0], keyPem: existing[1] };
    }
  }
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const keys = (await crypto.subtle.generateKey(KEY_ALG, true, ["sign", "verify"])) as CryptoKeyPair;
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: "01" + Buffer.from(crypto.getRandomValues(new Uint8Array(15))).toString("hex"),
    subject: `CN=${MOTHERSHIP_BROKER_USER}, O=Spacelift mothership`,
    issuer: ca.certificate.subject,
    notBefore: new Date(now - 5 * 60 * 1000),
    notAfter: new Date(now + 397 * DAY),
    publicKey: keys.publicKey,
    signingKey: ca.privateKey,
    signingAlgorithm: { name: "ECDSA", hash: "SHA-256" },
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyAgreement, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth], false),
      await x509.AuthorityKeyIdentifierExtension.create(ca.certificate, false),
    ],
  });
  const keyPem = toPem("PRIVATE KEY", await crypto.subtle.exportKey("pkcs8", keys.privateKey));
  const certificatePem = cert.toString("pem") + "\n";
  await writeFile(keyPath, keyPem, { mode: 0o600 });
  await writeFile(certPath, certificatePem, { mode: 0o600 });
  return { certificatePem, keyPem };
}
