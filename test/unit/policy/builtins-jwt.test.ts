// io.jwt.* beyond OPA's conformance cases: error texts for malformed tokens and keys, what each
// verify_* built-in looks at, key choice in a JWK set, and io.jwt.decode_verify's constraint and
// claim checks. Tokens are signed here with node:crypto keys made for the test.
import { describe, expect, test } from "bun:test";
import { constants, createHmac, generateKeyPairSync, sign, type KeyObject } from "node:crypto";
import { rego, regoError } from "./rego-call.ts";

const b64 = (x: string | Buffer): string => Buffer.from(x).toString("base64url");
const json = (x: unknown): string => (typeof x === "string" ? x : JSON.stringify(x));

function hs256(header: unknown, payload: unknown, secret: string): string {
  const input = `${b64(json(header))}.${b64(json(payload))}`;
  return `${input}.${b64(createHmac("sha256", secret).update(input).digest())}`;
}

function signed(header: unknown, payload: unknown, key: KeyObject, opts: { hash?: string | null; pss?: number; ecdsa?: boolean } = {}): string {
  const input = `${b64(json(header))}.${b64(json(payload))}`;
  const k = opts.pss !== undefined ? { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: opts.pss } : opts.ecdsa ? { key, dsaEncoding: "ieee-p1363" as const } : key;
  return `${input}.${b64(sign(opts.hash === undefined ? "sha256" : opts.hash, Buffer.from(input), k))}`;
}

const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
const otherRsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
const ec = generateKeyPairSync("ec", { namedCurve: "P-256" });
const ed = generateKeyPairSync("ed25519");
const pem = (k: KeyObject): string => k.export({ type: "spki", format: "pem" }).toString();
const jwk = (k: KeyObject, extra: Record<string, string>): Record<string, unknown> => ({ ...k.export({ format: "jwk" }), ...extra });

const err = (message: string): { code: string; message: string } => ({ code: "eval_builtin_error", message });

describe("io.jwt.decode", () => {
  test("malformed tokens get OPA's messages", () => {
    const cases: [string, string][] = [
      ["abc", "encoded JWT had no period separators"],
      ["a.b.c.d.e", "encoded JWT must have 3 sections, found 5"],
      [`${b64("[1]")}.${b64("{}")}.`, "bad JWT header: decoded JSON type was not an Object"],
      [`${b64("{")}.${b64("{}")}.`, "bad JWT header: invalid JSON: unexpected EOF"],
      [`${b64("{'a': 1}")}.${b64("{}")}.`, "bad JWT header: invalid JSON: invalid character '\\'' looking for beginning of object key string"],
      [`${b64('{"alg":"HS256"} x')}.${b64("{}")}.`, "bad JWT header: invalid JSON: invalid character 'x' looking for beginning of value"],
      [`a*bc.${b64("{}")}.`, "JWT header had invalid encoding: illegal base64 data at input byte 1"],
      [`abcde.${b64("{}")}.`, "JWT header had invalid encoding: illegal base64url string: abcde"],
      [`${b64("{}")}.${b64("[]")}.`, "decoded JSON type was not an Object"],
      [`${b64("{}")}.${b64("nope")}.`, "invalid JSON: invalid character 'o' in literal null (expecting 'u')"],
      [`${b64("{}")}.${b64("{}")}.ab=c`, "JWT signature had invalid encoding: illegal base64 data at input byte 2"],
    ];
    for (const [token, message] of cases) expect(regoError("io.jwt.decode(input.t)", { input: { t: token } })).toEqual(err(`io.jwt.decode: ${message}`));
  });
  test("the payload is checked before the signature", () => {
    expect(regoError("io.jwt.decode(input.t)", { input: { t: `${b64("{}")}.${b64("1")}.@@` } }).message).toBe("io.jwt.decode: decoded JSON type was not an Object");
  });
  test("a token whose cty is JWT decodes to the nested token, quotes around it trimmed", () => {
    const inner = hs256({ alg: "HS256" }, { sub: "inner" }, "k");
    const outer = `${b64('{"alg":"HS256","cty":"JWT"}')}.${b64(`"${inner}"`)}.${b64("sig")}`;
    expect(rego("io.jwt.decode(input.t)", { input: { t: outer } })).toEqual([{ alg: "HS256" }, { sub: "inner" }, createHmac("sha256", "k").update(inner.split(".").slice(0, 2).join(".")).digest("hex")]);
  });
  test("numbers in claims stay exact", () => {
    const t = `${b64("{}")}.${b64('{"n": 123456789012345678901234567890, "f": 0.1}')}.`;
    expect(rego("io.jwt.decode(input.t)[1]", { input: { t } })).toEqual({ n: 123456789012345678901234567890n, f: 0.1 });
  });
  test("a non-string token is a type error; without strict errors a bad token is undefined", () => {
    expect(regoError("io.jwt.decode(input.t)", { input: { t: 1 } })).toEqual({ code: "eval_type_error", message: "io.jwt.decode: operand 1 must be string but got number" });
    expect(rego('io.jwt.decode("abc")', { strict: false })).toBe("undefined");
  });
});

