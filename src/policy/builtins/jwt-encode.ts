/**
 * io.jwt.encode_sign and io.jwt.encode_sign_raw as OPA signs: the key is the first key of a JWK (set),
 * the header's `alg` must be one OPA knows, and a payload must be JSON unless the header's `typ` says
 * it is something other than a JWT. encode_sign serializes its objects as Go's json.Marshal would
 * (keys sorted, sets as arrays, <, > and & escaped), so its tokens match OPA's byte for byte.
 */
import { createPrivateKey, constants, createHmac, sign as cryptoSign } from "node:crypto";
import { RObject, toJSON, type Value } from "../value.ts";
import { builtinErr, register, str } from "./registry.ts";
import { isValidJSON, parseGoJSON } from "./go-json.ts";
import { TOKEN_ALGORITHMS } from "./jwt-keys.ts";

/** Go's json.Marshal text: HTML-sensitive characters (only ever inside strings) as \u escapes. */
function goMarshal(v: Value): string {
  return toJSON(v).replace(/[<>&\u2028\u2029]/g, (c) => "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0"));
}

/** The first key of a JWK or JWK set, as a JSON object. */
function firstJWK(name: string, src: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(src);
  } catch {
    throw builtinErr(name, "failed to parse the JWK: the key is not JSON");
  }
  const keys = typeof parsed === "object" && parsed !== null && "keys" in parsed ? (parsed as { keys: unknown }).keys : [parsed];
  if (!Array.isArray(keys)) throw builtinErr(name, 'failed to parse the JWK set: "keys" must be an array');
  if (keys.length === 0) throw builtinErr(name, "no keys found in JWK set");
  const k: unknown = keys[0];
  if (typeof k !== "object" || k === null || Array.isArray(k)) throw builtinErr(name, "failed to parse the JWK: a key must be a JSON object");
  return k as Record<string, unknown>;
}

/** A header parameter that must be a string; the header itself must be a JSON object. */
function headerString(header: string, param: string): string | { error: string } {
  if (header.trim() === "") return { error: "cannot parse JSON: cannot parse empty string" };
  const r = parseGoJSON(header);
  if ("error" in r) return { error: header.trim().startsWith("{") ? `cannot parse JSON: ${r.error}` : `jwsbb: header "${param}" not found` };
  const v = r.value instanceof RObject ? r.value.get(param) : undefined;
  if (v === undefined) return { error: `jwsbb: header "${param}" not found` };
  return typeof v === "string" ? v : { error: `jwsbb: header "${param}" must be a string` };
}

const HASHES: Record<string, string> = { "256": "sha256", "384": "sha384", "512": "sha512" };

function signature(name: string, alg: string, jwk: Record<string, unknown>, input: string): Buffer {
  const data = Buffer.from(input);
  const hash = HASHES[alg.slice(2)] ?? "sha256";
  if (alg.startsWith("HS")) {
    if (jwk.kty !== "oct" || typeof jwk.k !== "string") throw builtinErr(name, `failed to sign: ${alg} needs an "oct" key with "k"`);
    return createHmac(hash, Buffer.from(jwk.k, "base64url")).update(data).digest();
  }
  let key;
  try {
    key = createPrivateKey({ key: jwk as never, format: "jwk" });
  } catch (e) {
    throw builtinErr(name, `failed to sign: invalid private key: ${(e as Error).message}`);
  }
  const type = key.asymmetricKeyType;
  const fits = alg === "EdDSA" ? type === "ed25519" : alg.startsWith("ES") ? type === "ec" : type === "rsa";
  if (!fits) throw builtinErr(name, `failed to sign: a ${type ?? "unknown"} key cannot sign ${alg}`);
  if (alg === "EdDSA") return cryptoSign(null, data, key);
  if (alg.startsWith("ES")) return cryptoSign(hash, data, { key, dsaEncoding: "ieee-p1363" });
  if (alg.startsWith("PS")) return cryptoSign(hash, data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST });
  return cryptoSign(hash, data, key);
}

/** OPA's commonBuiltinJWTEncodeSign: header and payload are signed as the given bytes. */
function encodeSign(name: string, header: string, payload: string, jwkSrc: string): string {
  const jwk = firstJWK(name, jwkSrc);
  const alg = headerString(header, "alg");
  if (typeof alg !== "string") throw builtinErr(name, `missing or invalid 'alg' header: ${alg.error}`);
  if (!TOKEN_ALGORITHMS.has(alg)) throw builtinErr(name, `unknown JWS algorithm: ${alg}`);
  const typ = headerString(header, "typ");
  if ((typeof typ !== "string" || typ === "JWT") && !isValidJSON(payload)) throw builtinErr(name, "type is JWT but payload is not JSON");
  const input = `${Buffer.from(header).toString("base64url")}.${Buffer.from(payload).toString("base64url")}`;
  return `${input}.${signature(name, alg, jwk, input).toString("base64url")}`;
}

register("io.jwt.encode_sign", 3, (a) => encodeSign("io.jwt.encode_sign", goMarshal(a[0] as Value), goMarshal(a[1] as Value), goMarshal(a[2] as Value)));

register("io.jwt.encode_sign_raw", 3, (a) => {
  const name = "io.jwt.encode_sign_raw";
  const key = str(name, a, 2);
  return encodeSign(name, str(name, a, 0), str(name, a, 1), key);
});
