// The network and credential-file variables of the launcher configuration: SPACELIFT_TOKEN_FILE and
// SPACELIFT_POOL_PRIVATE_KEY_FILE (both forms, both at once, unreadable files), the extra CAs in both
// forms, the proxy variables and NO_PROXY matching (src/transport/proxy.ts), and which connection
// errors count as a refusal of the pool's credentials.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadLauncherConfig } from "../../../src/config/launcher-config.ts";
import { mqttRefusal, pollRefusal } from "../../../src/transport/refusals.ts";
import { proxyFor } from "../../../src/transport/proxy.ts";
import { runUnprivileged } from "../../support/unprivileged.ts";
import { lines, makeFixture, problemsOf, type Fixture } from "./config-env.ts";
import { NOW } from "./pki-fixtures.ts";

let f: Fixture;
beforeAll(async () => {
  f = await makeFixture();
});
afterAll(() => f.cleanup());

const file = (name: string, content: string, mode = 0o600) => {
  const path = join(f.dir, name);
  writeFileSync(path, content, { mode });
  chmodSync(path, mode);
  return path;
};

test("the token and key from files work like the variables", () => {
  const env = { SPACELIFT_TOKEN_FILE: file("token", `${f.token}\n`), SPACELIFT_POOL_PRIVATE_KEY_FILE: file("key.pem", f.keyPem), PATH: "/usr/bin" };
  const config = loadLauncherConfig(env, { now: NOW });
  expect(config.credentials?.token.pool).toBe(loadLauncherConfig(f.base, { now: NOW }).credentials?.token.pool);
  expect(config.credentials?.key.pem).toBeDefined();
  // Mixed: the token from a file, the key from the variable.
  expect(problemsOf({ SPACELIFT_TOKEN_FILE: file("token2", f.token), SPACELIFT_POOL_PRIVATE_KEY: f.keyB64 })).toEqual([]);
});

test("both forms at once is one clear error on the _FILE variable; neither names both", () => {
  const both = lines(problemsOf({ ...f.base, SPACELIFT_TOKEN_FILE: file("token3", f.token) }));
  expect(both).toEqual(["SPACELIFT_TOKEN_FILE: is set together with SPACELIFT_TOKEN; give exactly one of them (unset SPACELIFT_TOKEN to keep the secret out of the environment)"]);
  const neither = lines(problemsOf({ SPACELIFT_POOL_PRIVATE_KEY: f.keyB64 }));
  expect(neither[0]).toStartWith("SPACELIFT_TOKEN: is not set; give the token printed by `mothership pool create`, or SPACELIFT_TOKEN_FILE");
});

test("a missing, empty, directory or foreign-key file is a problem naming the variable, never its content", () => {
  const missing = lines(problemsOf({ SPACELIFT_TOKEN_FILE: join(f.dir, "nope"), SPACELIFT_POOL_PRIVATE_KEY: f.keyB64 }));
  expect(missing).toEqual([expect.stringMatching(/^SPACELIFT_TOKEN_FILE: ".*nope" does not exist; give the path of a file/)]);
  mkdirSync(join(f.dir, "adir"), { recursive: true });
  expect(lines(problemsOf({ SPACELIFT_TOKEN: f.token, SPACELIFT_POOL_PRIVATE_KEY_FILE: join(f.dir, "adir") }))[0]).toMatch(/^SPACELIFT_POOL_PRIVATE_KEY_FILE: ".*adir" is (not a regular file|a directory)/);
  expect(lines(problemsOf({ SPACELIFT_TOKEN: f.token, SPACELIFT_POOL_PRIVATE_KEY_FILE: file("empty", "\n") }))[0]).toMatch(/^SPACELIFT_POOL_PRIVATE_KEY_FILE: ".*empty" is empty/);
  const other = lines(problemsOf({ SPACELIFT_TOKEN: f.token, SPACELIFT_POOL_PRIVATE_KEY_FILE: file("other.key", Buffer.from(f.otherKeyB64, "base64").toString()) }));
  expect(other[0]).toStartWith("SPACELIFT_POOL_PRIVATE_KEY_FILE: the private key does not match the pool certificate");
  expect(other.join("\n")).not.toContain("PRIVATE KEY-----");
});

test("a file this user may not read is named as such (as nobody)", () => {
  const path = file("root-only-token", f.token, 0o600);
  chmodSync(f.dir, 0o755);
  const script = `const { loadLauncherConfig } = await import(${JSON.stringify(join(import.meta.dir, "../../../src/config/launcher-config.ts"))});
try { loadLauncherConfig({ SPACELIFT_TOKEN_FILE: ${JSON.stringify(path)}, SPACELIFT_POOL_PRIVATE_KEY: ${JSON.stringify(f.keyB64)} }, { now: new Date(${NOW.getTime()}) }); console.log("loaded"); } catch (e) { console.log(e.message); }`;
  const out = runUnprivileged(script).stdout;
  expect(out).toMatch(/^SPACELIFT_TOKEN_FILE: ".*root-only-token" is not readable by this user \(uid 65534\)/);
  expect(out).not.toContain(f.token.slice(0, 40));
});

