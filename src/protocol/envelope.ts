/**
 * End-to-end encryption of run specs (src/protocol/README.md): JWE compact serialization (RFC 7516) addressed to
 * the pool certificate's public key, so only holders of the pool private key can read run secrets —
 * not the broker, not whoever operates it. WebCrypto only, no extra dependency.
 *
 *   RSA pool key      alg RSA-OAEP-256     (RFC 7518 §4.3)
 *   EC P-256/P-384    alg ECDH-ES+A256KW   (RFC 7518 §4.6, Concat KDF + AES key wrap)
 *   content           enc A256GCM, the protected header as AAD
 *
 * Every decryption failure (tampering, another pool's key, garbage) is one SpaceliftError with a
 * stable code; the caller rejects the run and executes nothing.
 */
import { X509Certificate } from "node:crypto";
import { SpaceliftError } from "../errors.ts";
import { parseRunSpec, type RunSpec } from "./run-spec.ts";

export type EnvelopeErrorCode =
  | "envelope-malformed"
  | "envelope-unsupported"
  | "envelope-key-mismatch"
  | "envelope-decrypt-failed";

function fail(code: EnvelopeErrorCode, message: string, cause?: unknown): never {
  throw new SpaceliftError(code, message, cause === undefined ? undefined : { cause });
}

type Curve = "P-256" | "P-384";
type Recipient = { kind: "rsa"; key: CryptoKey } | { kind: "ec"; key: CryptoKey; curve: Curve };

const enc = new TextEncoder();

function b64url(bytes: Uint8Array | ArrayBuffer): string {
  return Buffer.from(bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes)).toString("base64url");
}

function unb64url(text: string, what: string): Uint8Array<ArrayBuffer> {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) fail("envelope-malformed", `JWE ${what} is not base64url`);
  return new Uint8Array(Buffer.from(text, "base64url"));
}

/**
 * The certificate's public key, imported for encryption. RSA and EC P-256/P-384 only. node:crypto parses
 * the certificate: @peculiar/x509 would load its ASN.1 schemas into every launcher only for this function,
 * which the launcher never calls (docs/performance.md).
 */
async function recipientFromCertificate(certPem: string): Promise<Recipient> {
  let publicKey: X509Certificate["publicKey"];
  try {
    publicKey = new X509Certificate(certPem).publicKey;
  } catch (err) {
    return fail("envelope-unsupported", "the pool certificate cannot be parsed", err);
  }
  const spki = new Uint8Array(publicKey.export({ type: "spki", format: "der" }));
  const type = publicKey.asymmetricKeyType ?? "unknown";
  if (type === "rsa" || type === "rsa-pss") {
    const key = await crypto.subtle.importKey("spki", spki, { name: "RSA-OAEP", hash: "SHA-256" }, false, ["encrypt", "wrapKey"]);
    return { kind: "rsa", key };
  }
  if (type === "ec") {
    const named = publicKey.asymmetricKeyDetails?.namedCurve;
    const curve = named === "prime256v1" || named === "P-256" ? "P-256" : named === "secp384r1" || named === "P-384" ? "P-384" : undefined;
    if (curve === undefined) return fail("envelope-unsupported", `EC curve ${String(named)} is not supported`);
    const key = await crypto.subtle.importKey("spki", spki, { name: "ECDH", namedCurve: curve }, true, []);
    return { kind: "ec", key, curve };
  }
  return fail("envelope-unsupported", `pool key algorithm ${type} is not supported (use RSA or EC P-256/P-384)`);
}

/**
 * RFC 7518 §4.6.2: Concat KDF (NIST SP 800-56A) with SHA-256. `bits` <= 256 (one hash round is
 * all A256KW and the RFC's own test vector need). Exported for the RFC 7518 appendix C test.
 * @testSeam
 */
export async function concatKdf(z: ArrayBuffer | Uint8Array, algId: string, apu: Uint8Array, apv: Uint8Array, bits = 256): Promise<ArrayBuffer> {
  const lp = (b: Uint8Array): Uint8Array => {
    const out = new Uint8Array(4 + b.length);
    new DataView(out.buffer).setUint32(0, b.length);
    out.set(b, 4);
    return out;
  };
  const zb = z instanceof Uint8Array ? z : new Uint8Array(z);
  const supp = new Uint8Array(4);
  new DataView(supp.buffer).setUint32(0, bits);
  const parts = [new Uint8Array([0, 0, 0, 1]), zb, lp(enc.encode(algId)), lp(apu), lp(apv), supp];
  const input = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    input.set(p, at);
    at += p.length;
  }
  return (await crypto.subtle.digest("SHA-256", input)).slice(0, bits / 8);
}

const curveBits: Record<Curve, number> = { "P-256": 256, "P-384": 384 };

