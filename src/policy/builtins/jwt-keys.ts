/**
 * The pieces of OPA's io.jwt.* that are not about claims: base64url decoding with Go's error
 * positions, verification keys from a PEM certificate, a PEM public key or a JWK (set), and
 * signature checks per algorithm (via node:crypto).
 */
import { X509Certificate, constants, createHmac, createPublicKey, timingSafeEqual, verify, type KeyObject } from "node:crypto";

const URL_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const STD_ALPHABET = URL_ALPHABET.slice(0, 62) + "+/";

function decodeMap(alphabet: string): Uint8Array {
  const m = new Uint8Array(256).fill(0xff);
  for (let i = 0; i < alphabet.length; i++) m[alphabet.charCodeAt(i)] = i;
  return m;
}
const URL_MAP = decodeMap(URL_ALPHABET);
const STD_MAP = decodeMap(STD_ALPHABET);

const isNewline = (c: number | undefined): boolean => c === 0x0a || c === 0x0d;

/**
 * Go's padded base64 decoder (encoding/base64, not strict): newlines are skipped, and the error names
 * the byte where decoding failed ("illegal base64 data at input byte 4").
 */
function goBase64(src: Buffer, map: Uint8Array): Buffer | string {
  const out: number[] = [];
  const corrupt = (n: number): string => `illegal base64 data at input byte ${n}`;
  let si = 0;
  while (si < src.length) {
    const d = [0, 0, 0, 0];
    let dlen = 4;
    let trailing: number | undefined;
    for (let j = 0; j < 4; j++) {
      if (si === src.length) {
        if (j === 0) return Buffer.from(out);
        return corrupt(si - j);
      }
      const c = src[si++] as number;
      const v = map[c] as number;
      if (v !== 0xff) {
        d[j] = v;
        continue;
      }
      if (isNewline(c)) {
        j--;
        continue;
      }
      if (c !== 0x3d || j < 2) return corrupt(si - 1);
      if (j === 2) {
        // "==" is expected: the first "=" is consumed.
        while (si < src.length && isNewline(src[si])) si++;
        if (si === src.length) return corrupt(src.length);
        if (src[si] !== 0x3d) return corrupt(si - 1);
        si++;
      }
      while (si < src.length && isNewline(src[si])) si++;
      if (si < src.length) trailing = si;
      dlen = j;
      break;
    }
    const val = ((d[0] as number) << 18) | ((d[1] as number) << 12) | ((d[2] as number) << 6) | (d[3] as number);
    out.push(...[(val >> 16) & 0xff, (val >> 8) & 0xff, val & 0xff].slice(0, dlen - 1));
    if (trailing !== undefined) return corrupt(trailing);
  }
  return Buffer.from(out);
}

/** OPA's base64url.decode: missing padding is added first; returns the bytes or Go's error text. */
export function base64urlDecode(s: string): Buffer | string {
  const src = Buffer.from(s, "utf8");
  let padded = src;
  if (!s.endsWith("=")) {
    const rem = src.length % 4;
    if (rem === 1) return `illegal base64url string: ${s}`;
    if (rem !== 0) padded = Buffer.concat([src, Buffer.from(rem === 2 ? "==" : "=")]);
  }
  return goBase64(padded, URL_MAP);
}

/** A key a token may be verified with: an asymmetric public key, or the bytes of a JWK "oct" key. */
export interface VerificationKey {
  key: KeyObject | Buffer;
  /** `alg` of a JWK, "" for a certificate or PEM key (then any algorithm is tried). */
  alg: string;
  kid: string;
}

