/**
 * io.jwt.decode, io.jwt.verify_* and io.jwt.decode_verify with OPA's checks, order and messages:
 * - a token is three base64url sections; header and payload must be JSON objects; a header with
 *   `enc` is a JWE (unsupported); `cty: JWT` nests a token in the payload;
 * - verify_* check only the signature (HS* do not even read the header), with the builtin's own
 *   algorithm; decode_verify uses the header's `alg`, then checks `iss`, `aud`, `exp` and `nbf`;
 * - a claim of the wrong type (`exp`/`nbf` not a number) or a malformed constraint is an error, a
 *   claim that does not hold makes the result `[false, {}, {}]`.
 */
import { compare, RObject, toJSON, type Value } from "../value.ts";
import { isNum, toFloat } from "../number.ts";
import { builtinErr, obj, register, str, typeErr } from "./registry.ts";
import { BuiltinError } from "../errors.ts";
import { parseGoJSON } from "./go-json.ts";
import { base64urlDecode, keysFromCertOrJWK, verifySignature, verifyWithKeys, type VerificationKey } from "./jwt-keys.ts";
import { createHmac, timingSafeEqual } from "node:crypto";

/** The three sections of a compact JWS, still encoded. */
interface Token {
  header: string;
  payload: string;
  signature: string;
}

function splitToken(name: string, v: Value): Token {
  if (typeof v !== "string") throw typeErr(name, 1, "string", v);
  if (!v.includes(".")) throw builtinErr(name, "encoded JWT had no period separators");
  const parts = v.split(".");
  if (parts.length !== 3) throw builtinErr(name, `encoded JWT must have 3 sections, found ${parts.length}`);
  const [header, payload, signature] = parts as [string, string, string];
  return { header, payload, signature };
}

function decodeSection(name: string, what: string, s: string): Buffer {
  const b = base64urlDecode(s);
  if (typeof b === "string") throw builtinErr(name, what ? `JWT ${what} had invalid encoding: ${b}` : b);
  return b;
}

/** OPA's extractJSONObject: the message names the JSON error or a value that is not an object. */
function jsonObject(text: string): RObject | string {
  const r = parseGoJSON(text);
  if ("error" in r) return `invalid JSON: ${r.error}`;
  return r.value instanceof RObject ? r.value : "decoded JSON type was not an Object";
}

function decodeHeader(name: string, t: Token): RObject {
  const h = jsonObject(decodeSection(name, "header", t.header).toString("utf8"));
  if (typeof h === "string") throw builtinErr(name, `bad JWT header: ${h}`);
  if (h.get("enc") !== undefined) throw builtinErr(name, "JWT is a JWE object, which is not supported");
  return h;
}

interface HeaderParams {
  alg: string;
  kid: string;
  cty: string;
  /** RFC 7515 4.1.11: a critical header this implementation does not know invalidates the token. */
  critUnknown: boolean;
}

const KNOWN_HEADERS = new Set(["alg", "kid", "typ", "cty", "crit"]);

/** OPA's parseTokenHeader: alg, kid, typ and cty must be strings, crit a non-empty list. */
function headerParams(name: string, h: RObject): HeaderParams {
  const p = { alg: "", kid: "", cty: "" };
  const crit = new Set<string>();
  for (const [k, v] of h.entries()) {
    if (k === "crit") {
      if (!Array.isArray(v)) throw builtinErr(name, "crit: must be a list");
      // OPA stops at the first non-string member.
      for (const c of v) {
        if (typeof c !== "string") break;
        crit.add(c);
      }
      if (crit.size === 0) throw builtinErr(name, "crit: must be a nonempty list");
    } else if (typeof k === "string" && KNOWN_HEADERS.has(k)) {
      if (typeof v !== "string") throw builtinErr(name, `${k}: must be a string`);
      if (k !== "typ") p[k as "alg" | "kid" | "cty"] = v;
    }
  }
  const critUnknown = h.keys().some((k) => typeof k === "string" && !KNOWN_HEADERS.has(k) && crit.has(k));
  return { ...p, critUnknown };
}

register("io.jwt.decode", 1, (a) => decodeToken("io.jwt.decode", a[0] as Value));

