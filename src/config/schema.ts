/**
 * The one valibot schema of the launcher configuration. Each variable is an entry whose parser turns
 * the raw string (or its absence) into a typed value or into problems; cross-variable rules are
 * `partialCheck`s forwarded to the variable the operator has to fix. Pattern variables
 * (`SPACELIFT_METADATA_*`, `SPACELIFT_PRIVATEVCS_MAPPING_*`) live in nested groups whose entries are
 * made from the environment's keys, so a problem always names the exact variable, even one that is
 * missing. Valibot collects every issue (no abortEarly), which is how ALL problems are reported at once.
 */
import * as v from "valibot";
import { SpaceliftError } from "../errors.ts";
import { checkCertificateWindow, checkKeyMatchesCertificate, certificateWindow } from "../pki/credentials.ts";
import { decodePrivateKey } from "../pki/keys.ts";
import { decodeToken } from "../pki/token.ts";
import { parseTimeout } from "./duration.ts";
import { EXEC_ENABLED_VARIABLE, parseInitializationPolicy } from "./init-policy.ts";
import { parseNameList, resolveNames } from "./env-lists.ts";
import { parseMounts } from "./mounts.ts";
import { fail, ok, type ParseResult } from "./parse-result.ts";
import { metadataSlots, vcsSlots, type Slot } from "./pattern-variables.ts";
import {
  parseAbsolutePath,
  parseBoolean,
  parseDockerConfigDir,
  parseDockerHost,
  parseHttpUrl,
  parseImageReference,
  parseNetworkName,
  parseProtocol,
  parseRuntimeName,
} from "./values.ts";

type Env = Readonly<Record<string, string | undefined>>;

export interface SchemaOptions {
  readonly requireCredentials: boolean;
  readonly now: Date;
}

/**
 * An entry: the raw value (undefined when unset) through `parse`; every problem becomes an issue.
 * `union([string, undefined])` rather than `optional`: the input always holds every key (see
 * schemaInput), and a non-optional entry keeps the output key non-optional in the inferred type.
 */
function variable<T>(parse: (raw: string | undefined) => ParseResult<T>) {
  return v.pipe(
    v.union([v.string(), v.undefined()]),
    v.rawTransform<string | undefined, T>(({ dataset, addIssue, NEVER }) => {
      const result = parse(dataset.value);
      if (result.ok) return result.value;
      for (const message of result.problems) addIssue({ message });
      return NEVER;
    }),
  );
}

/**
 * An optional variable: unset gives `fallback` (parsed like a given value, so defaults are checked
 * too); set-but-empty is a problem of its own, since it usually means a template left it blank.
 */
function optional<T>(parse: (raw: string) => ParseResult<T>, example: string): ReturnType<typeof variable<T | undefined>>;
function optional<T>(parse: (raw: string) => ParseResult<T>, example: string, fallback: string): ReturnType<typeof variable<T>>;
function optional<T>(parse: (raw: string) => ParseResult<T>, example: string, fallback?: string) {
  return variable<T | undefined>((raw) => {
    if (raw === undefined) return fallback === undefined ? ok(undefined) : parse(fallback);
    if (raw.trim() === "") {
      return fail("is set but empty", fallback === undefined ? `unset it, or e.g. ${example}` : `unset it for the default ${fallback}, or e.g. ${example}`);
    }
    return parse(raw);
  });
}

/** A credential variable: required unless the caller runs without a mothership. Errors never echo it. */
function credential<T>(required: boolean, decode: (raw: string) => ParseResult<T>, howToSet: string) {
  return variable<T | undefined>((raw) => {
    if (raw === undefined) return required ? fail("is not set", howToSet) : ok(undefined);
    return decode(raw);
  });
}

