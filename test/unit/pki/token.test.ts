import { beforeAll, describe, expect, test } from "bun:test";
import { decodeToken, encodeToken, TokenError, validateToken, type PoolToken } from "../../../src/pki/token.ts";
import { b64, DAY, leaks, makeCertificate, makeKey, NOW, tokenJson } from "../config/pki-fixtures.ts";

let certificate = "";
let ca = "";
beforeAll(async () => {
  const key = await makeKey("ec");
  certificate = await makeCertificate(key, new Date(NOW.getTime() - DAY), new Date(NOW.getTime() + DAY));
  ca = await makeCertificate(await makeKey("ec"), new Date(NOW.getTime() - DAY), new Date(NOW.getTime() + 10 * DAY), "ca");
});

const encode = (json: unknown) => b64(JSON.stringify(json));

/** The error a value gives; asserts it carries no part of the value (encoded or decoded). */
function failure(value: string): TokenError {
  try {
    decodeToken(value);
  } catch (err) {
    expect(err).toBeInstanceOf(TokenError);
    const e = err as TokenError;
    expect(e.message).not.toContain("\n");
    const decoded = Buffer.from(value, "base64").toString("utf8");
    for (const secret of [value, decoded]) {
      expect(leaks(e.message, secret)).toBe(false);
      expect(leaks(String(e.stack), secret)).toBe(false);
    }
    return e;
  }
  throw new Error("expected decodeToken to throw");
}

test("a token round-trips through encodeToken / decodeToken", () => {
  const token = tokenJson(certificate, ca) as PoolToken;
  const encoded = encodeToken(token);
  expect(encoded).toMatch(/^[A-Za-z0-9+/]+=*$/);
  expect(decodeToken(encoded)).toEqual(token);
  // Line-wrapped (base64 without -w 0), unpadded and URL-alphabet variants decode too.
  expect(decodeToken(encoded.replace(/(.{76})/g, "$1\n"))).toEqual(token);
  expect(decodeToken(encoded.replace(/=+$/, ""))).toEqual(token);
  expect(decodeToken(Buffer.from(JSON.stringify(token)).toString("base64url"))).toEqual(token);
});

test("a token without a broker (long-poll only) is valid; unknown fields are dropped", () => {
  const { broker: _b, ...json } = tokenJson(certificate, ca, { extra: "future field" });
  const token = decodeToken(encode(json));
  expect(token.broker).toBeUndefined();
  expect("extra" in token).toBe(false);
});

describe("each failure kind has its own code, names the field and never echoes the token", () => {
  test("empty", () => expect(failure(" ").code).toBe("token-empty"));

  test("not base64", () => {
    expect(failure("not a token!").code).toBe("token-not-base64");
    const raw = failure(JSON.stringify(tokenJson(certificate, ca)));
    expect(raw.code).toBe("token-not-base64");
    expect(raw.message).toContain("it looks like raw JSON");
  });

  test("not JSON (text, and binary that is not UTF-8)", () => {
    expect(failure(b64("pool=abc; broker=def")).code).toBe("token-not-json");
    expect(failure(Buffer.from([0xff, 0xfe, 0x00, 0x81, 0x92]).toString("base64")).code).toBe("token-not-json");
  });

  test("unsupported version", () => {
    const e = failure(encode(tokenJson(certificate, ca, { version: 2 })));
    expect(e.code).toBe("token-version-unsupported");
    expect(e.message).toContain("token version 2 is not supported");
    const odd = failure(encode(tokenJson(certificate, ca, { version: "one-point-oh-secret-value" })));
    expect(odd.code).toBe("token-version-unsupported");
    expect(odd.message).toContain("token version is not supported");
  });

  test.each([
    ["version", { version: undefined }, "version is missing"],
    ["pool", { pool: undefined }, "pool is missing"],
    ["pool", { pool: "a/b+#" }, "pool must be a pool id"],
    ["pool", { pool: 42 }, "pool must be a string"],
    ["broker", { broker: "mqtts://x:1" }, "broker must be an object"],
    ["broker.endpoint", { broker: { namespace: "spacelift" } }, "broker.endpoint is missing"],
    ["broker.endpoint", { broker: { endpoint: "tcp://broker:1883", namespace: "spacelift" } }, "broker.endpoint must be mqtts://host:port"],
    ["broker.endpoint", { broker: { endpoint: "mqtts://broker", namespace: "spacelift" } }, "broker.endpoint must be mqtts://host:port"],
    ["broker.namespace", { broker: { endpoint: "mqtts://b:8883", namespace: "a/#" } }, "broker.namespace must be an MQTT topic prefix"],
    ["comms_url", { comms_url: undefined }, "comms_url is missing"],
    ["comms_url", { comms_url: "mothership:8443" }, "comms_url must be an http(s) URL"],
    ["certificate", { certificate: undefined }, "certificate is missing"],
    ["certificate", { certificate: "MIIB..." }, "certificate must be a PEM certificate"],
    ["ca", { ca: 7 }, "ca must be a PEM string"],
  ])("field %s: %p", (_field, overrides, expected) => {
    const json = Object.fromEntries(Object.entries(tokenJson(certificate, ca, overrides)).filter(([, v]) => v !== undefined));
    const e = failure(encode(json));
    expect(e.code).toBe("token-field-invalid");
    expect(e.message).toContain(`token field ${expected}`);
  });

  test("several bad fields are all named in the one line", () => {
    const e = failure(encode({ version: 1, certificate, ca }));
    expect(e.message).toContain("pool is missing, comms_url is missing");
  });

  test("JSON that is not an object", () => {
    expect(failure(encode([1, 2, 3])).code).toBe("token-field-invalid");
    expect(failure(encode("just a string")).code).toBe("token-field-invalid");
  });

  test("certificate or CA PEM that does not parse", () => {
    const broken = "-----BEGIN CERTIFICATE-----\nTUlJQmJhZGJhZGJhZA==\n-----END CERTIFICATE-----\n";
    const cert = failure(encode(tokenJson(broken, ca)));
    expect(cert.code).toBe("token-certificate-invalid");
    expect(cert.message).toContain("token field certificate is not a parsable PEM certificate");
    const bundle = failure(encode(tokenJson(certificate, ca + broken)));
    expect(bundle.code).toBe("token-certificate-invalid");
    expect(bundle.message).toContain("token field ca");
  });
});

test("encodeToken refuses an invalid token (the mothership cannot hand out a broken one)", () => {
  expect(() => encodeToken({ ...(tokenJson(certificate, ca) as PoolToken), comms_url: "nope" })).toThrow(TokenError);
  expect(() => validateToken(null)).toThrow(TokenError);
});
