import { afterAll, beforeAll, expect, test } from "bun:test";
import { describeConfig, loadLauncherConfig, requireCredentials, type LauncherConfig } from "../../../src/config/launcher-config.ts";
import { hasCode } from "../../../src/errors.ts";
import { makeFixture, type Env, type Fixture } from "./config-env.ts";
import { leaks, NOW } from "./pki-fixtures.ts";

let f: Fixture;
beforeAll(async () => {
  f = await makeFixture();
});
afterAll(() => f.cleanup());

const load = (env: Env, opts: { requireCredentials?: boolean } = {}) => loadLauncherConfig(env, { ...opts, now: NOW });

test("defaults: bridge, 7m, 70m, local Docker socket, /opt/spacelift, mqtt because the token has a broker", () => {
  const c = load(f.base);
  expect(c.docker).toEqual({
    host: { kind: "unix", socketPath: "/var/run/docker.sock", url: "unix:///var/run/docker.sock" },
    configDir: undefined,
    network: "bridge",
    runtime: undefined,
    defaultRunnerImage: undefined,
  });
  expect(c.timeouts).toEqual({ logsMs: 420_000, runMs: 4_200_000 });
  expect(c.scratchDir).toBe("/opt/spacelift");
  expect(c.comms).toEqual({ protocol: "mqtt", url: "https://api.fleet.internal:8443", broker: { endpoint: "mqtts://mq.fleet.internal:8883", namespace: "spacelift" }, insecureHttp: false });
  expect(c.runEnv).toEqual({ masked: [], whitelisted: [] });
  expect(c.mounts).toEqual({ allRuns: [], readOnlyRuns: [], writeRuns: [] });
  expect(c.metadata).toEqual({});
  expect(c.privateVcsMappings).toEqual([]);
  expect([c.runLogsOnStdout, c.debug, c.runInitializationPolicyPath]).toEqual([false, false, undefined]);
  expect(c.setVariables).toEqual(["SPACELIFT_POOL_PRIVATE_KEY", "SPACELIFT_TOKEN"]);
  const creds = requireCredentials(c);
  expect(creds.token.pool).toBe("01HZX3K7Q8W9E2R4T6Y8U0I2O4");
  expect(creds.key.description).toBe("RSA 2048");
  expect(creds.certificate.notAfter.getTime()).toBeGreaterThan(NOW.getTime());
});

test("a token without a broker defaults to poll; an explicit protocol and URL win", () => {
  expect(load({ ...f.base, SPACELIFT_TOKEN: f.noBrokerToken }).comms).toEqual({ protocol: "poll", url: "https://api.fleet.internal:8443", broker: undefined, insecureHttp: false });
  const c = load({ ...f.base, SPACELIFT_WORKER_COMMS_PROTOCOL: "POLL", SPACELIFT_WORKER_COMMS_URL: "https://lb.fleet.internal/" });
  expect(c.comms.protocol).toBe("poll");
  expect(c.comms.url).toBe("https://lb.fleet.internal");
});

