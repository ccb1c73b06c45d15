/**
 * The test environment: Debian packages, a Docker Engine, the busybox test image, a Mosquitto broker
 * with TLS client certificates, a registry and a PostgreSQL server. Services that already answer are
 * reused; missing ones are started privately and stopped by `teardown()`. The result is a set of environment variables for the test processes.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensurePackages } from "./packages.ts";
import { ensureDeployTools } from "./deploy-tools.ts";
import { ensureBrowser } from "./browser.ts";
import { findRunningDocker, pingDocker, startPrivateDocker, stopPrivateDocker, type DockerEnv } from "./dockerd.ts";
import { mosquittoFromEnv, startPrivateMosquitto, stopPrivateMosquitto, type MosquittoEnv } from "./mosquitto.ts";
import { ensureBusyboxImage } from "./images.ts";
import { pushToRegistry, startPrivateRegistry, stopPrivateRegistry, type RegistryEnv } from "./registry.ts";
import { postgresFromEnv, startPrivatePostgres, stopPrivatePostgres, type PostgresEnv } from "./postgres.ts";
import { alive } from "./util.ts";

export const PACKAGES = [
  "docker.io", "mosquitto", "busybox-static", "qemu-user-static", "libc6-arm64-cross", "docker-registry",
  "git", "openssl", "tar", "postgresql",
] as const;

/** Where `scripts/test-env.ts up` keeps a long-lived environment that tests and `make test` reuse. */
export const SHARED_STATE_DIR = "/tmp/spacelift-test-env";

export interface TestEnv {
  vars: Record<string, string>;
  docker: DockerEnv;
  mosquitto: MosquittoEnv;
  registry: RegistryEnv;
  /** Absent from an environment saved before PostgreSQL was part of it (such an environment is not live). */
  postgres?: PostgresEnv;
  stateDir: string;
}

export async function setUpTestEnv(stateDir: string, log: (m: string) => void): Promise<TestEnv> {
  mkdirSync(stateDir, { recursive: true });
  ensurePackages(PACKAGES, log);
  ensureDeployTools(log);
  ensureBrowser(log);
  // What was started so far, stopped again (newest first) when a later step fails.
  const started: Array<() => Promise<void>> = [];
  try {
    const docker = (await findRunningDocker()) ?? (await startPrivateDocker(stateDir, log));
    started.push(() => stopPrivateDocker(docker, stateDir));
    const image = await ensureBusyboxImage(docker.host, log);
    const mosquitto = mosquittoFromEnv(process.env) ?? (await startPrivateMosquitto(stateDir, log));
    started.push(() => stopPrivateMosquitto(mosquitto));
    const registry = await startPrivateRegistry(stateDir, log);
    started.push(() => stopPrivateRegistry(registry));
    await pushToRegistry(docker.host, image, registry);
    const postgres = postgresFromEnv(process.env) ?? (await startPrivatePostgres(stateDir, log));
    started.push(() => stopPrivatePostgres(postgres));
    const vars = {
      DOCKER_HOST: docker.host,
      TEST_BUSYBOX_IMAGE: image,
      TEST_MQTT_URL: mosquitto.url,
      TEST_MQTT_CA: mosquitto.ca,
      TEST_MQTT_CERT: mosquitto.cert,
      TEST_MQTT_KEY: mosquitto.key,
      TEST_REGISTRY: registry.address,
      TEST_REGISTRY_USER: registry.username,
      TEST_REGISTRY_PASSWORD: registry.password,
      TEST_REGISTRY_IMAGE: registry.image,
      TEST_DATABASE_URL: postgres.url,
    };
    return { vars, docker, mosquitto, registry, postgres, stateDir };
  } catch (err) {
    for (const stop of started.reverse()) await stop().catch(() => undefined);
    throw err;
  }
}

export async function tearDownTestEnv(env: TestEnv): Promise<void> {
  if (env.postgres) await stopPrivatePostgres(env.postgres);
  if (env.registry) await stopPrivateRegistry(env.registry);
  await stopPrivateMosquitto(env.mosquitto);
  await stopPrivateDocker(env.docker, env.stateDir);
  rmSync(env.stateDir, { recursive: true, force: true });
}

/** Saves an environment so later runs can reuse it (scripts/test-env.ts up). */
export function saveTestEnv(env: TestEnv): void {
  const sh = Object.entries(env.vars).map(([k, v]) => `export ${k}='${v}'`).join("\n");
  // Written aside and renamed: test processes may be reading the files of a live environment right now.
  for (const [name, text] of [["env.json", JSON.stringify(env, null, 2)], ["env.sh", sh + "\n"]] as const) {
    writeFileSync(join(env.stateDir, `${name}.tmp`), text);
    renameSync(join(env.stateDir, `${name}.tmp`), join(env.stateDir, name));
  }
}

export function loadSavedTestEnv(stateDir: string): TestEnv | undefined {
  const file = join(stateDir, "env.json");
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, "utf8")) as TestEnv;
  } catch {
    return undefined;
  }
}

/** A saved environment whose services still answer, or undefined. */
export async function loadLiveTestEnv(stateDir: string): Promise<TestEnv | undefined> {
  const env = loadSavedTestEnv(stateDir);
  if (!env || !(await liveButPostgres(env)) || !postgresLive(env)) return undefined;
  return env;
}

async function liveButPostgres(env: TestEnv): Promise<boolean> {
  if (!(await pingDocker(env.docker.host))) return false;
  if (env.mosquitto.pid !== undefined && !alive(env.mosquitto.pid)) return false;
  return env.registry?.pid !== undefined && alive(env.registry.pid);
}

const postgresLive = (env: TestEnv) => env.postgres !== undefined && (env.postgres.pid === undefined || alive(env.postgres.pid));

/**
 * A saved environment whose other services answer but whose PostgreSQL is missing (saved before it was
 * part of the environment) or dead, completed with a fresh one and saved again: the running dockerd,
 * broker and registry, which other test runs may be using, are left alone. Undefined when anything else is down.
 */
export async function addPostgresToSavedTestEnv(stateDir: string, log: (m: string) => void): Promise<TestEnv | undefined> {
  const env = loadSavedTestEnv(stateDir);
  if (!env || !(await liveButPostgres(env))) return undefined;
  if (postgresLive(env)) return env;
  ensurePackages(["postgresql"], log);
  if (env.postgres) await stopPrivatePostgres(env.postgres); // dead: only its directory is left to remove
  env.postgres = postgresFromEnv(process.env) ?? (await startPrivatePostgres(stateDir, log));
  env.vars.TEST_DATABASE_URL = env.postgres.url;
  saveTestEnv(env);
  return env;
}

/**
 * Runs `fn` with a test environment: the live shared one when it answers, otherwise a private one in a
 * temp dir that is torn down afterwards.
 */
export async function withTestEnv<T>(log: (m: string) => void, fn: (env: TestEnv) => Promise<T>): Promise<T> {
  const shared = await loadLiveTestEnv(SHARED_STATE_DIR);
  if (shared) {
    log(`reusing the live test environment in ${SHARED_STATE_DIR}`);
    return await fn(shared);
  }
  const env = await setUpTestEnv(mkdtempSync(join(tmpdir(), "slwp-test-env-")), log);
  try {
    return await fn(env);
  } finally {
    await tearDownTestEnv(env);
  }
}