/** Run a pki decoder; its SpaceliftError message (fixed text, no secret) is the problem. */
function decodeWith<T>(decode: () => T): ParseResult<T> {
  try {
    return ok(decode());
  } catch (err) {
    const message = err instanceof SpaceliftError ? err.message : "could not be decoded";
    return { ok: false, problems: [message] };
  }
}

function slotEntries<T>(slots: ReadonlyArray<Slot<T>>): Record<string, ReturnType<typeof variable<T>>> {
  return Object.fromEntries(slots.map((slot) => [slot.variable, variable(slot.parse)]));
}

const mountList = () => optional(parseMounts, "/opt/cache:/mnt/cache:ro");

/** Build the schema for this environment (its pattern-variable entries come from the env's keys). */
export function launcherSchema(env: Env, options: SchemaOptions) {
  const keys = Object.keys(env).filter((k) => env[k] !== undefined);
  const metadata = metadataSlots(keys);
  const vcs = vcsSlots(keys);

  const fixed = {
    SPACELIFT_TOKEN: credential(
      options.requireCredentials,
      (raw) => {
        const decoded = decodeWith(() => decodeToken(raw));
        if (!decoded.ok) return decoded;
        const outside = checkCertificateWindow(decoded.value.certificate, options.now);
        if (outside) return { ok: false, problems: [outside.message] };
        return ok({ token: decoded.value, window: certificateWindow(decoded.value.certificate) });
      },
      "give the token printed by `mothership pool create`",
    ),
    SPACELIFT_POOL_PRIVATE_KEY: credential(
      options.requireCredentials,
      (raw) => decodeWith(() => decodePrivateKey(raw)),
      "give base64 of the pool key, e.g. SPACELIFT_POOL_PRIVATE_KEY=$(base64 -w 0 spacelift.key)",
    ),
    SPACELIFT_WORKER_COMMS_PROTOCOL: optional(parseProtocol, "poll"),
    SPACELIFT_WORKER_COMMS_URL: optional(parseHttpUrl, "https://mothership.example.com:8443"),
    SPACELIFT_WORKER_COMMS_INSECURE_HTTP: optional(parseBoolean, "true", "false"),
    // Empty means unset here, as for the Docker CLI, which shares this variable with us.
    DOCKER_HOST: variable((raw) => parseDockerHost(raw === undefined || raw === "" ? "unix:///var/run/docker.sock" : raw)),
    SPACELIFT_LAUNCHER_SCRATCH_DIR: optional(
      (raw) => parseAbsolutePath(raw, "e.g. /opt/spacelift or /var/lib/spacelift"),
      "/var/lib/spacelift",
      "/opt/spacelift",
    ),
    SPACELIFT_DOCKER_CONFIG_DIR: optional(parseDockerConfigDir, "/root/.docker"),
    SPACELIFT_MASK_ENVS: optional(
      (raw) => chain(parseNameList(raw, { scopes: false }), (names) => resolveNames(names, env, { secret: true })),
      "DB_PASSWORD,API_TOKEN",
    ),
    SPACELIFT_WHITELIST_ENVS: optional(
      (raw) => chain(parseNameList(raw, { scopes: true }), (names) => resolveNames(names, env, { secret: false })),
      "AWS_REGION,ro_PLAN_TOKEN",
    ),
    SPACELIFT_WORKER_NETWORK: optional(parseNetworkName, "my-network", "bridge"),
    SPACELIFT_WORKER_EXTRA_MOUNTS: mountList(),
    SPACELIFT_WORKER_RO_EXTRA_MOUNTS: mountList(),
    SPACELIFT_WORKER_WO_EXTRA_MOUNTS: mountList(),
    SPACELIFT_WORKER_RUNTIME: optional(parseRuntimeName, "runsc"),
    SPACELIFT_LAUNCHER_LOGS_TIMEOUT: optional(parseTimeout, "15m", "7m"),
    SPACELIFT_LAUNCHER_RUN_TIMEOUT: optional(parseTimeout, "2h", "70m"),
    // Parsed and checked here, at load (./init-policy.ts); whether it may call exec() is the next variable.
    SPACELIFT_LAUNCHER_RUN_INITIALIZATION_POLICY: optional(
      (raw) => parseInitializationPolicy(raw, policyExecFlag(env[EXEC_ENABLED_VARIABLE])),
      "/etc/spacelift/init-policy.rego",
    ),
    SPACELIFT_LAUNCHER_RUN_INITIALIZATION_POLICY_EXEC_ENABLED: optional(parseBoolean, "true", "false"),
    SPACELIFT_DEFAULT_RUNNER_IMAGE: optional(parseImageReference, "public.ecr.aws/spacelift/runner-terraform:latest"),
    SPACELIFT_RUN_LOGS_ON_STANDARD_OUTPUT_ENABLED: optional(parseBoolean, "true", "false"),
    SPACELIFT_DEBUG: optional(parseBoolean, "true", "false"),
    SPACELIFT_INSTANCE_METADATA_ENDPOINT: optional(
      (raw) => {
        if (raw.trim().toLowerCase() === "off") return ok("off" as const);
        const url = parseHttpUrl(raw);
        return url.ok ? url : fail(`${JSON.stringify(raw)} is not an http(s) URL`, "e.g. http://169.254.169.254, or off to disable the spot watcher");
      },
      "http://169.254.169.254 or off",
      "http://169.254.169.254",
    ),
  };

  const schema = v.pipe(
    v.object({
      ...fixed,
      metadata: v.object(slotEntries(metadata)),
      vcs: v.object(slotEntries(vcs)),
    }),
    v.forward(
      v.partialCheck(
        [["SPACELIFT_TOKEN"], ["SPACELIFT_POOL_PRIVATE_KEY"]],
        (c) => c.SPACELIFT_TOKEN === undefined || c.SPACELIFT_POOL_PRIVATE_KEY === undefined
          || checkKeyMatchesCertificate(c.SPACELIFT_POOL_PRIVATE_KEY, c.SPACELIFT_TOKEN.token.certificate) === undefined,
        "the private key does not match the pool certificate in SPACELIFT_TOKEN; use the key whose CSR created this pool, or reset the pool with a CSR made from this key",
      ),
      ["SPACELIFT_POOL_PRIVATE_KEY"],
    ),
    // Without a mothership (run-local) the two are optional, but half a pair is still a mistake.
    v.forward(
      v.partialCheck(
        [["SPACELIFT_TOKEN"], ["SPACELIFT_POOL_PRIVATE_KEY"]],
        (c) => c.SPACELIFT_TOKEN !== undefined || c.SPACELIFT_POOL_PRIVATE_KEY === undefined,
        "is not set, but SPACELIFT_POOL_PRIVATE_KEY is; give both or neither",
      ),
      ["SPACELIFT_TOKEN"],
    ),
    v.forward(
      v.partialCheck(
        [["SPACELIFT_TOKEN"], ["SPACELIFT_POOL_PRIVATE_KEY"]],
        (c) => c.SPACELIFT_TOKEN === undefined || c.SPACELIFT_POOL_PRIVATE_KEY !== undefined,
        "is not set, but SPACELIFT_TOKEN is; give both or neither",
      ),
      ["SPACELIFT_POOL_PRIVATE_KEY"],
    ),
    v.forward(
      v.partialCheck(
        [["SPACELIFT_TOKEN"], ["SPACELIFT_WORKER_COMMS_PROTOCOL"]],
        (c) => c.SPACELIFT_WORKER_COMMS_PROTOCOL !== "mqtt" || c.SPACELIFT_TOKEN === undefined || c.SPACELIFT_TOKEN.token.broker !== undefined,
        "is mqtt, but the token names no broker; use poll, or a token from a mothership with a broker",
      ),
      ["SPACELIFT_WORKER_COMMS_PROTOCOL"],
    ),
    // Plain HTTP to the mothership only when the operator says so (README: SPACELIFT_WORKER_COMMS_INSECURE_HTTP).
    v.forward(
      v.partialCheck(
        [["SPACELIFT_TOKEN"], ["SPACELIFT_WORKER_COMMS_PROTOCOL"], ["SPACELIFT_WORKER_COMMS_URL"], ["SPACELIFT_WORKER_COMMS_INSECURE_HTTP"]],
        (c) => c.SPACELIFT_WORKER_COMMS_INSECURE_HTTP || !usesPoll(c) || !isPlainHttp(c.SPACELIFT_WORKER_COMMS_URL),
        `is a plain http:// URL; give the https:// URL of the mothership or of the TLS-terminating proxy in front of it, or set ${INSECURE_HTTP}=true ${INSECURE_HTTP_RISK}`,
      ),
      ["SPACELIFT_WORKER_COMMS_URL"],
    ),
    v.forward(
      v.partialCheck(
        [["SPACELIFT_TOKEN"], ["SPACELIFT_WORKER_COMMS_PROTOCOL"], ["SPACELIFT_WORKER_COMMS_URL"], ["SPACELIFT_WORKER_COMMS_INSECURE_HTTP"]],
        (c) => c.SPACELIFT_WORKER_COMMS_INSECURE_HTTP || !usesPoll(c) || c.SPACELIFT_WORKER_COMMS_URL !== undefined || !isPlainHttp(c.SPACELIFT_TOKEN?.token.comms_url),
        `has a plain http:// comms_url; set SPACELIFT_WORKER_COMMS_URL to the https:// URL of the mothership or of the TLS-terminating proxy in front of it, or set ${INSECURE_HTTP}=true ${INSECURE_HTTP_RISK}`,
      ),
      ["SPACELIFT_TOKEN"],
    ),
  );

  return { schema, input: schemaInput(env, fixed, metadata, vcs) };
}