function decodeToken(name: string, v: Value): Value {
  const t = splitToken(name, v);
  const header = decodeHeader(name, t);
  const payload = decodeSection(name, "payload", t.payload).toString("utf8");
  // A nested token (cty JWT) is decoded in its place; jwt.io quotes it, so quotes are trimmed.
  if (header.get("cty") === "JWT") return decodeToken(name, payload.replace(/^["']+|["']+$/g, ""));
  const p = jsonObject(payload);
  if (typeof p === "string") throw builtinErr(name, p);
  const sig = decodeSection(name, "signature", t.signature);
  return [header, p, sig.toString("hex")];
}

const HS: Record<string, string> = { HS256: "sha256", HS384: "sha384", HS512: "sha512" };
for (const [alg, hash] of Object.entries(HS)) {
  const name = `io.jwt.verify_${alg.toLowerCase()}`;
  register(name, 2, (a) => {
    const jwt = str(name, a, 0);
    const secret = str(name, a, 1);
    const t = splitToken(name, jwt);
    const mac = createHmac(hash, secret).update(`${t.header}.${t.payload}`).digest();
    const sig = decodeSection(name, "", t.signature);
    return sig.length === mac.length && timingSafeEqual(sig, mac);
  });
}

for (const alg of ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]) {
  const name = `io.jwt.verify_${alg.toLowerCase()}`;
  register(name, 2, (a) => {
    const t = splitToken(name, a[0] as Value);
    const keys = withKeyError(name, () => keysFromCertOrJWK(str(name, a, 1)));
    const sig = decodeSection(name, "", t.signature);
    const h = headerParams(name, decodeHeader(name, t));
    return verifyWithKeys(alg, h.alg, h.kid, keys, `${t.header}.${t.payload}`, sig);
  });
}

function withKeyError<T>(name: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof BuiltinError) throw e;
    throw builtinErr(name, (e as Error).message);
  }
}

interface Constraints {
  secret: string;
  keys: VerificationKey[] | undefined;
  alg: string;
  iss: string;
  aud: string;
  /** Nanoseconds since the epoch. */
  time: number | undefined;
}

/** OPA's parseTokenConstraints and validate: every constraint typed, exactly one of secret and cert. */
function constraints(name: string, c: RObject): Constraints {
  const out: Constraints = { secret: "", keys: undefined, alg: "", iss: "", aud: "", time: undefined };
  for (const [k, v] of c.entries()) {
    if (k === "cert") {
      if (typeof v !== "string") throw builtinErr(name, "cert constraint: must be a string");
      out.keys = withKeyError(name, () => keysFromCertOrJWK(v));
    } else if (k === "secret" || k === "alg" || k === "iss" || k === "aud") {
      if (typeof v !== "string") throw builtinErr(name, `${k} constraint: must be a string`);
      out[k] = v;
    } else if (k === "time") {
      if (!isNum(v)) throw builtinErr(name, "token time constraint: must be a number");
      if (toFloat(v) < 0) throw builtinErr(name, "token time constraint: must not be negative");
      out.time = toFloat(v);
    } else throw builtinErr(name, `unknown token validation constraint: ${typeof k === "string" ? k : toJSON(k)}`);
  }
  const count = (out.keys ? 1 : 0) + (out.secret !== "" ? 1 : 0);
  if (count > 1) throw builtinErr(name, "duplicate key constraints");
  if (count < 1) throw builtinErr(name, "no key constraint");
  return out;
}

/** A registered claim's audience matches: the string, or any string in the array. */
function audienceOk(aud: Value, want: string): boolean {
  if (typeof aud === "string") return aud === want;
  return Array.isArray(aud) && aud.some((x) => x === want);
}

register("io.jwt.decode_verify", 2, (a, ctx) => {
  const name = "io.jwt.decode_verify";
  const c = constraints(name, obj(name, a, 1));
  const unverified: Value = [false, new RObject(), new RObject()];
  let token: Value = a[0] as Value;
  let header: RObject;
  let payloadText: string;
  // RFC 7519 7.2: verify each level; a `cty: JWT` payload is the next token.
  for (;;) {
    const t = splitToken(name, token);
    header = decodeHeader(name, t);
    const h = headerParams(name, header);
    if (h.alg === "" || h.critUnknown) return unverified;
    if (c.alg !== "" && c.alg !== h.alg) return unverified;
    const sig = decodeSection(name, "", t.signature);
    const input = `${t.header}.${t.payload}`;
    const ok = c.keys ? verifyWithKeys(h.alg, h.alg, h.kid, c.keys, input, sig) : verifySignature(h.alg, Buffer.from(c.secret), input, sig);
    if (!ok) return unverified;
    payloadText = decodeSection(name, "payload", t.payload).toString("utf8");
    if (h.cty.toUpperCase() !== "JWT") break;
    token = payloadText;
  }
  const payload = jsonObject(payloadText);
  if (typeof payload === "string") throw builtinErr(name, payload);
  if (c.iss !== "" && payload.get("iss") !== c.iss) return unverified;
  const aud = payload.get("aud");
  if (aud !== undefined ? !audienceOk(aud, c.aud) : c.aud !== "") return unverified;
  const now = (c.time ?? Number(ctx.nowNs)) / 1e9;
  const exp = payload.get("exp");
  if (exp !== undefined) {
    if (!isNum(exp)) throw builtinErr(name, "exp value must be a number");
    if (compare(now, exp) >= 0) return unverified;
  }
  const nbf = payload.get("nbf");
  if (nbf !== undefined) {
    if (!isNum(nbf)) throw builtinErr(name, "nbf value must be a number");
    if (compare(now, nbf) < 0) return unverified;
  }
  return [true, header, payload];
});
