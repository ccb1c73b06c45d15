/**
 * Credentials for image pulls from a Docker `config.json` (SPACELIFT_DOCKER_CONFIG_DIR): `auths` entries
 * (`auth` = base64 "user:pass", or `identitytoken`), `credHelpers` per registry and the `credsStore` default,
 * which run `docker-credential-<name> get`. Registry names are normalised the way Docker does it.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { DockerError } from "./errors.ts";
import type { RegistryCredentials } from "./types.ts";

const DOCKER_HUB = "docker.io";
/** The key Docker uses for Docker Hub in config.json and with credential helpers. */
const DOCKER_HUB_SERVER = "https://index.docker.io/v1/";
const HUB_ALIASES = new Set(["docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"]);

/** The registry an image reference pulls from: `docker.io` or `host[:port]` (lower-cased host). @testSeam */
export function registryOf(imageRef: string): string {
  const slash = imageRef.indexOf("/");
  if (slash < 0) return DOCKER_HUB;
  const first = imageRef.slice(0, slash);
  const isHost = first.includes(".") || first.includes(":") || first === "localhost" || first !== first.toLowerCase();
  return isHost ? normaliseRegistry(first) : DOCKER_HUB;
}

/** `https://index.docker.io/v1/`, `registry-1.docker.io` → `docker.io`; `http://HOST:5000/v2/` → `host:5000`. @testSeam */
export function normaliseRegistry(key: string): string {
  const host = key.replace(/^[a-z]+:\/\//i, "").replace(/\/.*$/, "");
  const lower = host.toLowerCase();
  return HUB_ALIASES.has(lower) ? DOCKER_HUB : lower;
}

interface DockerConfig {
  auths?: Record<string, { auth?: string; username?: string; password?: string; identitytoken?: string }>;
  credHelpers?: Record<string, string>;
  credsStore?: string;
}

export interface AuthResolverOptions {
  /** PATH used to find docker-credential-* helpers. */
  path?: string;
  signal?: AbortSignal;
  helperTimeoutMs?: number;
}

/** Credentials for pulling `imageRef`, or undefined for an anonymous pull. */
export async function resolveRegistryAuth(
  configDir: string | undefined,
  imageRef: string,
  opts: AuthResolverOptions = {},
): Promise<RegistryCredentials | undefined> {
  if (!configDir) return undefined;
  const config = await readConfig(join(configDir, "config.json"));
  if (!config) return undefined;
  const registry = registryOf(imageRef);
  const server = registry === DOCKER_HUB ? DOCKER_HUB_SERVER : registry;

  const helper = findByRegistry(config.credHelpers ?? {}, registry);
  if (helper) return await fromHelper(helper, server, opts);
  // As the docker CLI: a credsStore holds the credentials of every registry without a credHelper, so it
  // is asked before auths; when it has none for this one, an auths entry written by hand still counts.
  if (config.credsStore) {
    const stored = await fromHelper(config.credsStore, server, opts);
    if (stored) return stored;
  }

  const entry = findByRegistry(config.auths ?? {}, registry);
  if (entry && (entry.auth || entry.username || entry.identitytoken)) {
    if (entry.identitytoken) return { identitytoken: entry.identitytoken, serveraddress: server };
    if (entry.auth) {
      const decoded = Buffer.from(entry.auth, "base64").toString("utf8");
      const colon = decoded.indexOf(":");
      if (colon < 0) throw new DockerError("registry-auth-failed", `config.json auths["${registry}"].auth is not base64 of "user:password"`);
      return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1), serveraddress: server };
    }
    return { username: entry.username ?? "", password: entry.password ?? "", serveraddress: server };
  }
  return undefined;
}

async function readConfig(file: string): Promise<DockerConfig | undefined> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    if ((err as { code?: string }).code === "ENOENT") return undefined;
    throw new DockerError("registry-auth-failed", `cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
  try {
    return JSON.parse(text) as DockerConfig;
  } catch (cause) {
    throw new DockerError("registry-auth-failed", `${file} is not valid JSON; fix it or remove it`, { cause });
  }
}

function findByRegistry<T>(map: Record<string, T>, registry: string): T | undefined {
  for (const [key, value] of Object.entries(map)) if (normaliseRegistry(key) === registry) return value;
  return undefined;
}

/** The credential-helper protocol's "not found" answer: pull anonymously, as the docker CLI does. */
const HELPER_NOT_FOUND = "credentials not found in native keychain";

async function fromHelper(name: string, server: string, opts: AuthResolverOptions): Promise<RegistryCredentials | undefined> {
  if (!/^[A-Za-z0-9._-]+$/.test(name)) throw new DockerError("registry-auth-failed", `credential helper name "${name}" is not valid`);
  const program = `docker-credential-${name}`;
  let proc: ReturnType<typeof Bun.spawn>;
  try {
    proc = Bun.spawn([program, "get"], {
      stdin: new TextEncoder().encode(server),
      stdout: "pipe",
      stderr: "pipe",
      env: { ...process.env, ...(opts.path !== undefined ? { PATH: opts.path } : {}) },
      timeout: opts.helperTimeoutMs ?? 30_000,
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
  } catch (cause) {
    throw new DockerError("registry-auth-failed", `credential helper ${program} could not be started (is it on PATH?)`, { cause });
  }
  const [stdout, stderr, code] = await Promise.all([
    new Response(proc.stdout as ReadableStream).text(),
    new Response(proc.stderr as ReadableStream).text(),
    proc.exited,
  ]);
  if (code !== 0) {
    if (stdout.trim() === HELPER_NOT_FOUND || stderr.trim() === HELPER_NOT_FOUND) return undefined;
    throw new DockerError("registry-auth-failed", `credential helper ${program} failed for ${server} (exit ${code}): ${(stderr || stdout).trim().slice(0, 200)}`);
  }
  let parsed: { Username?: string; Secret?: string };
  try {
    parsed = JSON.parse(stdout) as typeof parsed;
  } catch (cause) {
    throw new DockerError("registry-auth-failed", `credential helper ${program} printed something that is not JSON`, { cause });
  }
  if (parsed.Username === "<token>") return { identitytoken: parsed.Secret ?? "", serveraddress: server };
  return { username: parsed.Username ?? "", password: parsed.Secret ?? "", serveraddress: server };
}
