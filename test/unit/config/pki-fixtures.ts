// Keys, certificates and tokens made on the fly for the config and pki unit tests (no openssl needed).
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { createPrivateKey, type KeyObject } from "node:crypto";

type KeyAlgorithm =
  | { name: "RSASSA-PKCS1-v1_5"; hash: string; publicExponent: Uint8Array; modulusLength: number }
  | { name: "ECDSA"; namedCurve: string };

export interface TestKey {
  readonly keys: CryptoKeyPair;
  readonly keyObject: KeyObject;
  readonly algorithm: KeyAlgorithm;
  /** PKCS#8 PEM ("PRIVATE KEY"). */
  readonly pkcs8: string;
  /** PKCS#1 ("RSA PRIVATE KEY") or SEC1 ("EC PRIVATE KEY") PEM. */
  readonly traditional: string;
}

export async function makeKey(kind: "rsa" | "ec", size: number | string = kind === "rsa" ? 2048 : "P-256"): Promise<TestKey> {
  const algorithm: KeyAlgorithm =
    kind === "rsa"
      ? { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256", publicExponent: new Uint8Array([1, 0, 1]), modulusLength: Number(size) }
      : { name: "ECDSA", namedCurve: String(size) };
  const keys = (await crypto.subtle.generateKey(algorithm, true, ["sign", "verify"])) as CryptoKeyPair;
  const der = Buffer.from(await crypto.subtle.exportKey("pkcs8", keys.privateKey));
  const keyObject = createPrivateKey({ key: der, format: "der", type: "pkcs8" });
  return {
    keys,
    keyObject,
    algorithm,
    pkcs8: keyObject.export({ type: "pkcs8", format: "pem" }).toString(),
    traditional: keyObject.export({ type: kind === "rsa" ? "pkcs1" : "sec1", format: "pem" }).toString(),
  };
}

export async function makeCertificate(key: TestKey, notBefore: Date, notAfter: Date, cn = "pool"): Promise<string> {
  const signingAlgorithm = key.algorithm.name === "ECDSA" ? { name: "ECDSA", hash: "SHA-256" } : key.algorithm;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: "0a1b2c",
    name: `CN=${cn}`,
    notBefore,
    notAfter,
    keys: key.keys,
    signingAlgorithm,
  });
  return cert.toString("pem") + "\n";
}

export const DAY = 86_400_000;
/** A fixed "now" for the validity-window tests. */
export const NOW = new Date("2026-06-01T12:00:00Z");

export function tokenJson(certificate: string, ca: string, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    version: 1,
    pool: "01HZX3K7Q8W9E2R4T6Y8U0I2O4",
    broker: { endpoint: "mqtts://mq.fleet.internal:8883", namespace: "spacelift" },
    comms_url: "https://api.fleet.internal:8443",
    certificate,
    ca,
    ...overrides,
  };
}

export function b64(text: string): string {
  return Buffer.from(text, "utf8").toString("base64");
}

/**
 * True when `output` holds any 12-character piece of `secret`: error messages must never carry any
 * part of a token or key. PEM armor lines ("-----BEGIN PRIVATE KEY-----") are fixed text, not secret,
 * and the secret's whitespace (PEM line breaks) is ignored.
 */
export function leaks(output: string, secret: string, publicText = ""): boolean {
  const strip = (s: string) => s.replace(/-----(BEGIN|END) [A-Z0-9 ]+-----/g, "").replace(/\s+/g, "");
  const content = strip(secret);
  // A private key PEM also holds the public key, which the (public) certificate carries too: a piece
  // that also occurs in `publicText` is not a leak.
  const known = strip(publicText);
  if (content.length < 12) return false;
  for (let i = 0; i + 12 <= content.length; i++) {
    const piece = content.slice(i, i + 12);
    if (output.includes(piece) && !known.includes(piece)) return true;
  }
  return false;
}

/** A complete, valid credential set: RSA key, certificate valid around NOW, token. */
export async function makeCredentials(kind: "rsa" | "ec" = "rsa") {
  const key = await makeKey(kind);
  const certificate = await makeCertificate(key, new Date(NOW.getTime() - DAY), new Date(NOW.getTime() + 365 * DAY));
  const caKey = await makeKey("ec");
  const ca = await makeCertificate(caKey, new Date(NOW.getTime() - DAY), new Date(NOW.getTime() + 3650 * DAY), "ca");
  const json = tokenJson(certificate, ca);
  return { key, certificate, ca, json, token: b64(JSON.stringify(json)), keyB64: b64(key.traditional) };
}
