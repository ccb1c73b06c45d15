/**
 * The mothership's certificate authority (docs/architecture.md, docs/security.md). Created on first start and kept in the data
 * dir; it signs pool client certificates (from operators' CSRs) and the TLS server certificate of
 * the broker and the API. Launchers trust exactly this CA (it travels in the token).
 *
 * Keys are EC P-256: fast to make and to sign with, supported by every TLS stack we talk to.
 */
import { mkdir, readFile, writeFile, chmod } from "node:fs/promises";
import { isIP } from "node:net";
import { join } from "node:path";
import * as x509 from "@peculiar/x509";
import { SpaceliftError } from "../errors.ts";
import { DOWNLINK_SIGNER_CN, DOWNLINK_SIGNER_EKU } from "../protocol/downlink-signature.ts";
import { fromPem, normalizeSerial, toPem } from "./der.ts";

const SIGNING = { name: "ECDSA", hash: "SHA-256" } as const;
const KEY_ALG = { name: "ECDSA", namedCurve: "P-256" } as const;
const DAY = 24 * 60 * 60 * 1000;

export interface CertificateAuthority {
  certificate: x509.X509Certificate;
  certificatePem: string;
  privateKey: CryptoKey;
}

export interface IssuedCertificate {
  pem: string;
  /** Canonical serial (see normalizeSerial), recorded so that the broker can refuse revoked ones. */
  serial: string;
  notAfter: Date;
}

/** 16 random bytes, first byte 0x01..0x7f: positive and never shortened by leading zeros. */
function randomSerial(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[0] = ((bytes[0] ?? 1) & 0x7f) | 0x01;
  return Buffer.from(bytes).toString("hex");
}

async function exists(path: string): Promise<boolean> {
  return Bun.file(path).exists();
}

/** Loads the CA from `dir` (ca.crt, ca.key), creating both on first use. */
export async function loadOrCreateCa(dir: string, commonName = "Spacelift mothership CA"): Promise<CertificateAuthority> {
  const certPath = join(dir, "ca.crt");
  const keyPath = join(dir, "ca.key");
  if (await exists(certPath)) {
    try {
      const certificatePem = await readFile(certPath, "utf8");
      const privateKey = await crypto.subtle.importKey("pkcs8", fromPem("PRIVATE KEY", await readFile(keyPath, "utf8")), KEY_ALG, false, ["sign"]);
      return { certificate: new x509.X509Certificate(certificatePem), certificatePem, privateKey };
    } catch (err) {
      throw new SpaceliftError("ca-unreadable", `the CA in ${dir} cannot be loaded`, { cause: err });
    }
  }
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const keys = (await crypto.subtle.generateKey(KEY_ALG, true, ["sign", "verify"])) as CryptoKeyPair;
  const now = Date.now();
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: `CN=${commonName}`,
    notBefore: new Date(now - 5 * 60 * 1000),
    notAfter: new Date(now + 20 * 365 * DAY),
    keys,
    signingAlgorithm: SIGNING,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const keyPem = toPem("PRIVATE KEY", await crypto.subtle.exportKey("pkcs8", keys.privateKey));
  await writeFile(keyPath, keyPem, { mode: 0o600 });
  await chmod(keyPath, 0o600);
  const certificatePem = certificate.toString("pem") + "\n";
  // Public, but it lives in the private data dir like everything else there.
  await writeFile(certPath, certificatePem, { mode: 0o600 });
  return { certificate, certificatePem, privateKey: keys.privateKey };
}

async function issue(
  ca: CertificateAuthority,
  subject: string,
  publicKey: x509.PublicKeyType,
  extensions: x509.Extension[],
  validityDays: number,
): Promise<IssuedCertificate> {
  const now = Date.now();
  const notAfter = new Date(now + validityDays * DAY);
  const serial = randomSerial();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial,
    subject,
    issuer: ca.certificate.subject,
    // A little slack for clocks that run behind the mothership's.
    notBefore: new Date(now - 5 * 60 * 1000),
    notAfter,
    publicKey,
    signingKey: ca.privateKey,
    signingAlgorithm: SIGNING,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      await x509.AuthorityKeyIdentifierExtension.create(ca.certificate, false),
      await x509.SubjectKeyIdentifierExtension.create(publicKey),
      ...extensions,
    ],
  });
  return { pem: cert.toString("pem") + "\n", serial: normalizeSerial(serial), notAfter };
}

/** The subject CN that names a pool in its client certificate; the broker reads it back. */
function poolCommonName(poolId: string): string {
  return poolId;
}

/** A pool's client certificate: client-auth only, CN and a URI SAN naming the pool. */
export async function issuePoolCertificate(
  ca: CertificateAuthority,
  poolId: string,
  publicKey: x509.PublicKey,
  validityDays = 5 * 365,
): Promise<IssuedCertificate> {
  return issue(ca, `CN=${poolCommonName(poolId)}, O=Spacelift worker pool`, publicKey, [
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment | x509.KeyUsageFlags.keyAgreement, true),
    new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth], false),
    new x509.SubjectAlternativeNameExtension([{ type: "url", value: `urn:spacelift:pool:${poolId}` }], false),
  ], validityDays);
}

/**
 * The mothership's downlink signer (src/protocol/downlink-signature.ts): signing only, with an extended
 * key usage no other certificate of this CA carries, so a pool's certificate cannot sign for the mothership.
 */
export async function issueDownlinkSignerCertificate(ca: CertificateAuthority, publicKey: CryptoKey, validityDays = 397): Promise<IssuedCertificate> {
  return issue(ca, `CN=${DOWNLINK_SIGNER_CN}`, publicKey, [
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    new x509.ExtendedKeyUsageExtension([DOWNLINK_SIGNER_EKU], false),
  ], validityDays);
}

export interface ServerCredentials {
  certificatePem: string;
  keyPem: string;
}

/**
 * A fresh TLS server certificate for the broker and the API, valid for loopback and `hosts`.
 * Made at every start (cheap with EC), so a changed host name needs nothing but a restart.
 */
export async function issueServerCertificate(ca: CertificateAuthority, hosts: readonly string[]): Promise<ServerCredentials> {
  const names = new Set(["127.0.0.1", "::1", "localhost", ...hosts.filter((h) => h !== "" && h !== "0.0.0.0" && h !== "::")]);
  const san = [...names].map((n) => ({ type: isIP(n) ? ("ip" as const) : ("dns" as const), value: n }));
  const keys = (await crypto.subtle.generateKey(KEY_ALG, true, ["sign", "verify"])) as CryptoKeyPair;
  const issued = await issue(ca, "CN=Spacelift mothership", keys.publicKey, [
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyAgreement, true),
    new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth], false),
    new x509.SubjectAlternativeNameExtension(san, false),
  ], 397);
  return { certificatePem: issued.pem, keyPem: toPem("PRIVATE KEY", await crypto.subtle.exportKey("pkcs8", keys.privateKey)) };
}
