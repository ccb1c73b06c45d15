// One case per failure kind per variable: exactly one line, naming the variable, saying what is wrong
// and what a good value looks like, and never carrying any part of the token or key.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { ConfigError, loadLauncherConfig } from "../../../src/config/launcher-config.ts";
import { hasCode } from "../../../src/errors.ts";
import { lines, makeFixture, problemsOf, type Env, type Fixture } from "./config-env.ts";
import { b64, leaks } from "./pki-fixtures.ts";
import { unprivilegedJson } from "../../support/unprivileged.ts";

let f: Fixture;
beforeAll(async () => {
  f = await makeFixture();
});
afterAll(() => f.cleanup());

type Case = [variable: string, overrides: (f: Fixture) => Env, expected: string];
const T = "SPACELIFT_TOKEN";
const K = "SPACELIFT_POOL_PRIVATE_KEY";
const VN = "SPACELIFT_PRIVATEVCS_MAPPING_NAME_";
const VE = "SPACELIFT_PRIVATEVCS_MAPPING_BASE_ENDPOINT_";

const cases: Case[] = [
  [T, () => ({ [T]: undefined }), "is not set; give the token"],
  [T, () => ({ [T]: "" }), "token is empty"],
  [T, () => ({ [T]: "%%% not a token %%%" }), "token is not base64"],
  [T, () => ({ [T]: b64("pool=1") }), "is not JSON"],
  [T, (f) => ({ [T]: b64(JSON.stringify({ ...JSON.parse(Buffer.from(f.token, "base64").toString()), version: 3 })) }), "token version 3 is not supported"],
  [T, (f) => ({ [T]: b64(JSON.stringify({ ...JSON.parse(Buffer.from(f.token, "base64").toString()), pool: undefined })) }), "token field pool is missing"],
  [T, (f) => ({ [T]: b64(JSON.stringify({ ...JSON.parse(Buffer.from(f.token, "base64").toString()), comms_url: "ftp://x" })) }), "token field comms_url must be an http(s) URL"],
  [T, (f) => ({ [T]: b64(JSON.stringify({ ...JSON.parse(Buffer.from(f.token, "base64").toString()), certificate: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n" })) }), "certificate is not a parsable PEM certificate"],
  [T, (f) => ({ [T]: f.expiredToken }), "pool certificate in the token expired on 2026-05-31T12:00:00.000Z"],
  [T, (f) => ({ [T]: f.futureToken }), "not valid before 2026-06-02T12:00:00.000Z"],
  [K, () => ({ [K]: undefined }), "is not set; give base64 of the pool key"],
  [K, () => ({ [K]: "not base64 !!" }), "private key is neither base64 nor PEM text"],
  [K, () => ({ [K]: b64("just text") }), "holds no PEM block"],
  [K, (f) => ({ [K]: b64(f.certificate) }), "a certificate was given instead of the private key"],
  [K, (f) => ({ [K]: f.keyPem.replace("-----BEGIN RSA PRIVATE KEY-----\n", "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-256-CBC,00\n\n") }), "is encrypted with a passphrase"],
  [K, (f) => ({ [K]: b64(f.keyPem.slice(0, 200) + "\n-----END RSA PRIVATE KEY-----\n") }), "could not be parsed"],
  [K, (f) => ({ [K]: f.otherKeyB64 }), "the private key does not match the pool certificate"],
  ["SPACELIFT_WORKER_COMMS_PROTOCOL", () => ({ SPACELIFT_WORKER_COMMS_PROTOCOL: "websocket" }), "\"websocket\" is not a protocol; use mqtt"],
  ["SPACELIFT_WORKER_COMMS_PROTOCOL", () => ({ SPACELIFT_WORKER_COMMS_PROTOCOL: "" }), "is set but empty; unset it, or e.g. poll"],
  ["SPACELIFT_WORKER_COMMS_PROTOCOL", (f) => ({ [T]: f.noBrokerToken, SPACELIFT_WORKER_COMMS_PROTOCOL: "mqtt" }), "is mqtt, but the token names no broker"],
  ["SPACELIFT_WORKER_COMMS_URL", () => ({ SPACELIFT_WORKER_COMMS_URL: "mothership" }), "is not a URL"],
  ["SPACELIFT_WORKER_COMMS_URL", () => ({ SPACELIFT_WORKER_COMMS_URL: "mqtts://x:1" }), "is not an http(s) URL"],
  ["DOCKER_HOST", () => ({ DOCKER_HOST: "ssh://docker" }), "unsupported scheme (only unix:// and tcp://)"],
  ["DOCKER_HOST", () => ({ DOCKER_HOST: "tcp://docker" }), "needs a host and a port"],
  ["DOCKER_HOST", () => ({ DOCKER_HOST: "unix://run/docker.sock" }), "socket path is not absolute"],
  ["DOCKER_HOST", () => ({ DOCKER_HOST: " " }), "unsupported scheme"],
  ["SPACELIFT_LAUNCHER_SCRATCH_DIR", () => ({ SPACELIFT_LAUNCHER_SCRATCH_DIR: "spacelift" }), "is not an absolute path; e.g. /opt/spacelift"],
  ["SPACELIFT_DOCKER_CONFIG_DIR", () => ({ SPACELIFT_DOCKER_CONFIG_DIR: ".docker" }), "is not an absolute path"],
  ["SPACELIFT_DOCKER_CONFIG_DIR", (f) => ({ SPACELIFT_DOCKER_CONFIG_DIR: join(f.dir, "nope") }), "does not exist"],
  ["SPACELIFT_DOCKER_CONFIG_DIR", (f) => ({ SPACELIFT_DOCKER_CONFIG_DIR: f.policy }), "is not a directory"],
  ["SPACELIFT_DOCKER_CONFIG_DIR", (f) => ({ SPACELIFT_DOCKER_CONFIG_DIR: f.dir }), "has no readable config.json"],
  ["SPACELIFT_MASK_ENVS", () => ({ SPACELIFT_MASK_ENVS: "A,,B", A: "a", B: "b" }), "item 2 is empty"],
  ["SPACELIFT_MASK_ENVS", () => ({ SPACELIFT_MASK_ENVS: "DB-PASSWORD" }), "is not an environment variable name"],
  ["SPACELIFT_MASK_ENVS", () => ({ SPACELIFT_MASK_ENVS: "DB_PASSWORD" }), "lists DB_PASSWORD, which is not set in the launcher's environment"],
  ["SPACELIFT_MASK_ENVS", () => ({ SPACELIFT_MASK_ENVS: "DB_PASSWORD", DB_PASSWORD: "" }), "lists DB_PASSWORD, whose value is empty"],
  ["SPACELIFT_MASK_ENVS", () => ({ SPACELIFT_MASK_ENVS: K }), "the pool credentials are never passed to runs"],
  ["SPACELIFT_WHITELIST_ENVS", () => ({ SPACELIFT_WHITELIST_ENVS: "ro_PLAN_TOKEN" }), "lists PLAN_TOKEN, which is not set"],
  ["SPACELIFT_WHITELIST_ENVS", () => ({ SPACELIFT_WHITELIST_ENVS: "A,", A: "1" }), "item 2 is empty"],
  ["SPACELIFT_WHITELIST_ENVS", () => ({ SPACELIFT_WHITELIST_ENVS: "xx_A B" }), "is not an environment variable name"],
  ["SPACELIFT_WORKER_NETWORK", () => ({ SPACELIFT_WORKER_NETWORK: "my network" }), "is not a Docker network name"],
  ["SPACELIFT_WORKER_NETWORK", () => ({ SPACELIFT_WORKER_NETWORK: "" }), "is set but empty; unset it for the default bridge"],
  ...["SPACELIFT_WORKER_EXTRA_MOUNTS", "SPACELIFT_WORKER_RO_EXTRA_MOUNTS", "SPACELIFT_WORKER_WO_EXTRA_MOUNTS"].flatMap((name): Case[] => [
    [name, () => ({ [name]: "cache:/cache" }), "host path \"cache\" is not absolute"],
    [name, () => ({ [name]: "/a:/a," }), "item 2 is empty"],
    [name, () => ({ [name]: "/a" }), "has no colon"],
    [name, () => ({ [name]: "/a:/a:rwx" }), "unknown mode \"rwx\""],
  ]),
  ["SPACELIFT_WORKER_RUNTIME", () => ({ SPACELIFT_WORKER_RUNTIME: "run sc" }), "is not a Docker runtime name"],
  ...["SPACELIFT_LAUNCHER_LOGS_TIMEOUT", "SPACELIFT_LAUNCHER_RUN_TIMEOUT"].flatMap((name): Case[] => [
    [name, () => ({ [name]: "7 minutes" }), "\"7 minutes\" is not a Go duration (unknown unit \" minutes\")"],
    [name, () => ({ [name]: "-1s" }), "is negative"],
    [name, () => ({ [name]: "1" }), "a number without a unit"],
    [name, () => ({ [name]: "0" }), "is zero"],
    [name, () => ({ [name]: "" }), "is set but empty"],
    [name, () => ({ [name]: "1000h" }), "longest supported timeout"],
  ]),
  ["SPACELIFT_LAUNCHER_RUN_INITIALIZATION_POLICY", (f) => ({ SPACELIFT_LAUNCHER_RUN_INITIALIZATION_POLICY: join(f.dir, "missing.rego") }), "does not exist; give the path of a readable .rego file"],
  ["SPACELIFT_LAUNCHER_RUN_INITIALIZATION_POLICY", (f) => ({ SPACELIFT_LAUNCHER_RUN_INITIALIZATION_POLICY: f.dir }), "is not a regular file"],
  ["SPACELIFT_DEFAULT_RUNNER_IMAGE", () => ({ SPACELIFT_DEFAULT_RUNNER_IMAGE: "My Image" }), "is not a Docker image reference"],
  ["SPACELIFT_RUN_LOGS_ON_STANDARD_OUTPUT_ENABLED", () => ({ SPACELIFT_RUN_LOGS_ON_STANDARD_OUTPUT_ENABLED: "enabled" }), "\"enabled\" is not a boolean"],
  ["SPACELIFT_DEBUG", () => ({ SPACELIFT_DEBUG: "2" }), "\"2\" is not a boolean"],
  ["SPACELIFT_METADATA_", () => ({ SPACELIFT_METADATA_: "x" }), "has no tag key after the prefix"],
  ["SPACELIFT_METADATA_instance_id", () => ({ SPACELIFT_METADATA_instance_id: "" }), "is empty (a tag needs a value)"],
  [`${VN}1`, () => ({ [`${VN}0`]: "a", [`${VE}0`]: "https://a", [`${VN}2`]: "c", [`${VE}2`]: "https://c" }), "is not set, but mapping 2 is: mappings are numbered from 0 without gaps"],
  [`${VE}0`, () => ({ [`${VN}0`]: "a" }), "is not set, but SPACELIFT_PRIVATEVCS_MAPPING_NAME_0 is"],
  [`${VN}0`, () => ({ [`${VE}0`]: "https://a" }), "is not set, but SPACELIFT_PRIVATEVCS_MAPPING_BASE_ENDPOINT_0 is"],
  [`${VN}first`, () => ({ [`${VN}first`]: "a" }), "ends in \"first\", which is not a mapping number"],
  [`${VN}01`, () => ({ [`${VN}01`]: "a" }), "ends in \"01\", which is not a mapping number"],
  [`${VE}0`, () => ({ [`${VN}0`]: "a", [`${VE}0`]: "192.168.2.2" }), "\"192.168.2.2\" is not an http(s) URL"],
  [`${VE}0`, () => ({ [`${VN}0`]: "a", [`${VE}0`]: "ssh://git.internal" }), "is not an http(s) URL"],
  [`${VN}1`, () => ({ [`${VN}0`]: "a", [`${VE}0`]: "https://a", [`${VN}1`]: "a", [`${VE}1`]: "https://b" }), "repeats the name of mapping 0"],
  ["SPACELIFT_PRIVATEVCS_MAPPING_URL_0", () => ({ SPACELIFT_PRIVATEVCS_MAPPING_URL_0: "https://a" }), "is not a VCS mapping variable"],
];

describe("one line per failure kind, naming the variable", () => {
  test.each(cases.map(([variable, overrides, expected]) => [variable, expected, overrides] as const))("%s: %s", (variable, expected, overrides) => {
    const env = { ...f.base, ...overrides(f) };
    const problems = problemsOf(env);
    expect(problems.map((p) => p.variable)).toEqual([variable]);
    const [line] = lines(problems);
    expect(line).toStartWith(`${variable}: `);
    expect(line).toContain(expected);
    expect(line).not.toMatch(/[\r\n]/);
    // "<what is wrong>; <what a good value looks like>"
    expect(line).toMatch(/^[A-Za-z0-9_]+: .+; .+$/);
    for (const secret of [f.token, f.keyB64, f.keyPem, Buffer.from(f.token, "base64").toString(), env[T] ?? "", env[K] ?? ""]) {
      expect(leaks(line ?? "", secret)).toBe(false);
    }
  });
});

test("the thrown error is a ConfigError with code config-invalid and one message line per problem", () => {
  let caught: unknown;
  try {
    loadLauncherConfig({ ...f.base, SPACELIFT_DEBUG: "x", SPACELIFT_LAUNCHER_RUN_TIMEOUT: "soon" });
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(ConfigError);
  expect(hasCode(caught, "config-invalid")).toBe(true);
  expect((caught as ConfigError).message.split("\n")).toEqual(lines((caught as ConfigError).problems));
});

test("ALL problems are collected, not only the first", () => {
  const problems = problemsOf({
    SPACELIFT_TOKEN: "nope!",
    SPACELIFT_POOL_PRIVATE_KEY: "nope!",
    SPACELIFT_LAUNCHER_LOGS_TIMEOUT: "7 minutes",
    SPACELIFT_WORKER_EXTRA_MOUNTS: "a:b,,/c",
    SPACELIFT_DEBUG: "perhaps",
    SPACELIFT_METADATA_: "x",
    [`${VN}1`]: "x",
  });
  expect(new Set(problems.map((p) => p.variable))).toEqual(
    new Set([T, K, "SPACELIFT_LAUNCHER_LOGS_TIMEOUT", "SPACELIFT_WORKER_EXTRA_MOUNTS", "SPACELIFT_DEBUG", "SPACELIFT_METADATA_", `${VN}0`, `${VE}1`]),
  );
  // Three bad mount items, three lines.
  expect(problems.filter((p) => p.variable === "SPACELIFT_WORKER_EXTRA_MOUNTS")).toHaveLength(3);
});

test("an unreadable policy file is reported (as an ordinary user; root reads everything)", () => {
  const path = join(f.dir, "locked.rego");
  writeFileSync(path, "package x\n");
  chmodSync(path, 0o000);
  chmodSync(f.dir, 0o755);
  const configEnv = resolve(import.meta.dir, "config-env.ts");
  const script = `import { lines, problemsOf } from ${JSON.stringify(configEnv)};
    console.log(JSON.stringify({ uid: process.getuid(), lines: lines(problemsOf(await Bun.stdin.json())) }));`;
  const child = unprivilegedJson<{ uid: number; lines: string[] }>(script, { ...f.base, SPACELIFT_LAUNCHER_RUN_INITIALIZATION_POLICY: path });
  expect(child.uid).not.toBe(0);
  expect(child.lines).toEqual([`SPACELIFT_LAUNCHER_RUN_INITIALIZATION_POLICY: "${path}" is not readable by this user; give the path of a readable .rego file, e.g. /etc/spacelift/init-policy.rego`]);
  for (const secret of [f.token, f.keyB64]) expect(leaks(child.lines.join("\n"), secret)).toBe(false);
});

test("without required credentials (run-local) half a pair is still an error", () => {
  expect(problemsOf({}, { requireCredentials: false })).toEqual([]);
  expect(lines(problemsOf({ [T]: f.token }, { requireCredentials: false }))).toEqual([`${K}: is not set (nor SPACELIFT_POOL_PRIVATE_KEY_FILE), but the token is; give both or neither`]);
  expect(lines(problemsOf({ [K]: f.keyB64 }, { requireCredentials: false }))).toEqual([`${T}: is not set (nor SPACELIFT_TOKEN_FILE), but the pool key is; give both or neither`]);
  // Given credentials are still checked.
  expect(problemsOf({ [T]: f.token, [K]: f.otherKeyB64 }, { requireCredentials: false }).map((p) => p.variable)).toEqual([K]);
});
