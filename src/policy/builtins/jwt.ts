/** io.jwt.decode, io.jwt.decode_verify and io.jwt.verify_* (HS*, RS*, PS*, ES*), via node:crypto. */
import { createHmac, createPrivateKey, createPublicKey, sign as cryptoSign, timingSafeEqual, verify as cryptoVerify, type KeyObject } from "node:crypto";
import { isNum, toFloat } from "../number.ts";
import { RObject, fromJS, toJSON, type Value } from "../value.ts";
import { builtinErr, obj, register, str } from "./registry.ts";

function b64url(s: string): Buffer {
  return Buffer.from(s.replace(/-/g, "+").replace(/_/g, "/"), "base64");
}

/** Go's base64.RawURLEncoding strictness: the first byte outside the alphabet is an error. */
function strictB64url(name: string, what: string, s: string): Buffer {
  const bad = s.search(/[^A-Za-z0-9_-]/);
  const at = bad >= 0 ? bad : s.length % 4 === 1 ? s.length - 1 : -1;
  if (at >= 0) throw builtinErr(name, `JWT ${what} had invalid encoding: illegal base64 data at input byte ${at}`);
  return b64url(s);
}

interface Parts {
  header: RObject;
  payload: Value;
  sig: Buffer;
  signed: string;
  headerJson: Record<string, unknown>;
}

function split(name: string, token: string): Parts {
  if (!token.includes(".")) throw builtinErr(name, "encoded JWT had no period separators");
  const parts = token.split(".");
  if (parts.length === 5) throw builtinErr(name, "JWT is a JWE object, which is not supported");
  if (parts.length !== 3) throw builtinErr(name, `encoded JWT must have 3 sections, found ${parts.length}`);
  const [h, p, s] = parts as [string, string, string];
  let headerJson: Record<string, unknown>;
  let payload: unknown;
  const headerBytes = strictB64url(name, "header", h);
  const payloadBytes = strictB64url(name, "payload", p);
  const sigBytes = strictB64url(name, "signature", s);
  try {
    headerJson = JSON.parse(headerBytes.toString("utf8")) as Record<string, unknown>;
  } catch {
    throw builtinErr(name, "JWT header had invalid encoding");
  }
  if (headerJson.enc !== undefined) throw builtinErr(name, "JWT is a JWE object, which is not supported");
  try {
    payload = JSON.parse(payloadBytes.toString("utf8"));
  } catch {
    throw builtinErr(name, "JWT payload had invalid encoding");
  }
  if (headerJson.cty === "JWT") return split(name, String(payload));
  return { header: fromJS(headerJson) as RObject, payload: fromJS(payload), sig: sigBytes, signed: `${h}.${p}`, headerJson };
}

const hashes: Record<string, string> = { "256": "sha256", "384": "sha384", "512": "sha512" };

function publicKeys(material: string): KeyObject[] {
  try {
    if (material.trim().startsWith("{")) {
      const jwk = JSON.parse(material) as { keys?: unknown[] };
      const keys = jwk.keys ?? [jwk];
      return keys.map((k) => createPublicKey({ key: k as never, format: "jwk" }));
    }
    return [createPublicKey(material)];
  } catch {
    return [];
  }
}

function verifySig(alg: string, parts: Parts, key: string): boolean {
  // A critical header we do not understand makes the token unverifiable (RFC 7515 4.1.11).
  if (parts.headerJson.crit !== undefined) return false;
  if (alg === "EdDSA") {
    for (const k of publicKeys(key)) {
      try {
        if (cryptoVerify(null, Buffer.from(parts.signed), k, parts.sig)) return true;
      } catch {
        // not an Ed25519 key
      }
    }
    return false;
  }
  const bits = alg.slice(2);
  const hash = hashes[bits];
  if (!hash) return false;
  const data = Buffer.from(parts.signed);
  if (alg.startsWith("HS")) {
    const mac = createHmac(hash, key).update(data).digest();
    return mac.length === parts.sig.length && timingSafeEqual(mac, parts.sig);
  }
  for (const k of publicKeys(key)) {
    try {
      if (alg.startsWith("RS") && cryptoVerify(hash, data, k, parts.sig)) return true;
      if (alg.startsWith("PS") && cryptoVerify(hash, data, { key: k, padding: 6, saltLength: Number(bits) / 8 }, parts.sig)) return true;
      if (alg.startsWith("ES") && cryptoVerify(hash, data, { key: k, dsaEncoding: "ieee-p1363" }, parts.sig)) return true;
    } catch {
      // a key of the wrong type does not verify
    }
  }
  return false;
}