test("every variable set to a good value", () => {
  const env: Env = {
    ...f.base,
    SPACELIFT_WORKER_COMMS_PROTOCOL: "mqtt",
    DOCKER_HOST: "tcp://127.0.0.1:2375",
    SPACELIFT_LAUNCHER_SCRATCH_DIR: "/var/lib/spacelift/",
    SPACELIFT_DOCKER_CONFIG_DIR: f.dockerConfigDir,
    SPACELIFT_MASK_ENVS: "DB_PASSWORD",
    DB_PASSWORD: "hunter2-secret",
    SPACELIFT_WHITELIST_ENVS: "AWS_REGION,ro_PLAN_ONLY,wo_DEPLOY_ONLY",
    AWS_REGION: "eu-west-1",
    PLAN_ONLY: "p",
    DEPLOY_ONLY: "d",
    SPACELIFT_WORKER_NETWORK: "runs",
    SPACELIFT_WORKER_EXTRA_MOUNTS: "/opt/cache:/mnt/cache",
    SPACELIFT_WORKER_RO_EXTRA_MOUNTS: "/etc/ro:/etc/ro:ro",
    SPACELIFT_WORKER_WO_EXTRA_MOUNTS: "/srv/deploy:/deploy:rw",
    SPACELIFT_WORKER_RUNTIME: "runsc",
    SPACELIFT_LAUNCHER_LOGS_TIMEOUT: "1h30m",
    SPACELIFT_LAUNCHER_RUN_TIMEOUT: "1.5h",
    SPACELIFT_LAUNCHER_RUN_INITIALIZATION_POLICY: f.policy,
    SPACELIFT_DEFAULT_RUNNER_IMAGE: "registry.internal:5000/runner:1.2",
    SPACELIFT_RUN_LOGS_ON_STANDARD_OUTPUT_ENABLED: "Yes",
    SPACELIFT_DEBUG: "1",
    SPACELIFT_METADATA_instance_id: "i-0abc",
    SPACELIFT_METADATA_ASG: "workers",
    SPACELIFT_PRIVATEVCS_MAPPING_NAME_0: "bitbucket_pool",
    SPACELIFT_PRIVATEVCS_MAPPING_BASE_ENDPOINT_0: "http://192.168.2.2",
    SPACELIFT_PRIVATEVCS_MAPPING_NAME_1: "github_pool",
    SPACELIFT_PRIVATEVCS_MAPPING_BASE_ENDPOINT_1: "https://internal-github.net",
  };
  const c = load(env);
  expect(c.docker.host).toMatchObject({ kind: "tcp", host: "127.0.0.1", port: 2375 });
  expect(c.scratchDir).toBe("/var/lib/spacelift");
  expect(c.docker.configDir).toBe(f.dockerConfigDir);
  expect(c.runEnv.masked).toEqual([{ name: "DB_PASSWORD", value: "hunter2-secret", scope: "all" }]);
  expect(c.runEnv.whitelisted.map((w) => [w.name, w.value, w.scope])).toEqual([
    ["AWS_REGION", "eu-west-1", "all"],
    ["PLAN_ONLY", "p", "readonly"],
    ["DEPLOY_ONLY", "d", "write"],
  ]);
  expect(c.docker.network).toBe("runs");
  expect(c.mounts).toEqual({
    allRuns: [{ source: "/opt/cache", target: "/mnt/cache", readOnly: false }],
    readOnlyRuns: [{ source: "/etc/ro", target: "/etc/ro", readOnly: true }],
    writeRuns: [{ source: "/srv/deploy", target: "/deploy", readOnly: false }],
  });
  expect(c.docker.runtime).toBe("runsc");
  expect(c.timeouts).toEqual({ logsMs: 5_400_000, runMs: 5_400_000 });
  expect(c.runInitializationPolicyPath).toBe(f.policy);
  expect(c.docker.defaultRunnerImage).toBe("registry.internal:5000/runner:1.2");
  expect([c.runLogsOnStdout, c.debug]).toEqual([true, true]);
  expect(c.metadata).toEqual({ instance_id: "i-0abc", ASG: "workers" });
  expect(c.privateVcsMappings).toEqual([
    { name: "bitbucket_pool", baseEndpoint: "http://192.168.2.2" },
    { name: "github_pool", baseEndpoint: "https://internal-github.net" },
  ]);
  expect(c.setVariables).not.toContain("AWS_REGION"); // only configuration variables count

  // The effective configuration: token, key and masked values redacted; the addresses the token
  // carries (comms URL, broker) are the effective settings and are shown, its certificate is not.
  const rows = describeConfig(c);
  const text = rows.map(([k, v]) => `${k}=${v}`).join("\n");
  for (const secret of [f.token, f.keyB64, f.keyPem, f.certificate, f.ca]) expect(leaks(text, secret)).toBe(false);
  expect(text).not.toContain("hunter2-secret");
  expect(Object.fromEntries(rows)).toMatchObject({
    SPACELIFT_TOKEN: expect.stringMatching(/^<redacted>; pool certificate valid 2026-05-31T12:00:00.000Z to /),
    SPACELIFT_POOL_PRIVATE_KEY: "<redacted>; RSA 2048 (pkcs1)",
    SPACELIFT_MASK_ENVS: "DB_PASSWORD=<redacted>",
    SPACELIFT_WHITELIST_ENVS: "AWS_REGION, PLAN_ONLY (read-only runs only), DEPLOY_ONLY (write runs only)",
    SPACELIFT_LAUNCHER_LOGS_TIMEOUT: "1h30m",
    SPACELIFT_WORKER_RO_EXTRA_MOUNTS: "/etc/ro:/etc/ro:ro",
    SPACELIFT_METADATA_instance_id: "i-0abc",
    SPACELIFT_PRIVATEVCS_MAPPING_BASE_ENDPOINT_1: "https://internal-github.net",
  });
});

