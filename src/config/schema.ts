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
import { decodePrivateKey, type PoolPrivateKey } from "../pki/keys.ts";
import { decodeToken, type PoolToken } from "../pki/token.ts";
import { parseTimeout } from "./duration.ts";
import { EXEC_ENABLED_VARIABLE, parseInitializationPolicy } from "./init-policy.ts";
import { parseNameList, resolveNames } from "./env-lists.ts";
import { parseMounts } from "./mounts.ts";
import { parseListenAddress } from "./listen-address.ts";
import { readCaBundle, readCredentialFile } from "./files.ts";
import { parseNoProxy, parseProxyUrl, proxyVariable } from "./proxy.ts";
import { certificatesFromJson } from "../pki/trust.ts";
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

/**
 * The file form of a credential (`SPACELIFT_TOKEN_FILE` for `SPACELIFT_TOKEN`, ...): exactly one of
 * the pair may be set, and the file's content is decoded as the variable's value would be.
 */
function credentialFile<T>(pairedWith: string, env: Env, decode: (raw: string) => ParseResult<T>, example: string) {
  return optional((raw) => {
    if (env[pairedWith] !== undefined) {
      return fail(`is set together with ${pairedWith}`, `give exactly one of them (unset ${pairedWith} to keep the secret out of the environment)`);
    }
    const content = readCredentialFile(raw, `give the path of a file holding what ${pairedWith} would hold, e.g. ${example}`);
    return content.ok ? decode(content.value) : content;
  }, example);
}