describe("io.jwt.verify_*", () => {
  test("HS256 checks only the MAC: the header is never decoded", () => {
    const input = `not-base64!.${b64("{}")}`;
    const t = `${input}.${b64(createHmac("sha256", "s").update(input).digest())}`;
    expect(rego("io.jwt.verify_hs256(input.t, \"s\")", { input: { t } })).toBe(true);
    expect(rego("io.jwt.verify_hs256(input.t, \"other\")", { input: { t } })).toBe(false);
  });
  test("a bad signature encoding is Go's base64 error, without a prefix of its own", () => {
    expect(regoError('io.jwt.verify_hs256("e30.e30.ab$d", "s")')).toEqual(err("io.jwt.verify_hs256: illegal base64 data at input byte 2"));
    expect(regoError('io.jwt.verify_rs256("e30.e30.a", input.k)', { input: { k: pem(rsa.publicKey) } })).toEqual(err("io.jwt.verify_rs256: illegal base64url string: a"));
  });
  test("RS256, PS256 (any salt length), ES256 and EdDSA verify with a PEM public key", () => {
    const k = pem(rsa.publicKey);
    const rs = signed({ alg: "RS256" }, { a: 1 }, rsa.privateKey);
    expect(rego("io.jwt.verify_rs256(input.t, input.k)", { input: { t: rs, k } })).toBe(true);
    expect(rego("io.jwt.verify_rs256(input.t, input.k)", { input: { t: rs, k: pem(otherRsa.publicKey) } })).toBe(false);
    // The built-in's algorithm is used, whatever the header claims.
    expect(rego("io.jwt.verify_rs384(input.t, input.k)", { input: { t: rs, k } })).toBe(false);
    const ps = signed({ alg: "PS256" }, { a: 1 }, rsa.privateKey, { pss: 20 });
    expect(rego("io.jwt.verify_ps256(input.t, input.k)", { input: { t: ps, k } })).toBe(true);
    const es = signed({ alg: "ES256" }, { a: 1 }, ec.privateKey, { ecdsa: true });
    expect(rego("io.jwt.verify_es256(input.t, input.k)", { input: { t: es, k: pem(ec.publicKey) } })).toBe(true);
    expect(rego("io.jwt.verify_es256(input.t, input.k)", { input: { t: es, k: pem(rsa.publicKey) } })).toBe(false);
    const eddsa = signed({ alg: "EdDSA" }, { a: 1 }, ed.privateKey, { hash: null });
    expect(rego("io.jwt.verify_eddsa(input.t, input.k)", { input: { t: eddsa, k: pem(ed.publicKey) } })).toBe(true);
  });
  test("key material that is neither a certificate, a public key nor a JWK is an error", () => {
    const t = signed({ alg: "RS256" }, {}, rsa.privateKey);
    const cases: [string, string][] = [
      [`${pem(rsa.publicKey)}EXTRA`, "extra data after a PEM certificate block"],
      ["-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "failed to parse a PEM certificate"],
      ["-----BEGIN RSA PUBLIC KEY-----\nAAAA\n-----END RSA PUBLIC KEY-----\n", "failed to extract a Key from the PEM certificate"],
      ["-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "failed to parse a PEM public key"],
      ["not a key", "failed to parse a JWK key (set)"],
      ['{"kty": "RSA"}', "failed to parse a JWK key (set)"],
    ];
    for (const [k, message] of cases) {
      const e = regoError("io.jwt.verify_rs256(input.t, input.k)", { input: { t, k } });
      expect(e.code).toBe("eval_builtin_error");
      expect(e.message).toStartWith(`io.jwt.verify_rs256: ${message}`);
    }
  });
  test("in a JWK set a matching kid picks the only key tried; otherwise keys of another alg are skipped", () => {
    const keys = { keys: [jwk(otherRsa.publicKey, { kid: "a", alg: "RS256" }), jwk(rsa.publicKey, { kid: "b", alg: "RS256" })] };
    const k = JSON.stringify(keys);
    expect(rego("io.jwt.verify_rs256(input.t, input.k)", { input: { t: signed({ alg: "RS256", kid: "b" }, {}, rsa.privateKey), k } })).toBe(true);
    expect(rego("io.jwt.verify_rs256(input.t, input.k)", { input: { t: signed({ alg: "RS256", kid: "a" }, {}, rsa.privateKey), k } })).toBe(false);
    expect(rego("io.jwt.verify_rs256(input.t, input.k)", { input: { t: signed({ alg: "RS256" }, {}, rsa.privateKey), k } })).toBe(true);
    const only512 = JSON.stringify({ keys: [jwk(rsa.publicKey, { alg: "RS512" })] });
    expect(rego("io.jwt.verify_rs256(input.t, input.k)", { input: { t: signed({ alg: "RS256" }, {}, rsa.privateKey), k: only512 } })).toBe(false);
  });
  test("header fields must have their types; crit does not matter to verify_*", () => {
    const k = pem(rsa.publicKey);
    expect(regoError("io.jwt.verify_rs256(input.t, input.k)", { input: { t: signed({ alg: "RS256", typ: 1 }, {}, rsa.privateKey), k } })).toEqual(err("io.jwt.verify_rs256: typ: must be a string"));
    expect(regoError("io.jwt.verify_rs256(input.t, input.k)", { input: { t: signed({ alg: "RS256", crit: "x" }, {}, rsa.privateKey), k } })).toEqual(err("io.jwt.verify_rs256: crit: must be a list"));
    expect(rego("io.jwt.verify_rs256(input.t, input.k)", { input: { t: signed({ alg: "RS256", crit: ["x"], x: 1 }, {}, rsa.privateKey), k } })).toBe(true);
  });
});

describe("io.jwt.decode_verify", () => {
  const NOW = 1_700_000_000n * 1_000_000_000n;
  const dv = (t: string, c: Record<string, unknown>): unknown => rego("io.jwt.decode_verify(input.t, input.c)", { input: { t, c }, nowNs: NOW });
  const dvErr = (t: string, c: Record<string, unknown>): { code: string; message: string } => regoError("io.jwt.decode_verify(input.t, input.c)", { input: { t, c }, nowNs: NOW });
  const UNVERIFIED = [false, {}, {}];
  const ok = hs256({ alg: "HS256" }, { sub: "x" }, "s");

  test("constraints are checked, in key order, before the token", () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ secret: "s", foo: 1 }, "unknown token validation constraint: foo"],
      [{ secret: "s", iss: 1 }, "iss constraint: must be a string"],
      [{ secret: "s", aud: ["a"] }, "aud constraint: must be a string"],
      [{ secret: 1 }, "secret constraint: must be a string"],
      [{ cert: 1 }, "cert constraint: must be a string"],
      [{ secret: "s", time: "now" }, "token time constraint: must be a number"],
      [{ secret: "s", time: -1 }, "token time constraint: must not be negative"],
      [{ secret: "s", cert: pem(rsa.publicKey) }, "duplicate key constraints"],
      [{ alg: "HS256" }, "no key constraint"],
      [{ secret: "" }, "no key constraint"],
    ];
    for (const [c, message] of cases) expect(dvErr("not a token", c)).toEqual(err(`io.jwt.decode_verify: ${message}`));
  });
  test("exp and nbf must be numbers, but only once the signature holds", () => {
    expect(dvErr(hs256({ alg: "HS256" }, { exp: "tomorrow" }, "s"), { secret: "s" })).toEqual(err("io.jwt.decode_verify: exp value must be a number"));
    expect(dvErr(hs256({ alg: "HS256" }, { nbf: true }, "s"), { secret: "s" })).toEqual(err("io.jwt.decode_verify: nbf value must be a number"));
    expect(dv(hs256({ alg: "HS256" }, { exp: "tomorrow" }, "s"), { secret: "wrong" })).toEqual(UNVERIFIED);
    expect(rego("io.jwt.decode_verify(input.t, {\"secret\": \"s\"})", { input: { t: hs256({ alg: "HS256" }, { exp: null }, "s") }, strict: false })).toBe("undefined");
  });
  test("exp is exclusive and nbf inclusive of the current time", () => {
    const now = 1_700_000_000;
    expect(dv(hs256({ alg: "HS256" }, { exp: now }, "s"), { secret: "s" })).toEqual(UNVERIFIED);
    expect((dv(hs256({ alg: "HS256" }, { exp: now + 0.5 }, "s"), { secret: "s" }) as unknown[])[0]).toBe(true);
    expect((dv(hs256({ alg: "HS256" }, { nbf: now }, "s"), { secret: "s" }) as unknown[])[0]).toBe(true);
    expect(dv(hs256({ alg: "HS256" }, { nbf: now + 1 }, "s"), { secret: "s" })).toEqual(UNVERIFIED);
    // The time constraint (ns) replaces the clock.
    expect((dv(hs256({ alg: "HS256" }, { nbf: now + 1 }, "s"), { secret: "s", time: (now + 2) * 1e9 }) as unknown[])[0]).toBe(true);
  });
  test("iss and aud", () => {
    expect(dv(hs256({ alg: "HS256" }, { iss: "a" }, "s"), { secret: "s", iss: "b" })).toEqual(UNVERIFIED);
    expect(dv(hs256({ alg: "HS256" }, {}, "s"), { secret: "s", iss: "b" })).toEqual(UNVERIFIED);
    expect(dv(hs256({ alg: "HS256" }, { iss: 1 }, "s"), { secret: "s", iss: "1" })).toEqual(UNVERIFIED);
    expect(dv(hs256({ alg: "HS256" }, { aud: ["x", 2, "me"] }, "s"), { secret: "s", aud: "me" })).toEqual([true, { alg: "HS256" }, { aud: ["x", 2, "me"] }]);
    // A token for an audience is not valid where no audience is expected, nor a numeric audience anywhere.
    expect(dv(hs256({ alg: "HS256" }, { aud: "me" }, "s"), { secret: "s" })).toEqual(UNVERIFIED);
    expect(dv(hs256({ alg: "HS256" }, { aud: 1 }, "s"), { secret: "s", aud: "1" })).toEqual(UNVERIFIED);
    expect(dv(hs256({ alg: "HS256" }, {}, "s"), { secret: "s", aud: "me" })).toEqual(UNVERIFIED);
  });
  test("header: alg required, unknown critical headers reject, header field types checked", () => {
    expect(dv(hs256({ typ: "JWT" }, {}, "s"), { secret: "s" })).toEqual(UNVERIFIED);
    expect(dv(hs256({ alg: "HS256", crit: ["x"], x: 1 }, {}, "s"), { secret: "s" })).toEqual(UNVERIFIED);
    expect((dv(hs256({ alg: "HS256", crit: ["kid"], kid: "1" }, {}, "s"), { secret: "s" }) as unknown[])[0]).toBe(true);
    expect(dvErr(hs256({ alg: "HS256", crit: [] }, {}, "s"), { secret: "s" })).toEqual(err("io.jwt.decode_verify: crit: must be a nonempty list"));
    expect(dvErr(hs256({ alg: 256 }, {}, "s"), { secret: "s" })).toEqual(err("io.jwt.decode_verify: alg: must be a string"));
    expect(dv(ok, { secret: "s", alg: "HS512" })).toEqual(UNVERIFIED);
  });
  test("the header's alg picks the check: an HS token against a certificate, or an RS token against a secret, is unverified", () => {
    expect(dv(ok, { cert: pem(rsa.publicKey) })).toEqual(UNVERIFIED);
    const rs = signed({ alg: "RS256" }, { sub: "x" }, rsa.privateKey);
    expect(dv(rs, { secret: "s" })).toEqual(UNVERIFIED);
    expect(dv(rs, { cert: pem(rsa.publicKey) })).toEqual([true, { alg: "RS256" }, { sub: "x" }]);
    expect(dv(rs, { cert: JSON.stringify({ keys: [jwk(rsa.publicKey, { alg: "RS256" })] }) })).toEqual([true, { alg: "RS256" }, { sub: "x" }]);
  });
  test("a nested token (cty JWT, any case) must verify too, and its own header and claims are returned", () => {
    const inner = hs256({ alg: "HS256", typ: "JWT" }, { sub: "inner" }, "s");
    const input = `${b64('{"alg":"HS256","cty":"jwt"}')}.${b64(inner)}`;
    const outer = `${input}.${b64(createHmac("sha256", "s").update(input).digest())}`;
    expect(dv(outer, { secret: "s" })).toEqual([true, { alg: "HS256", typ: "JWT" }, { sub: "inner" }]);
    const badInner = `${inner.slice(0, inner.lastIndexOf("."))}.${b64("forged")}`;
    const input2 = `${b64('{"alg":"HS256","cty":"JWT"}')}.${b64(badInner)}`;
    expect(dv(`${input2}.${b64(createHmac("sha256", "s").update(input2).digest())}`, { secret: "s" })).toEqual(UNVERIFIED);
  });
  test("a payload that is not an object is an error once the signature holds", () => {
    expect(dvErr(hs256({ alg: "HS256" }, "[1]", "s"), { secret: "s" })).toEqual(err("io.jwt.decode_verify: decoded JSON type was not an Object"));
  });
});