test("extra CAs: a PEM bundle and the documents' base64 JSON add up; bad ones are clear errors", () => {
  const bundle = file("bundle.pem", f.ca, 0o644);
  const json = Buffer.from(JSON.stringify({ caCertificates: [Buffer.from(f.certificate).toString("base64")] })).toString("base64");
  const config = loadLauncherConfig({ ...f.base, SPACELIFT_ADDITIONAL_CA_CERTIFICATES_FILE: bundle, SPACELIFT_ADDITIONAL_CA_CERTIFICATES: json }, { now: NOW });
  expect(config.trust.additionalCas).toHaveLength(2);
  expect(config.trust.additionalCasFile).toBe(bundle);
  const bad = (env: Record<string, string>) => lines(problemsOf({ ...f.base, ...env }));
  expect(bad({ SPACELIFT_ADDITIONAL_CA_CERTIFICATES: "not base64!" })).toEqual([expect.stringMatching(/^SPACELIFT_ADDITIONAL_CA_CERTIFICATES: is not base64; give base64 of \{"caCertificates"/)]);
  expect(bad({ SPACELIFT_ADDITIONAL_CA_CERTIFICATES: Buffer.from('{"certs": []}').toString("base64") })[0]).toContain("has no non-empty caCertificates array");
  expect(bad({ SPACELIFT_ADDITIONAL_CA_CERTIFICATES_FILE: file("key-in-bundle.pem", f.keyPem) })[0]).toMatch(/^SPACELIFT_ADDITIONAL_CA_CERTIFICATES_FILE: ".*" holds a (RSA )?PRIVATE KEY block; give only CA certificates/);
  expect(bad({ SPACELIFT_ADDITIONAL_CA_CERTIFICATES_FILE: file("junk.pem", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n") })[0]).toContain("does not parse as X.509");
});

test("proxy variables: upper case wins, empty is unset, credentials never shown, bad ones named", () => {
  const c = loadLauncherConfig({ ...f.base, HTTPS_PROXY: "http://u:secret-pw@proxy.corp:3128", https_proxy: "http://other:1", HTTP_PROXY: "", http_proxy: "proxy.corp:8080", no_proxy: ".internal, 10.0.0.0/8,*.svc:8443" }, { now: NOW });
  expect(c.proxy.https).toMatchObject({ variable: "HTTPS_PROXY", shown: "http://***@proxy.corp:3128" });
  expect(c.proxy.http).toMatchObject({ variable: "http_proxy", url: "http://proxy.corp:8080" });
  expect(c.proxy.noProxy.entries).toHaveLength(3);
  const bad = lines(problemsOf({ ...f.base, https_proxy: "socks5://u:pw@p:1080", NO_PROXY: "ok.example,bad host/x" }));
  expect(bad).toContain('HTTPS_PROXY: (set as https_proxy) "socks5://***@p:1080" is not an http:// or https:// proxy (SOCKS is not supported); e.g. http://proxy.internal:3128 or http://user:password@proxy.internal:3128');
  expect(bad.some((l) => l.startsWith('NO_PROXY: entry "bad" is not a host name') || l.includes('"host/x"'))).toBe(true);
  expect(bad.join("\n")).not.toContain("pw");
});

test("NO_PROXY matching: suffixes, leading dots, *, ports, IPs and CIDR ranges; https and mqtts use HTTPS_PROXY", () => {
  const settings = (noProxy: string) =>
    loadLauncherConfig({ ...f.base, HTTPS_PROXY: "http://proxy:3128", HTTP_PROXY: "http://plain-proxy:3128", NO_PROXY: noProxy }, { now: NOW }).proxy;
  const via = (noProxy: string, url: string) => proxyFor(settings(noProxy), new URL(url))?.url ?? "direct";
  expect(via("", "https://api.corp.example:8443")).toBe("http://proxy:3128");
  expect(via("", "mqtts://mq.corp.example:8883")).toBe("http://proxy:3128");
  expect(via("", "http://api.corp.example")).toBe("http://plain-proxy:3128");
  expect(via("corp.example", "https://corp.example")).toBe("direct");
  expect(via("corp.example", "https://api.corp.example")).toBe("direct");
  expect(via("corp.example", "https://notcorp.example")).toBe("http://proxy:3128");
  expect(via(".corp.example", "https://corp.example")).toBe("http://proxy:3128");
  expect(via("*.corp.example", "https://a.b.corp.example")).toBe("direct");
  expect(via("*", "https://anything")).toBe("direct");
  expect(via("corp.example:8443", "https://api.corp.example:8443")).toBe("direct");
  expect(via("corp.example:8443", "mqtts://api.corp.example:8883")).toBe("http://proxy:3128");
  expect(via("10.0.0.0/8", "https://10.1.2.3:8443")).toBe("direct");
  expect(via("10.0.0.0/8", "https://11.1.2.3")).toBe("http://proxy:3128");
  expect(via("127.0.0.1", "https://127.0.0.1:9")).toBe("direct");
  expect(via("::1", "https://[::1]:9")).toBe("direct");
  expect(via("API.Corp.Example", "https://api.corp.example")).toBe("direct");
});

test("what counts as a refusal of the pool's credentials, and what is transient", () => {
  expect(mqttRefusal(Object.assign(new Error("Connection refused: Not authorized"), { code: 5 }))).toBe("CONNACK not authorized");
  expect(mqttRefusal(Object.assign(new Error("ssl/tls alert certificate revoked"), { code: "ERR_SSL_SSLV3_ALERT_CERTIFICATE_REVOKED" }))).toBe("TLS alert certificate revoked");
  expect(mqttRefusal(Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:8883"), { code: "ECONNREFUSED" }))).toBeUndefined();
  expect(mqttRefusal(Object.assign(new Error("unable to get local issuer certificate"), { code: "UNABLE_TO_GET_ISSUER_CERT_LOCALLY" }))).toBeUndefined();
  expect(pollRefusal(401, "poll-signature-invalid")).toBe("HTTP 401 poll-signature-invalid");
  expect(pollRefusal(401, "poll-timestamp-stale")).toBeUndefined();
  expect(pollRefusal(502, "")).toBeUndefined();
  expect(pollRefusal(401, "")).toBeUndefined();
});
