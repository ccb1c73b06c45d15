/**
 * The pool private key (`SPACELIFT_POOL_PRIVATE_KEY`): base64 of the whole PEM file, as Spacelift's
 * documentation tells operators to make it (`base64 -w 0 spacelift.key`); the raw PEM text is accepted
 * too, because operators paste it. PKCS#8 (RSA or EC), PKCS#1 RSA and SEC1 EC are understood — what
 * `openssl req -newkey`, `openssl genrsa` and `openssl ecparam -genkey` write.
 *
 * No error message ever contains any part of the key: messages are built from fixed text only.
 */
import { createPrivateKey, createPublicKey, type KeyObject } from "node:crypto";
import { SpaceliftError } from "../errors.ts";
import { decodeBase64Strict, pemBlocks, unescapeNewlines, utf8Strict } from "./pem.ts";

export type PrivateKeyErrorCode =
  | "key-empty"
  | "key-not-base64"
  | "key-no-pem"
  | "key-unsupported"
  | "key-encrypted"
  | "key-corrupt";

/** @testSeam */
export class PrivateKeyError extends SpaceliftError {
  declare readonly code: PrivateKeyErrorCode;

  constructor(code: PrivateKeyErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

export interface PoolPrivateKey {
  readonly type: "rsa" | "ec";
  /** The encoding the operator gave, for `check` output. */
  readonly format: "pkcs8" | "pkcs1" | "sec1";
  /** "RSA 4096" or "EC P-256": safe to print. */
  readonly description: string;
  /** PKCS#8 PEM, for TLS client options (`key`). */
  readonly pem: string;
  /** For node:crypto (signing, JWE decryption); `keyObject.export({ type: "pkcs8", format: "der" })` for WebCrypto. */
  readonly keyObject: KeyObject;
  /** DER SubjectPublicKeyInfo of the matching public key: what a certificate must carry. */
  readonly spki: Buffer;
  /** Never serialize the key by accident (a log line, `JSON.stringify(config)`). */
  toJSON(): string;
}

const GOOD = "give base64 of the whole PEM key file, e.g. SPACELIFT_POOL_PRIVATE_KEY=$(base64 -w 0 spacelift.key)";
const KEY_LABELS: Readonly<Record<string, PoolPrivateKey["format"]>> = {
  "PRIVATE KEY": "pkcs8",
  "RSA PRIVATE KEY": "pkcs1",
  "EC PRIVATE KEY": "sec1",
};
/** Blocks an operator may paste by mistake, with what to do instead. Labels are fixed strings: safe. */
const WRONG_BLOCKS: Readonly<Record<string, string>> = {
  "CERTIFICATE REQUEST": "a CSR (spacelift.csr) was given instead of the key; use spacelift.key",
  "NEW CERTIFICATE REQUEST": "a CSR (spacelift.csr) was given instead of the key; use spacelift.key",
  CERTIFICATE: "a certificate was given instead of the private key; use spacelift.key",
  "PUBLIC KEY": "a public key was given instead of the private key; use spacelift.key",
  "RSA PUBLIC KEY": "a public key was given instead of the private key; use spacelift.key",
  "OPENSSH PRIVATE KEY":
    "an OpenSSH-format key is not supported; generate one with openssl req -new -newkey rsa:4096 -nodes -keyout spacelift.key -out spacelift.csr",
};
const EC_CURVES: Readonly<Record<string, string>> = { prime256v1: "P-256", secp384r1: "P-384", secp521r1: "P-521" };
const MIN_RSA_BITS = 2048;

/** Decode and check the pool private key. Throws PrivateKeyError (one code per failure kind). */
export function decodePrivateKey(value: string): PoolPrivateKey {
  const trimmed = value.trim();
  if (trimmed === "") throw new PrivateKeyError("key-empty", `private key is empty; ${GOOD}`);
  const pemText = trimmed.includes("-----BEGIN") ? unescapeNewlines(trimmed) : fromBase64(trimmed);

  const blocks = pemBlocks(pemText);
  const keyBlock = blocks.find((b) => b.label in KEY_LABELS || b.label === "ENCRYPTED PRIVATE KEY");
  if (keyBlock === undefined) {
    const wrong = blocks.map((b) => WRONG_BLOCKS[b.label]).find((w) => w !== undefined);
    if (wrong !== undefined) throw new PrivateKeyError("key-unsupported", `private key: ${wrong}`);
    if (blocks.length > 0) {
      throw new PrivateKeyError("key-unsupported", "private key: the PEM holds no supported private key block (PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY); use the spacelift.key written by openssl req -newkey");
    }
    throw new PrivateKeyError("key-no-pem", `private key has no PEM block (-----BEGIN ... PRIVATE KEY-----); ${GOOD}`);
  }
  if (keyBlock.label === "ENCRYPTED PRIVATE KEY" || /Proc-Type:\s*4,ENCRYPTED/.test(keyBlock.text)) {
    throw new PrivateKeyError("key-encrypted", "private key is encrypted with a passphrase, which the launcher cannot use; create it with -nodes (openssl req -new -newkey rsa:4096 -nodes ...) or decrypt it with openssl pkey -in enc.key -out spacelift.key");
  }
  const format = KEY_LABELS[keyBlock.label] ?? "pkcs8";

  let keyObject: KeyObject;
  try {
    keyObject = createPrivateKey({ key: keyBlock.text, format: "pem" });
  } catch (err) {
    throw new PrivateKeyError("key-corrupt", `private key ${keyBlock.label} block could not be parsed (damaged or truncated); ${GOOD}`, { cause: err });
  }
  const description = describeKey(keyObject);
  const type = keyObject.asymmetricKeyType === "rsa" ? "rsa" : "ec";
  const spki = createPublicKey(keyObject).export({ type: "spki", format: "der" });
  const pem = keyObject.export({ type: "pkcs8", format: "pem" }).toString();
  return Object.freeze({
    type,
    format,
    description,
    pem,
    keyObject,
    spki,
    toJSON: () => `[private key ${description}, redacted]`,
    [Symbol.for("nodejs.util.inspect.custom")]: () => `[private key ${description}, redacted]`,
  });
}

function fromBase64(text: string): string {
  const bytes = decodeBase64Strict(text);
  if (bytes === undefined) throw new PrivateKeyError("key-not-base64", `private key is neither base64 nor PEM text; ${GOOD}`);
  const decoded = utf8Strict(bytes);
  if (decoded === undefined || !decoded.includes("-----BEGIN")) {
    // Base64 of DER (or of anything else) lands here.
    throw new PrivateKeyError("key-no-pem", `private key decodes from base64 but holds no PEM block; ${GOOD}`);
  }
  return decoded;
}

/** "RSA 4096" / "EC P-256"; throws key-unsupported for what JWE and mutual TLS here cannot use. */
function describeKey(key: KeyObject): string {
  const details = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === "rsa") {
    const bits = details.modulusLength ?? 0;
    if (bits < MIN_RSA_BITS) {
      throw new PrivateKeyError("key-unsupported", `private key is RSA ${bits}, shorter than ${MIN_RSA_BITS} bits; create a new one with openssl req -new -newkey rsa:4096 -nodes ...`);
    }
    return `RSA ${bits}`;
  }
  if (key.asymmetricKeyType === "ec") {
    const curve = EC_CURVES[details.namedCurve ?? ""];
    if (curve === undefined) {
      throw new PrivateKeyError("key-unsupported", "private key is on an unsupported EC curve (P-256, P-384 or P-521 are supported); e.g. openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes ...");
    }
    return `EC ${curve}`;
  }
  throw new PrivateKeyError("key-unsupported", "private key type is not supported (RSA or EC only); e.g. openssl req -new -newkey rsa:4096 -nodes -keyout spacelift.key -out spacelift.csr");
}