async function kekFromEcdh(priv: CryptoKey, pub: CryptoKey, curve: Curve, usage: "wrapKey" | "unwrapKey"): Promise<CryptoKey> {
  const z = await crypto.subtle.deriveBits({ name: "ECDH", public: pub }, priv, curveBits[curve]);
  const kek = await concatKdf(z, "ECDH-ES+A256KW", new Uint8Array(), new Uint8Array());
  return crypto.subtle.importKey("raw", kek, { name: "AES-KW" }, false, [usage]);
}

/**
 * Recipients by certificate text: a pool's certificate is parsed and its key imported once, not for
 * every run scheduled to it (ASN.1 parsing cost several times the ECDH and AES work of a run). Least
 * recently used first out; a certificate that fails to parse is not kept.
 */
const recipients = new Map<string, Promise<Recipient>>();
const RECIPIENT_CACHE_MAX = 512;
let certificatesParsed = 0;

function cachedRecipient(certPem: string): Promise<Recipient> {
  const hit = recipients.get(certPem);
  if (hit) {
    recipients.delete(certPem);
    recipients.set(certPem, hit);
    return hit;
  }
  certificatesParsed++;
  const made = recipientFromCertificate(certPem);
  void made.catch(() => recipients.delete(certPem));
  recipients.set(certPem, made);
  if (recipients.size > RECIPIENT_CACHE_MAX) recipients.delete(recipients.keys().next().value as string);
  return made;
}

/**
 * How many certificates encryption has parsed so far (each one once while it stays cached).
 * @testSeam
 */
export function certificateParseCount(): number {
  return certificatesParsed;
}

/** Encrypts any bytes to the certificate's key; returns the compact JWE. */
async function encryptFor(plaintext: Uint8Array<ArrayBuffer>, certPem: string): Promise<string> {
  const recipient = await cachedRecipient(certPem);
  const cek = await crypto.subtle.generateKey({ name: "AES-GCM", length: 256 }, true, ["encrypt"]);
  let header: Record<string, unknown>;
  let encryptedKey: ArrayBuffer;
  if (recipient.kind === "rsa") {
    header = { alg: "RSA-OAEP-256", enc: "A256GCM", cty: "application/json" };
    encryptedKey = await crypto.subtle.wrapKey("raw", cek, recipient.key, { name: "RSA-OAEP" });
  } else {
    const eph = (await crypto.subtle.generateKey({ name: "ECDH", namedCurve: recipient.curve }, true, ["deriveBits"])) as CryptoKeyPair;
    const jwk = await crypto.subtle.exportKey("jwk", eph.publicKey);
    header = { alg: "ECDH-ES+A256KW", enc: "A256GCM", cty: "application/json", epk: { kty: "EC", crv: jwk.crv, x: jwk.x, y: jwk.y } };
    const kek = await kekFromEcdh(eph.privateKey, recipient.key, recipient.curve, "wrapKey");
    encryptedKey = await crypto.subtle.wrapKey("raw", cek, kek, { name: "AES-KW" });
  }
  const protectedB64 = b64url(enc.encode(JSON.stringify(header)));
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const sealed = new Uint8Array(
    await crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData: enc.encode(protectedB64), tagLength: 128 }, cek, plaintext),
  );
  const ciphertext = sealed.subarray(0, sealed.length - 16);
  const tag = sealed.subarray(sealed.length - 16);
  return [protectedB64, b64url(encryptedKey), b64url(iv), b64url(ciphertext), b64url(tag)].join(".");
}

interface ParsedJwe {
  header: { alg?: unknown; enc?: unknown; epk?: unknown };
  protectedB64: string;
  encryptedKey: Uint8Array<ArrayBuffer>;
  iv: Uint8Array<ArrayBuffer>;
  sealed: Uint8Array<ArrayBuffer>;
}

function parseCompact(jwe: string): ParsedJwe {
  const parts = jwe.trim().split(".");
  if (parts.length !== 5) fail("envelope-malformed", `a compact JWE has 5 parts, this has ${parts.length}`);
  const [protectedB64, ek, ivB64, ctB64, tagB64] = parts as [string, string, string, string, string];
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder().decode(unb64url(protectedB64, "header")));
  } catch (err) {
    if (err instanceof SpaceliftError) throw err;
    return fail("envelope-malformed", "JWE protected header is not JSON", err);
  }
  if (typeof header !== "object" || header === null) fail("envelope-malformed", "JWE protected header is not an object");
  const iv = unb64url(ivB64, "iv");
  const ct = unb64url(ctB64, "ciphertext");
  const tag = unb64url(tagB64, "tag");
  if (iv.length !== 12 || tag.length !== 16) fail("envelope-malformed", "JWE iv or tag has the wrong length for A256GCM");
  const sealed = new Uint8Array(ct.length + tag.length);
  sealed.set(ct);
  sealed.set(tag, ct.length);
  return { header: header as ParsedJwe["header"], protectedB64, encryptedKey: unb64url(ek, "encrypted key"), iv, sealed };
}