/** A proxy variable, upper or lower case (./proxy.ts); an empty value is unset, as for curl and Go. */
function proxyEntry<T>(upper: "HTTPS_PROXY" | "HTTP_PROXY" | "NO_PROXY", env: Env, parse: (variable: string, raw: string) => ParseResult<T>) {
  return variable<T | undefined>(() => {
    const set = proxyVariable(env, upper);
    return set === undefined ? ok(undefined) : parse(set.name, set.value);
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

  const decodeTokenValue = (raw: string) => {
    const decoded = decodeWith(() => decodeToken(raw));
    if (!decoded.ok) return decoded;
    const outside = checkCertificateWindow(decoded.value.certificate, options.now);
    if (outside) return { ok: false as const, problems: [outside.message] };
    return ok({ token: decoded.value, window: certificateWindow(decoded.value.certificate) });
  };
  const decodeKeyValue = (raw: string) => decodeWith(() => decodePrivateKey(raw));
  const fixed = {
    SPACELIFT_TOKEN: credential(
      options.requireCredentials && env.SPACELIFT_TOKEN_FILE === undefined,
      decodeTokenValue,
      "give the token printed by `mothership pool create`, or SPACELIFT_TOKEN_FILE with the path of a file holding it",
    ),
    SPACELIFT_TOKEN_FILE: credentialFile("SPACELIFT_TOKEN", env, decodeTokenValue, "/run/credentials/spacelift-launcher.service/token"),
    SPACELIFT_POOL_PRIVATE_KEY: credential(
      options.requireCredentials && env.SPACELIFT_POOL_PRIVATE_KEY_FILE === undefined,
      decodeKeyValue,
      "give base64 of the pool key, e.g. SPACELIFT_POOL_PRIVATE_KEY=$(base64 -w 0 spacelift.key), or SPACELIFT_POOL_PRIVATE_KEY_FILE=/path/to/spacelift.key",
    ),
    SPACELIFT_POOL_PRIVATE_KEY_FILE: credentialFile("SPACELIFT_POOL_PRIVATE_KEY", env, decodeKeyValue, "/etc/spacelift/spacelift.key"),
    SPACELIFT_ADDITIONAL_CA_CERTIFICATES_FILE: optional(readCaBundle, "/etc/ssl/certs/corporate-root.pem"),
    SPACELIFT_ADDITIONAL_CA_CERTIFICATES: optional((raw) => {
      const parsed = certificatesFromJson(raw);
      return parsed.ok ? ok(parsed.pems) : { ok: false, problems: [parsed.problem] };
    }, "$(base64 -w 0 ca-certs.json)"),
    HTTPS_PROXY: proxyEntry("HTTPS_PROXY", env, parseProxyUrl),
    HTTP_PROXY: proxyEntry("HTTP_PROXY", env, parseProxyUrl),
    NO_PROXY: proxyEntry("NO_PROXY", env, parseNoProxy),
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
    SPACELIFT_LAUNCHER_METRICS_ADDR: optional(parseListenAddress, "127.0.0.1:9100"),
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

  const entries = v.object({
    ...fixed,
    metadata: v.object(slotEntries(metadata)),
    vcs: v.object(slotEntries(vcs)),
  });
  type Out = v.InferOutput<typeof entries>;
  const schema = v.pipe(
    entries,
    // Reported on the form of the key that is set (the variable or its file).
    keyMatchCheck<Out>("SPACELIFT_POOL_PRIVATE_KEY"),
    keyMatchCheck<Out>("SPACELIFT_POOL_PRIVATE_KEY_FILE"),
    // Without a mothership (run-local) the two are optional, but half a pair is still a mistake.
    crossCheck<Out>(
      CREDENTIALS,
      (c) => tokenOf(c) !== undefined || keyOf(c) === undefined,
      "is not set (nor SPACELIFT_TOKEN_FILE), but the pool key is; give both or neither",
      "SPACELIFT_TOKEN",
    ),
    crossCheck<Out>(
      CREDENTIALS,
      (c) => tokenOf(c) === undefined || keyOf(c) !== undefined,
      "is not set (nor SPACELIFT_POOL_PRIVATE_KEY_FILE), but the token is; give both or neither",
      "SPACELIFT_POOL_PRIVATE_KEY",
    ),
    crossCheck<Out>(
      ["SPACELIFT_TOKEN", "SPACELIFT_TOKEN_FILE", "SPACELIFT_WORKER_COMMS_PROTOCOL"],
      (c) => c.SPACELIFT_WORKER_COMMS_PROTOCOL !== "mqtt" || tokenOf(c) === undefined || tokenOf(c)!.token.broker !== undefined,
      "is mqtt, but the token names no broker; use poll, or a token from a mothership with a broker",
      "SPACELIFT_WORKER_COMMS_PROTOCOL",
    ),
    // Plain HTTP to the mothership only when the operator says so (README: SPACELIFT_WORKER_COMMS_INSECURE_HTTP).
    crossCheck<Out>(
      COMMS,
      (c) => c.SPACELIFT_WORKER_COMMS_INSECURE_HTTP === true || !usesPoll(c) || !isPlainHttp(c.SPACELIFT_WORKER_COMMS_URL),
      `is a plain http:// URL; give the https:// URL of the mothership or of the TLS-terminating proxy in front of it, or set ${INSECURE_HTTP}=true ${INSECURE_HTTP_RISK}`,
      "SPACELIFT_WORKER_COMMS_URL",
    ),
    plainHttpTokenCheck<Out>("SPACELIFT_TOKEN"),
    plainHttpTokenCheck<Out>("SPACELIFT_TOKEN_FILE"),
  );

  return { schema, input: schemaInput(env, fixed, metadata, vcs) };
}

type CheckInput = {
  SPACELIFT_TOKEN?: { token: PoolToken } | undefined;
  SPACELIFT_TOKEN_FILE?: { token: PoolToken } | undefined;
  SPACELIFT_POOL_PRIVATE_KEY?: PoolPrivateKey | undefined;
  SPACELIFT_POOL_PRIVATE_KEY_FILE?: PoolPrivateKey | undefined;
  SPACELIFT_WORKER_COMMS_PROTOCOL?: string | undefined;
  SPACELIFT_WORKER_COMMS_URL?: string | undefined;
  SPACELIFT_WORKER_COMMS_INSECURE_HTTP?: boolean | undefined;
};

const CREDENTIALS = ["SPACELIFT_TOKEN", "SPACELIFT_TOKEN_FILE", "SPACELIFT_POOL_PRIVATE_KEY", "SPACELIFT_POOL_PRIVATE_KEY_FILE"] as const;
const COMMS = ["SPACELIFT_TOKEN", "SPACELIFT_TOKEN_FILE", "SPACELIFT_WORKER_COMMS_PROTOCOL", "SPACELIFT_WORKER_COMMS_URL", "SPACELIFT_WORKER_COMMS_INSECURE_HTTP"] as const;

/**
 * A rule across variables: checked when none of `names` has a problem of its own, reported on
 * `target`. valibot's partialCheck and forward, typed by hand: inferring every combination of
 * these many optional entries is more than the type checker can do.
 */
function crossCheck<T extends CheckInput>(names: ReadonlyArray<keyof CheckInput>, requirement: (c: CheckInput) => boolean, message: string, target: keyof CheckInput) {
  const check = v.partialCheck(names.map((n) => [n]) as never, requirement as never, message);
  return v.forward(check as never, [target] as never) as unknown as v.BaseValidation<T, T, v.BaseIssue<unknown>>;
}

function keyMatchCheck<T extends CheckInput>(form: "SPACELIFT_POOL_PRIVATE_KEY" | "SPACELIFT_POOL_PRIVATE_KEY_FILE") {
  return crossCheck<T>(
    CREDENTIALS,
    (c) => {
      const key = c[form];
      return tokenOf(c) === undefined || key === undefined || checkKeyMatchesCertificate(key, tokenOf(c)!.token.certificate) === undefined;
    },
    "the private key does not match the pool certificate in the token; use the key whose CSR created this pool, or reset the pool with a CSR made from this key",
    form,
  );
}

function plainHttpTokenCheck<T extends CheckInput>(form: "SPACELIFT_TOKEN" | "SPACELIFT_TOKEN_FILE") {
  return crossCheck<T>(
    COMMS,
    (c) => c.SPACELIFT_WORKER_COMMS_INSECURE_HTTP === true || !usesPoll(c) || c.SPACELIFT_WORKER_COMMS_URL !== undefined || !isPlainHttp(c[form]?.token.comms_url),
    `has a plain http:// comms_url; set SPACELIFT_WORKER_COMMS_URL to the https:// URL of the mothership or of the TLS-terminating proxy in front of it, or set ${INSECURE_HTTP}=true ${INSECURE_HTTP_RISK}`,
    form,
  );
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
function usesPoll(c: TokenPair & { SPACELIFT_WORKER_COMMS_PROTOCOL?: string }): boolean {
  return (c.SPACELIFT_WORKER_COMMS_PROTOCOL ?? (tokenOf(c)?.token.broker !== undefined ? "mqtt" : "poll")) === "poll";
}

/** The token and key of the pair in force: the variable or its _FILE form (never both, see credentialFile). */
interface TokenPair {
  SPACELIFT_TOKEN?: { token: PoolToken } | undefined;
  SPACELIFT_TOKEN_FILE?: { token: PoolToken } | undefined;
}
function tokenOf<T extends TokenPair>(c: T): T["SPACELIFT_TOKEN"] {
  return c.SPACELIFT_TOKEN ?? c.SPACELIFT_TOKEN_FILE;
}
function keyOf(c: { SPACELIFT_POOL_PRIVATE_KEY?: PoolPrivateKey | undefined; SPACELIFT_POOL_PRIVATE_KEY_FILE?: PoolPrivateKey | undefined }): PoolPrivateKey | undefined {
  return c.SPACELIFT_POOL_PRIVATE_KEY ?? c.SPACELIFT_POOL_PRIVATE_KEY_FILE;
}

function chain<A, B>(first: ParseResult<A>, then: (a: A) => ParseResult<B>): ParseResult<B> {
  return first.ok ? then(first.value) : first;
}

export type LauncherSchema = ReturnType<typeof launcherSchema>["schema"];
export type ParsedEnv = v.InferOutput<LauncherSchema>;
