/**
 * Launcher configuration: every `SPACELIFT_*` variable (and `DOCKER_HOST`) parsed once, at start, by
 * one valibot schema (./schema.ts) into a deep-frozen object that main.ts injects. A bad configuration
 * is reported as ALL its problems at once, one line each: "VARIABLE: what is wrong; a good value".
 * Nothing here reads process.env: the caller passes the environment in.
 */
import * as v from "valibot";
import { SpaceliftError } from "../errors.ts";
import type { CertificateWindow } from "../pki/credentials.ts";
import type { PoolPrivateKey } from "../pki/keys.ts";
import type { PoolToken } from "../pki/token.ts";
import type { PassedVariable } from "./env-lists.ts";
import type { InitializationPolicy } from "./init-policy.ts";
import type { ListenAddress } from "./listen-address.ts";
import type { Mount } from "./mounts.ts";
import { collectVcsMappings, type VcsMapping } from "./pattern-variables.ts";
import type { ProxySettings } from "./proxy.ts";
import { launcherSchema, type ParsedEnv } from "./schema.ts";
import type { CommsProtocol, DockerHost } from "./values.ts";

export { CONFIG_VARIABLES, unknownVariables } from "./variables.ts";
export { describeConfig } from "./describe.ts";

export interface ConfigProblem {
  readonly variable: string;
  /** What is wrong, then "; " and what a good value looks like. Never contains a secret. */
  readonly message: string;
}

export class ConfigError extends SpaceliftError {
  readonly problems: readonly ConfigProblem[];

  constructor(problems: readonly ConfigProblem[]) {
    super("config-invalid", problems.map(formatProblem).join("\n"));
    this.problems = problems;
  }
}

/** ONE line: "SPACELIFT_X: <what is wrong>; <good example>". */
export function formatProblem(p: ConfigProblem): string {
  return `${p.variable}: ${p.message}`.replace(/[\r\n]+/g, " ");
}

export interface PoolCredentials {
  readonly token: PoolToken;
  readonly key: PoolPrivateKey;
  /** The pool certificate's validity window (checked against `now` at load). */
  readonly certificate: CertificateWindow;
}

export interface LauncherConfig {
  /** Undefined only when loaded with `requireCredentials: false` and neither variable is set. */
  readonly credentials: PoolCredentials | undefined;
  readonly comms: {
    readonly protocol: CommsProtocol;
    /** Base URL for `poll` (from the variable, else the token). */
    readonly url: string | undefined;
    /** The token's broker; present whenever protocol is `mqtt` and credentials are given. */
    readonly broker: { readonly endpoint: string; readonly namespace: string } | undefined;
    /** SPACELIFT_WORKER_COMMS_INSECURE_HTTP: the operator accepts a plain http:// comms URL. */
    readonly insecureHttp: boolean;
  };
  /** HTTPS_PROXY, HTTP_PROXY, NO_PROXY (or lower case) for the connections to the mothership (src/transport/proxy.ts). */
  readonly proxy: ProxySettings;
  /** CA certificates trusted on top of the token's CA, and given to run containers (README: private CAs). */
  readonly trust: {
    /** PEM certificates from SPACELIFT_ADDITIONAL_CA_CERTIFICATES_FILE, then SPACELIFT_ADDITIONAL_CA_CERTIFICATES. */
    readonly additionalCas: readonly string[];
    /** Absolute path of SPACELIFT_ADDITIONAL_CA_CERTIFICATES_FILE, checked at load. */
    readonly additionalCasFile: string | undefined;
  };
  readonly docker: {
    readonly host: DockerHost;
    /** Directory holding config.json for registry auth. */
    readonly configDir: string | undefined;
    readonly network: string;
    readonly runtime: string | undefined;
    readonly defaultRunnerImage: string | undefined;
  };
  /** Workspaces and the worker bundle live here (absolute). */
  readonly scratchDir: string;
  /** Launcher variables passed into runs; masked values are secrets to mask in every log. */
  readonly runEnv: {
    readonly masked: readonly PassedVariable[];
    readonly whitelisted: readonly PassedVariable[];
  };
  readonly mounts: {
    readonly allRuns: readonly Mount[];
    readonly readOnlyRuns: readonly Mount[];
    readonly writeRuns: readonly Mount[];
  };
  readonly timeouts: { readonly logsMs: number; readonly runMs: number };
  /** Absolute path of the run-initialization policy (Rego), checked readable at load. */
  readonly runInitializationPolicyPath: string | undefined;
  /** The same policy, parsed and checked at load; `exec()` only when the operator enabled it. */
  readonly runInitializationPolicy: InitializationPolicy | undefined;
  /** Whether an initialization policy may call `exec()` (SPACELIFT_LAUNCHER_RUN_INITIALIZATION_POLICY_EXEC_ENABLED). */
  readonly runInitializationPolicyExecEnabled: boolean;
  /** Registration tags: key as written after SPACELIFT_METADATA_. */
  readonly metadata: Readonly<Record<string, string>>;
  readonly privateVcsMappings: readonly VcsMapping[];
  readonly runLogsOnStdout: boolean;
  readonly debug: boolean;
  /** EC2 instance metadata (IMDSv2) base URL for the spot watcher; undefined when switched off. */
  readonly instanceMetadataEndpoint: string | undefined;
  /** SPACELIFT_LAUNCHER_METRICS_ADDR: where /metrics and /healthz listen; undefined: no listener. */
  readonly metricsAddr: ListenAddress | undefined;
  /** The variables that were set (the rest are defaults), for `check` output. */
  readonly setVariables: readonly string[];
}