async function unwrapCek(p: ParsedJwe, key: CryptoKey): Promise<CryptoKey> {
  const alg = p.header.alg;
  const keyAlg = key.algorithm as { name: string; namedCurve?: string };
  const aes = { name: "AES-GCM", length: 256 };
  if (alg === "RSA-OAEP-256") {
    if (keyAlg.name !== "RSA-OAEP") fail("envelope-key-mismatch", `RSA-OAEP-256 JWE needs an RSA-OAEP key, got ${keyAlg.name}`);
    return crypto.subtle.unwrapKey("raw", p.encryptedKey, key, { name: "RSA-OAEP" }, aes, false, ["decrypt"]);
  }
  if (alg === "ECDH-ES+A256KW") {
    if (keyAlg.name !== "ECDH") fail("envelope-key-mismatch", `ECDH-ES JWE needs an ECDH key, got ${keyAlg.name}`);
    const epk = p.header.epk as { kty?: unknown; crv?: unknown; x?: unknown; y?: unknown } | undefined;
    if (!epk || epk.kty !== "EC" || typeof epk.x !== "string" || typeof epk.y !== "string") {
      fail("envelope-malformed", "ECDH-ES JWE without a valid epk");
    }
    if (epk.crv !== keyAlg.namedCurve) fail("envelope-key-mismatch", `JWE curve ${String(epk.crv)} does not match the key's ${String(keyAlg.namedCurve)}`);
    const curve = keyAlg.namedCurve as Curve;
    const pub = await crypto.subtle.importKey("jwk", { kty: "EC", crv: curve, x: epk.x, y: epk.y }, { name: "ECDH", namedCurve: curve }, false, []);
    const kek = await kekFromEcdh(key, pub, curve, "unwrapKey");
    return crypto.subtle.unwrapKey("raw", p.encryptedKey, kek, { name: "AES-KW" }, aes, false, ["decrypt"]);
  }
  return fail("envelope-unsupported", `JWE alg ${JSON.stringify(alg)} is not supported`);
}

/** Decrypts a compact JWE with the pool private key (see importRunDecryptionKey). */
async function decryptWith(jwe: string, key: CryptoKey): Promise<Uint8Array> {
  const p = parseCompact(jwe);
  if (p.header.enc !== "A256GCM") fail("envelope-unsupported", `JWE enc ${JSON.stringify(p.header.enc)} is not supported`);
  try {
    const cek = await unwrapCek(p, key);
    const plain = await crypto.subtle.decrypt(
      { name: "AES-GCM", iv: p.iv, additionalData: enc.encode(p.protectedB64), tagLength: 128 },
      cek,
      p.sealed,
    );
    return new Uint8Array(plain);
  } catch (err) {
    if (err instanceof SpaceliftError) throw err;
    // WebCrypto does not tell a wrong key from a modified message, and neither should we.
    return fail("envelope-decrypt-failed", "the run cannot be decrypted with this pool key (another pool's key, or the message was modified)", err);
  }
}

/** Encrypts a run spec to the pool certificate. */
export async function encryptRun(spec: RunSpec, certPem: string): Promise<string> {
  return encryptFor(enc.encode(JSON.stringify(spec)), certPem);
}

/** Decrypts and validates a run spec (`run-spec-invalid` when the decrypted JSON is not one). */
export async function decryptRun(jwe: string, privateKey: CryptoKey): Promise<RunSpec> {
  const bytes = await decryptWith(jwe, privateKey);
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder().decode(bytes));
  } catch (err) {
    return fail("envelope-malformed", "the decrypted run is not JSON", err);
  }
  return parseRunSpec(json);
}

/**
 * Imports a PKCS#8 private key (DER) for decryption: RSA as RSA-OAEP/SHA-256, EC as ECDH on its
 * curve. `openssl req -newkey rsa:4096 -nodes` writes PKCS#8 ("BEGIN PRIVATE KEY").
 */
export async function importRunDecryptionKey(pkcs8: Uint8Array<ArrayBuffer>): Promise<CryptoKey> {
  type ImportAlg = Parameters<typeof crypto.subtle.importKey>[2];
  type Usages = Parameters<typeof crypto.subtle.importKey>[4];
  const attempts: Array<[ImportAlg, Usages]> = [
    [{ name: "RSA-OAEP", hash: "SHA-256" }, ["decrypt", "unwrapKey"]],
    [{ name: "ECDH", namedCurve: "P-256" }, ["deriveBits"]],
    [{ name: "ECDH", namedCurve: "P-384" }, ["deriveBits"]],
  ];
  let last: unknown;
  for (const [alg, usages] of attempts) {
    try {
      return await crypto.subtle.importKey("pkcs8", pkcs8, alg, false, usages);
    } catch (err) {
      last = err;
    }
  }
  return fail("envelope-key-mismatch", "the private key is neither RSA nor EC P-256/P-384 in PKCS#8", last);
}