register("io.jwt.decode", 1, (a) => {
  const p = split("io.jwt.decode", str("io.jwt.decode", a, 0));
  return [p.header, p.payload, p.sig.toString("hex")];
});

for (const alg of ["HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"]) {
  const name = `io.jwt.verify_${alg.toLowerCase()}`;
  register(name, 2, (a) => {
    const p = split(name, str(name, a, 0));
    return verifySig(alg, p, str(name, a, 1));
  });
}

register("io.jwt.decode_verify", 2, (a, ctx) => {
  const name = "io.jwt.decode_verify";
  const token = str(name, a, 0);
  const c = obj(name, a, 1);
  const unverified: Value = [false, new RObject(), new RObject()];
  for (const k of c.keys()) {
    if (typeof k !== "string" || !["secret", "cert", "alg", "iss", "aud", "time"].includes(k)) throw builtinErr(name, `unknown token validation constraint: ${String(k)}`);
  }
  const p = split(name, token);
  const alg = typeof p.headerJson.alg === "string" ? p.headerJson.alg : "";
  const wantAlg = c.get("alg");
  if (typeof wantAlg === "string" && wantAlg !== alg) return unverified;
  const secret = c.get("secret");
  const cert = c.get("cert");
  const key = alg.startsWith("HS") ? secret : cert;
  if (typeof key !== "string" || !verifySig(alg, p, key)) return unverified;
  const payload = p.payload instanceof RObject ? p.payload : new RObject();
  const nowRaw = c.get("time");
  const now = isNum(nowRaw) ? toFloat(nowRaw) / 1e9 : Number(ctx.nowNs) / 1e9;
  const exp = payload.get("exp");
  if (exp !== undefined && (!isNum(exp) || now >= toFloat(exp))) return unverified;
  const nbf = payload.get("nbf");
  if (nbf !== undefined && (!isNum(nbf) || now < toFloat(nbf))) return unverified;
  const iss = c.get("iss");
  if (iss !== undefined && payload.get("iss") !== iss) return unverified;
  const aud = c.get("aud");
  const tokAud = payload.get("aud");
  if (aud !== undefined) {
    if (tokAud === undefined) return unverified;
    const auds = Array.isArray(tokAud) ? tokAud : [tokAud];
    if (!auds.includes(aud)) return unverified;
  } else if (tokAud !== undefined) return unverified;
  return [true, p.header, p.payload];
});

register("io.jwt.encode_sign", 3, (a) => {
  const name = "io.jwt.encode_sign";
  const header = obj(name, a, 0);
  const payload = a[1] as Value;
  const key = obj(name, a, 2);
  const alg = header.get("alg");
  if (typeof alg !== "string") throw builtinErr(name, "missing alg header");
  const enc = (v: Value): string => Buffer.from(toJSON(v)).toString("base64url");
  const signed = `${enc(header)}.${enc(payload)}`;
  let sig: Buffer;
  const hash = hashes[alg.slice(2)] ?? "sha256";
  if (alg.startsWith("HS")) {
    const k = key.get("k");
    if (typeof k !== "string") throw builtinErr(name, "missing k in oct key");
    sig = createHmac(hash, b64url(k)).update(signed).digest();
  } else {
    const jwk = JSON.parse(toJSON(key)) as object;
    const pk = createPrivateKey({ key: jwk as never, format: "jwk" });
    if (alg === "EdDSA") sig = cryptoSign(null, Buffer.from(signed), pk);
    else if (alg.startsWith("ES")) sig = cryptoSign(hash, Buffer.from(signed), { key: pk, dsaEncoding: "ieee-p1363" });
    else if (alg.startsWith("PS")) sig = cryptoSign(hash, Buffer.from(signed), { key: pk, padding: 6, saltLength: Number(alg.slice(2)) / 8 });
    else sig = cryptoSign(hash, Buffer.from(signed), pk);
  }
  return `${signed}.${sig.toString("base64url")}`;
});