function schemaInput(env: Env, fixed: object, metadata: ReadonlyArray<Slot<unknown>>, vcs: ReadonlyArray<Slot<unknown>>) {
  const pick = (names: readonly string[]) => Object.fromEntries(names.map((n) => [n, env[n]]));
  return {
    ...pick(Object.keys(fixed)),
    metadata: pick(metadata.map((s) => s.variable)),
    vcs: pick(vcs.map((s) => s.variable)),
  };
}

/**
 * The exec flag as the policy's compilation sees it. A malformed flag is reported on its own variable;
 * the policy is then compiled as if exec were allowed, so one mistake is not reported twice.
 */
function policyExecFlag(raw: string | undefined): boolean {
  if (raw === undefined) return false;
  const parsed = parseBoolean(raw);
  return parsed.ok ? parsed.value : true;
}

const INSECURE_HTTP = "SPACELIFT_WORKER_COMMS_INSECURE_HTTP";
const INSECURE_HTTP_RISK = "(messages stay signed both ways, but run logs and metadata travel readable)";

const isPlainHttp = (url: string | undefined): boolean => url !== undefined && url.toLowerCase().startsWith("http:");

/** The protocol in force: the variable, else mqtt when the token names a broker (launcher-config.ts does the same). */
function usesPoll(c: { SPACELIFT_TOKEN?: { token: { broker?: unknown } }; SPACELIFT_WORKER_COMMS_PROTOCOL?: string }): boolean {
  return (c.SPACELIFT_WORKER_COMMS_PROTOCOL ?? (c.SPACELIFT_TOKEN?.token.broker !== undefined ? "mqtt" : "poll")) === "poll";
}

function chain<A, B>(first: ParseResult<A>, then: (a: A) => ParseResult<B>): ParseResult<B> {
  return first.ok ? then(first.value) : first;
}

export type LauncherSchema = ReturnType<typeof launcherSchema>["schema"];
export type ParsedEnv = v.InferOutput<LauncherSchema>;
