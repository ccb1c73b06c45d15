/**
 * What the integration tests need from the test environment (scripts/testenv): DOCKER_HOST, the busybox
 * test image, a Mosquitto broker with client certificates, a registry, a PostgreSQL server (and, from the
 * host itself, capabilities such as `unshare`). `make test` provides them; a developer running `bun test`
 * directly gets them from a live `bun scripts/test-env.ts up`.
 * Under CI=true a missing service is a failure, never a skip.
 */
import { existsSync, readFileSync } from "node:fs";

const SAVED = "/tmp/spacelift-test-env/env.json";

function vars(): Record<string, string | undefined> {
  if (process.env.DOCKER_HOST || !existsSync(SAVED)) return process.env;
  try {
    const saved = JSON.parse(readFileSync(SAVED, "utf8")) as { vars: Record<string, string> };
    return { ...saved.vars, ...process.env };
  } catch {
    return process.env;
  }
}

const inCI = process.env.CI === "true";

function need<T>(what: string, value: T | undefined): T | undefined {
  if (value === undefined && inCI) {
    throw new Error(`${what} is required under CI=true; run the tests with \`make test\``);
  }
  return value;
}

/**
 * A capability of the test host itself (e.g. root for `unshare --pid`): true when `available`; when it
 * is not, false (=> skip) outside CI and a failure under CI=true.
 */
export function hostCapability(what: string, available: boolean): boolean {
  need(what, available ? true : undefined);
  return available;
}

export interface DockerTestEnv {
  host: string;
  image: string;
}

/** Docker for integration tests; undefined (=> skip) only outside CI. */
export function dockerTestEnv(): DockerTestEnv | undefined {
  const v = vars();
  const host = v.DOCKER_HOST;
  const image = v.TEST_BUSYBOX_IMAGE;
  return need("a Docker Engine (DOCKER_HOST and TEST_BUSYBOX_IMAGE)", host && image ? { host, image } : undefined);
}

export interface MqttTestEnv {
  url: string;
  ca: string;
  cert: string;
  key: string;
}

export function mqttTestEnv(): MqttTestEnv | undefined {
  const v = vars();
  const { TEST_MQTT_URL: url, TEST_MQTT_CA: ca, TEST_MQTT_CERT: cert, TEST_MQTT_KEY: key } = v;
  return need("a Mosquitto broker (TEST_MQTT_*)", url && ca && cert && key ? { url, ca, cert, key } : undefined);
}

export interface RegistryTestEnv {
  docker: DockerTestEnv;
  registry: { address: string; username: string; password: string; image: string };
}

/** The private registry (htpasswd auth) holding the busybox image as `registry.image`. */
export function registryTestEnv(): RegistryTestEnv | undefined {
  const docker = dockerTestEnv();
  const v = vars();
  const { TEST_REGISTRY: address, TEST_REGISTRY_USER: username, TEST_REGISTRY_PASSWORD: password, TEST_REGISTRY_IMAGE: image } = v;
  const registry = address && username && password && image ? { address, username, password, image } : undefined;
  return need("a Docker registry (TEST_REGISTRY_*)", docker && registry ? { docker, registry } : undefined);
}

export interface PostgresTestEnv {
  /** A role with CREATEDB: tests make their own database with createTestDatabase (./postgres.ts). */
  url: string;
}

/** The PostgreSQL server of the test environment (TEST_DATABASE_URL). */
export function postgresTestEnv(): PostgresTestEnv | undefined {
  const url = vars().TEST_DATABASE_URL;
  return need("a PostgreSQL server (TEST_DATABASE_URL)", url ? { url } : undefined);
}