test("describeConfig marks defaults and where derived values come from", () => {
  const rows = Object.fromEntries(describeConfig(load(f.base)));
  expect(rows).toMatchObject({
    SPACELIFT_WORKER_NETWORK: "bridge (default)",
    SPACELIFT_LAUNCHER_RUN_TIMEOUT: "1h10m (default)",
    SPACELIFT_WORKER_COMMS_PROTOCOL: "mqtt (default: the token has a broker)",
    SPACELIFT_WORKER_COMMS_URL: "https://api.fleet.internal:8443 (from the token)",
    DOCKER_HOST: "unix:///var/run/docker.sock (default)",
    SPACELIFT_WORKER_COMMS_INSECURE_HTTP: "false (default)",
    SPACELIFT_ADDITIONAL_CA_CERTIFICATES_FILE: "not set",
    "additional CA certificates": "none",
    HTTPS_PROXY: "not set",
    HTTP_PROXY: "not set",
    NO_PROXY: "not set",
  });
  expect(Object.keys(rows)).toHaveLength(27);
  const optedIn = Object.fromEntries(describeConfig(load({ ...f.base, SPACELIFT_WORKER_COMMS_INSECURE_HTTP: "yes" })));
  expect(optedIn.SPACELIFT_WORKER_COMMS_INSECURE_HTTP).toBe("true");
});

test("DOCKER_HOST set but empty means the default, as for the Docker CLI", () => {
  expect(load({ ...f.base, DOCKER_HOST: "" }).docker.host.url).toBe("unix:///var/run/docker.sock");
});

test("serializing or inspecting the whole config never shows the key", () => {
  const c = load(f.base);
  // The token's (public) certificate is part of the config object, so pieces of the public key in it are fine.
  for (const text of [JSON.stringify(c), Bun.inspect(c)]) {
    expect(text).toContain("redacted");
    expect(leaks(text, f.keyPem, f.certificate)).toBe(false);
    expect(leaks(text, f.keyB64)).toBe(false);
    expect(leaks(text, f.token)).toBe(false);
  }
});

test("the configuration object is deep-frozen", () => {
  const c: LauncherConfig = load({ ...f.base, SPACELIFT_METADATA_a: "1", SPACELIFT_WORKER_EXTRA_MOUNTS: "/a:/a" });
  expect(Object.isFrozen(c)).toBe(true);
  for (const inner of [c.comms, c.docker, c.docker.host, c.timeouts, c.mounts, c.mounts.allRuns, c.mounts.allRuns[0], c.metadata, c.runEnv, c.credentials, c.credentials?.token, c.credentials?.key]) {
    expect(Object.isFrozen(inner)).toBe(true);
  }
  expect(() => {
    (c.timeouts as { logsMs: number }).logsMs = 1;
  }).toThrow(TypeError);
  expect(() => {
    (c.mounts.allRuns as unknown[]).push({});
  }).toThrow(TypeError);
  expect(c.timeouts.logsMs).toBe(420_000);
});

test("run-local: no credentials needed, none present; requireCredentials() then fails with config-invalid", () => {
  const c = load({}, { requireCredentials: false });
  expect(c.credentials).toBeUndefined();
  expect(c.comms).toEqual({ protocol: "poll", url: undefined, broker: undefined, insecureHttp: false });
  let err: unknown;
  try {
    requireCredentials(c);
  } catch (e) {
    err = e;
  }
  expect(hasCode(err, "config-invalid")).toBe(true);
});

test("the environment object is only read: loading twice gives equal configs", () => {
  const env = { ...f.base, SPACELIFT_METADATA_x: "y" };
  const before = { ...env };
  expect(JSON.stringify(load(env))).toBe(JSON.stringify(load(env)));
  expect(env).toEqual(before);
});