export interface LoadOptions {
  /** Default true; false for `run-local`, which needs no mothership. */
  requireCredentials?: boolean;
  /** The moment the certificate must be valid at; defaults to the current time. */
  now?: Date;
}

/** Parse the launcher's environment. Throws ConfigError listing every problem. */
export function loadLauncherConfig(env: Record<string, string | undefined>, opts: LoadOptions = {}): LauncherConfig {
  const { schema, input } = launcherSchema(env, {
    requireCredentials: opts.requireCredentials ?? true,
    now: opts.now ?? new Date(),
  });
  const result = v.safeParse(schema, input);
  if (!result.success) throw new ConfigError(result.issues.map(toProblem));
  return deepFreeze(assemble(result.output, input));
}

/**
 * The variable an issue belongs to: the deepest key of its path (pattern variables sit one level
 * down). Only our own messages are used — valibot's defaults would quote the received value.
 */
function toProblem(issue: v.BaseIssue<unknown>): ConfigProblem {
  const keys = (issue.path ?? []).map((item) => item.key).filter((k): k is string => typeof k === "string");
  const variable = keys.at(-1) ?? "configuration";
  const own = issue.type === "raw_transform" || issue.type === "partial_check";
  return { variable, message: own ? issue.message : "has a value of the wrong type; give a string" };
}