export const TOKEN_ALGORITHMS = new Set(["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "HS256", "HS384", "HS512", "EdDSA"]);

/** The first PEM block, as Go's pem.Decode finds it; rest is what follows its END line. */
function pemDecode(text: string): { type: string; der: Buffer; rest: string } | undefined {
  const re = /(?:^|\n)-----BEGIN ([^\n]*?)-----[ \t]*\r?\n([\s\S]*?)(?:^|\n)-----END \1-----[ \t]*(?:\r?\n|$)/g;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    // Header lines (`Proc-Type: ...`) precede a blank line; the body is base64 in any line breaks.
    const body = (m[2] ?? "").replace(/^(?:[^\n:]+:[^\n]*\n)+\r?\n/, "").replace(/[ \t\r\n]/g, "");
    const der = goBase64(Buffer.from(body), STD_MAP);
    if (typeof der !== "string") return { type: m[1] ?? "", der, rest: text.slice(m.index + m[0].length) };
  }
  return undefined;
}

function jwkKey(jwk: unknown): VerificationKey {
  if (typeof jwk !== "object" || jwk === null || Array.isArray(jwk)) throw new Error("failed to parse a JWK key (set): a key must be a JSON object");
  const j = jwk as Record<string, unknown>;
  const alg = typeof j.alg === "string" ? j.alg : "";
  const kid = typeof j.kid === "string" ? j.kid : "";
  if (j.kty === "oct") {
    if (typeof j.k !== "string") throw new Error('failed to parse a JWK key (set): an "oct" key needs "k"');
    return { key: Buffer.from(j.k, "base64url"), alg, kid };
  }
  try {
    return { key: createPublicKey({ key: j as never, format: "jwk" }), alg, kid };
  } catch (e) {
    throw new Error(`failed to parse a JWK key (set): ${(e as Error).message}`);
  }
}

/**
 * Keys from a PEM certificate, a PEM public key or a JWK / JWK set (OPA's getKeysFromCertOrJWK);
 * throws an Error with OPA's message for material that is neither.
 */
export function keysFromCertOrJWK(material: string): VerificationKey[] {
  const block = pemDecode(material);
  if (block) {
    if (block.rest.length > 0) throw new Error("extra data after a PEM certificate block");
    if (block.type === "CERTIFICATE") {
      try {
        return [{ key: new X509Certificate(block.der).publicKey, alg: "", kid: "" }];
      } catch {
        throw new Error("failed to parse a PEM certificate: x509: malformed certificate");
      }
    }
    if (block.type === "PUBLIC KEY") {
      try {
        return [{ key: createPublicKey({ key: block.der, format: "der", type: "spki" }), alg: "", kid: "" }];
      } catch {
        throw new Error("failed to parse a PEM public key: x509: malformed public key");
      }
    }
    throw new Error("failed to extract a Key from the PEM certificate");
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(material);
  } catch {
    throw new Error("failed to parse a JWK key (set): the key is neither PEM nor JSON");
  }
  const set = typeof parsed === "object" && parsed !== null && "keys" in parsed ? (parsed as { keys: unknown }).keys : [parsed];
  if (!Array.isArray(set)) throw new Error('failed to parse a JWK key (set): "keys" must be an array');
  // Keys for algorithms OPA does not know are skipped, not errors.
  return set.map(jwkKey).filter((k) => k.alg === "" || TOKEN_ALGORITHMS.has(k.alg));
}

const HASHES: Record<string, string> = { "256": "sha256", "384": "sha384", "512": "sha512" };

/** Whether `sig` is alg's signature of `input` under `key`; a key of the wrong kind does not verify. */
export function verifySignature(alg: string, key: KeyObject | Buffer, input: string, sig: Buffer): boolean {
  const data = Buffer.from(input);
  const hash = HASHES[alg.slice(2)];
  try {
    if (Buffer.isBuffer(key)) {
      if (!alg.startsWith("HS") || !hash) return false;
      const mac = createHmac(hash, key).update(data).digest();
      return mac.length === sig.length && timingSafeEqual(mac, sig);
    }
    const type = key.asymmetricKeyType;
    if (alg === "EdDSA") return type === "ed25519" && verify(null, data, key, sig);
    if (!hash) return false;
    if (alg.startsWith("RS")) return type === "rsa" && verify(hash, data, key, sig);
    // Go's rsa.VerifyPSS without options detects the salt length.
    if (alg.startsWith("PS")) return (type === "rsa" || type === "rsa-pss") && verify(hash, data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_AUTO }, sig);
    if (alg.startsWith("ES")) return type === "ec" && verify(hash, data, { key, dsaEncoding: "ieee-p1363" }, sig);
  } catch {
    // malformed signature or key for this algorithm
  }
  return false;
}

/**
 * OPA's key choice: a key whose `kid` matches the header's is the only one tried; otherwise every
 * key without an `alg`, and every key whose `alg` is the header's.
 */
export function verifyWithKeys(alg: string, headerAlg: string, kid: string, keys: VerificationKey[], input: string, sig: Buffer): boolean {
  const byKid = kid === "" ? undefined : keys.find((k) => k.kid === kid);
  if (byKid) return verifySignature(alg, byKid.key, input, sig);
  return keys.some((k) => (k.alg === "" || k.alg === headerAlg) && verifySignature(alg, k.key, input, sig));
}