describe("io.jwt.encode_sign and encode_sign_raw", () => {
  const oct = { kty: "oct", k: b64("secret") };
  test("encode_sign serializes like Go's json.Marshal (sorted keys, <, > and & escaped) and signs with the first key", () => {
    const t = rego('io.jwt.encode_sign({"typ": "JWT", "alg": "HS256"}, {"b": "<&>", "a": {2, 1}}, input.k)', { input: { k: { keys: [oct] } } }) as string;
    const [h, p] = t.split(".") as [string, string];
    expect(Buffer.from(h, "base64url").toString()).toBe('{"alg":"HS256","typ":"JWT"}');
    expect(Buffer.from(p, "base64url").toString()).toBe('{"a":[1,2],"b":"\\u003c\\u0026\\u003e"}');
    expect(t).toBe(hs256('{"alg":"HS256","typ":"JWT"}', '{"a":[1,2],"b":"\\u003c\\u0026\\u003e"}', "secret"));
  });
  test("a signed token verifies with io.jwt.decode_verify", () => {
    const es = JSON.stringify(ec.privateKey.export({ format: "jwk" }));
    expect(rego('io.jwt.decode_verify(io.jwt.encode_sign_raw(`{"alg":"ES256"}`, `{"sub":"x"}`, input.k), {"cert": input.pub})', { input: { k: es, pub: pem(ec.publicKey) } })).toEqual([true, { alg: "ES256" }, { sub: "x" }]);
  });
  test("the header's alg must be known, and a JWT payload must be JSON", () => {
    const k = JSON.stringify(oct);
    const e = (h: string, p: string): { code: string; message: string } => regoError("io.jwt.encode_sign_raw(input.h, input.p, input.k)", { input: { h, p, k } });
    expect(e('{"typ":"JWT"}', "{}")).toEqual(err(`io.jwt.encode_sign_raw: missing or invalid 'alg' header: jwsbb: header "alg" not found`));
    expect(e('{"alg":"none"}', "{}")).toEqual(err("io.jwt.encode_sign_raw: unknown JWS algorithm: none"));
    expect(e('{"alg":"HS256"}', "not json")).toEqual(err("io.jwt.encode_sign_raw: type is JWT but payload is not JSON"));
    expect(e('{"alg":"HS256","typ":"JWT"}', "{} {}")).toEqual(err("io.jwt.encode_sign_raw: type is JWT but payload is not JSON"));
    expect(rego("io.jwt.encode_sign_raw(`{\"alg\":\"HS256\",\"typ\":\"text/plain\"}`, \"hello\", input.k)", { input: { k } })).toBe(hs256('{"alg":"HS256","typ":"text/plain"}', "hello", "secret"));
  });
  test("an empty key set or a key of the wrong kind is an error", () => {
    expect(regoError('io.jwt.encode_sign({"alg": "HS256"}, {}, {"keys": []})')).toEqual(err("io.jwt.encode_sign: no keys found in JWK set"));
    expect(regoError('io.jwt.encode_sign({"alg": "RS256"}, {}, input.k)', { input: { k: oct } }).message).toStartWith("io.jwt.encode_sign: failed to sign");
  });
});