function assemble(p: ParsedEnv, input: { metadata: object; vcs: object }): LauncherConfig {
  const tokenInfo = p.SPACELIFT_TOKEN ?? p.SPACELIFT_TOKEN_FILE;
  const key = p.SPACELIFT_POOL_PRIVATE_KEY ?? p.SPACELIFT_POOL_PRIVATE_KEY_FILE;
  const credentials = tokenInfo && key ? { token: tokenInfo.token, key, certificate: tokenInfo.window } : undefined;
  const token = credentials?.token;
  const protocol: CommsProtocol = p.SPACELIFT_WORKER_COMMS_PROTOCOL ?? (token?.broker !== undefined ? "mqtt" : "poll");
  const setVariables = Object.entries(input)
    .flatMap(([k, val]): Array<[string, unknown]> => (k === "metadata" || k === "vcs" ? Object.entries(val as object) : [[k, val]]))
    .flatMap(([k, val]) => (val === undefined ? [] : [k]));
  return {
    credentials,
    comms: { protocol, url: p.SPACELIFT_WORKER_COMMS_URL ?? token?.comms_url, broker: token?.broker, insecureHttp: p.SPACELIFT_WORKER_COMMS_INSECURE_HTTP ?? false },
    proxy: { https: p.HTTPS_PROXY, http: p.HTTP_PROXY, noProxy: p.NO_PROXY ?? { entries: [], variable: undefined } },
    trust: {
      additionalCas: [...(p.SPACELIFT_ADDITIONAL_CA_CERTIFICATES_FILE?.pems ?? []), ...(p.SPACELIFT_ADDITIONAL_CA_CERTIFICATES ?? [])],
      additionalCasFile: p.SPACELIFT_ADDITIONAL_CA_CERTIFICATES_FILE?.path,
    },
    docker: {
      host: p.DOCKER_HOST,
      configDir: p.SPACELIFT_DOCKER_CONFIG_DIR,
      network: p.SPACELIFT_WORKER_NETWORK,
      runtime: p.SPACELIFT_WORKER_RUNTIME,
      defaultRunnerImage: p.SPACELIFT_DEFAULT_RUNNER_IMAGE,
    },
    scratchDir: p.SPACELIFT_LAUNCHER_SCRATCH_DIR,
    runEnv: { masked: p.SPACELIFT_MASK_ENVS ?? [], whitelisted: p.SPACELIFT_WHITELIST_ENVS ?? [] },
    mounts: {
      allRuns: p.SPACELIFT_WORKER_EXTRA_MOUNTS ?? [],
      readOnlyRuns: p.SPACELIFT_WORKER_RO_EXTRA_MOUNTS ?? [],
      writeRuns: p.SPACELIFT_WORKER_WO_EXTRA_MOUNTS ?? [],
    },
    timeouts: { logsMs: p.SPACELIFT_LAUNCHER_LOGS_TIMEOUT, runMs: p.SPACELIFT_LAUNCHER_RUN_TIMEOUT },
    runInitializationPolicyPath: p.SPACELIFT_LAUNCHER_RUN_INITIALIZATION_POLICY?.path,
    runInitializationPolicy: p.SPACELIFT_LAUNCHER_RUN_INITIALIZATION_POLICY,
    runInitializationPolicyExecEnabled: p.SPACELIFT_LAUNCHER_RUN_INITIALIZATION_POLICY_EXEC_ENABLED,
    metadata: Object.fromEntries(Object.values(p.metadata).map((t) => [t.key, t.value])),
    privateVcsMappings: collectVcsMappings(Object.values(p.vcs)),
    runLogsOnStdout: p.SPACELIFT_RUN_LOGS_ON_STANDARD_OUTPUT_ENABLED,
    debug: p.SPACELIFT_DEBUG,
    instanceMetadataEndpoint: p.SPACELIFT_INSTANCE_METADATA_ENDPOINT === "off" ? undefined : p.SPACELIFT_INSTANCE_METADATA_ENDPOINT,
    metricsAddr: p.SPACELIFT_LAUNCHER_METRICS_ADDR,
    setVariables: setVariables.sort(),
  };
}

/**
 * Freeze plain objects and arrays all the way down. Class instances (KeyObject, Buffer) are left as
 * they are: they are immutable in practice, and freezing a Buffer throws.
 */
function deepFreeze<T>(value: T): T {
  if (Array.isArray(value)) {
    for (const item of value) deepFreeze(item);
    return Object.freeze(value);
  }
  if (value !== null && typeof value === "object") {
    const proto = Object.getPrototypeOf(value) as unknown;
    if (proto !== Object.prototype && proto !== null) return value;
    for (const item of Object.values(value)) deepFreeze(item);
    return Object.freeze(value);
  }
  return value;
}

/** The credentials of a config loaded with `requireCredentials` (the default); throws otherwise. */
export function requireCredentials(config: LauncherConfig): PoolCredentials {
  if (config.credentials === undefined) {
    throw new ConfigError([{ variable: "SPACELIFT_TOKEN", message: "is not set; give the token printed by `mothership pool create`" }]);
  }
  return config.credentials;
}
