/**
 * The effective configuration as (variable, value) rows for `spacelift-launcher check`: every known
 * variable, the value in force and where it came from. The token, the key and masked values are
 * redacted; only facts that are not secret (key algorithm, certificate dates) are shown about them.
 */
import { certificateSubjects } from "../pki/trust.ts";
import { bindString, type Mount } from "./mounts.ts";
import { formatGoDuration } from "./duration.ts";
import { EXEC_ENABLED_VARIABLE } from "./init-policy.ts";
import type { LauncherConfig } from "./launcher-config.ts";
import { METADATA_PREFIX, VCS_ENDPOINT, VCS_NAME } from "./pattern-variables.ts";
import type { PassedVariable } from "./env-lists.ts";

const REDACTED = "<redacted>";

export function describeConfig(c: LauncherConfig): Array<[string, string]> {
  const set = new Set(c.setVariables);
  const src = (name: string, value: string, fallbackNote = "default") =>
    set.has(name) ? value : `${value} (${fallbackNote})`;
  const none = (name: string, value: string | undefined, unsetText = "not set") =>
    value === undefined ? unsetText : src(name, value);
  const creds = c.credentials;
  const rows: Array<[string, string]> = [
    [
      "SPACELIFT_TOKEN",
      creds
        ? `${REDACTED}; pool certificate valid ${creds.certificate.notBefore.toISOString()} to ${creds.certificate.notAfter.toISOString()}; ${creds.token.broker ? "has a broker" : "no broker"}`
        : "not set",
    ],
    ["SPACELIFT_POOL_PRIVATE_KEY", creds ? `${REDACTED}; ${creds.key.description} (${creds.key.format})` : "not set"],
    // The file forms: only their path is shown, never what they hold.
    ...(["SPACELIFT_TOKEN_FILE", "SPACELIFT_POOL_PRIVATE_KEY_FILE"] as const)
      .filter((name) => set.has(name))
      .map((name): [string, string] => [name, "set (its content is what the variable above shows)"]),
    [
      "SPACELIFT_WORKER_COMMS_PROTOCOL",
      src("SPACELIFT_WORKER_COMMS_PROTOCOL", c.comms.protocol, creds?.token.broker ? "default: the token has a broker" : "default: no broker in the token"),
    ],
    ["SPACELIFT_WORKER_COMMS_URL", c.comms.url === undefined ? "not set" : src("SPACELIFT_WORKER_COMMS_URL", c.comms.url, "from the token")],
    ["SPACELIFT_WORKER_COMMS_INSECURE_HTTP", src("SPACELIFT_WORKER_COMMS_INSECURE_HTTP", String(c.comms.insecureHttp))],
    ["SPACELIFT_ADDITIONAL_CA_CERTIFICATES_FILE", none("SPACELIFT_ADDITIONAL_CA_CERTIFICATES_FILE", c.trust.additionalCasFile)],
    [
      "additional CA certificates",
      c.trust.additionalCas.length === 0 ? "none" : `${c.trust.additionalCas.length}: ${certificateSubjects(c.trust.additionalCas).join("; ")}`,
    ],
    ["HTTPS_PROXY", c.proxy.https ? `${c.proxy.https.shown}${c.proxy.https.variable === "HTTPS_PROXY" ? "" : ` (from ${c.proxy.https.variable})`}` : "not set"],
    ["HTTP_PROXY", c.proxy.http ? `${c.proxy.http.shown}${c.proxy.http.variable === "HTTP_PROXY" ? "" : ` (from ${c.proxy.http.variable})`}` : "not set"],
    ["NO_PROXY", c.proxy.noProxy.variable === undefined ? "not set" : `${c.proxy.noProxy.entries.length} entr${c.proxy.noProxy.entries.length === 1 ? "y" : "ies"}${c.proxy.noProxy.variable === "NO_PROXY" ? "" : ` (from ${c.proxy.noProxy.variable})`}`],
    ["DOCKER_HOST", src("DOCKER_HOST", c.docker.host.url)],
    ["SPACELIFT_LAUNCHER_SCRATCH_DIR", src("SPACELIFT_LAUNCHER_SCRATCH_DIR", c.scratchDir)],
    ["SPACELIFT_DOCKER_CONFIG_DIR", none("SPACELIFT_DOCKER_CONFIG_DIR", c.docker.configDir, "not set (anonymous pulls)")],
    ["SPACELIFT_MASK_ENVS", listOrNone(c.runEnv.masked.map((m) => `${m.name}=${REDACTED}`))],
    ["SPACELIFT_WHITELIST_ENVS", listOrNone(c.runEnv.whitelisted.map(scoped))],
    ["SPACELIFT_WORKER_NETWORK", src("SPACELIFT_WORKER_NETWORK", c.docker.network)],
    ["SPACELIFT_WORKER_EXTRA_MOUNTS", mounts(c.mounts.allRuns)],
    ["SPACELIFT_WORKER_RO_EXTRA_MOUNTS", mounts(c.mounts.readOnlyRuns)],
    ["SPACELIFT_WORKER_WO_EXTRA_MOUNTS", mounts(c.mounts.writeRuns)],
    ["SPACELIFT_WORKER_RUNTIME", none("SPACELIFT_WORKER_RUNTIME", c.docker.runtime, "not set (Docker's default)")],
    ["SPACELIFT_LAUNCHER_LOGS_TIMEOUT", src("SPACELIFT_LAUNCHER_LOGS_TIMEOUT", formatGoDuration(c.timeouts.logsMs))],
    ["SPACELIFT_LAUNCHER_RUN_TIMEOUT", src("SPACELIFT_LAUNCHER_RUN_TIMEOUT", formatGoDuration(c.timeouts.runMs))],
    ["SPACELIFT_LAUNCHER_RUN_INITIALIZATION_POLICY", none("SPACELIFT_LAUNCHER_RUN_INITIALIZATION_POLICY", c.runInitializationPolicyPath)],
    // The exec switch only means something next to a policy: shown with one, or when set anyway.
    ...(c.runInitializationPolicy !== undefined || set.has(EXEC_ENABLED_VARIABLE)
      ? [[EXEC_ENABLED_VARIABLE, src(EXEC_ENABLED_VARIABLE, String(c.runInitializationPolicyExecEnabled))] as [string, string]]
      : []),
    ["SPACELIFT_DEFAULT_RUNNER_IMAGE", none("SPACELIFT_DEFAULT_RUNNER_IMAGE", c.docker.defaultRunnerImage)],
    ["SPACELIFT_RUN_LOGS_ON_STANDARD_OUTPUT_ENABLED", src("SPACELIFT_RUN_LOGS_ON_STANDARD_OUTPUT_ENABLED", String(c.runLogsOnStdout))],
    ["SPACELIFT_DEBUG", src("SPACELIFT_DEBUG", String(c.debug))],
    ["SPACELIFT_LAUNCHER_METRICS_ADDR", c.metricsAddr ? `${c.metricsAddr.host.includes(":") ? `[${c.metricsAddr.host}]` : c.metricsAddr.host}:${c.metricsAddr.port}` : "not set (no /metrics listener)"],
  ];
  for (const [key, value] of Object.entries(c.metadata)) rows.push([`${METADATA_PREFIX}${key}`, value]);
  c.privateVcsMappings.forEach((m, n) => {
    rows.push([`${VCS_NAME}${n}`, m.name], [`${VCS_ENDPOINT}${n}`, m.baseEndpoint]);
  });
  return rows;
}

function listOrNone(items: readonly string[]): string {
  return items.length === 0 ? "not set" : items.join(", ");
}

function scoped(v: PassedVariable): string {
  return v.scope === "all" ? v.name : `${v.name} (${v.scope === "readonly" ? "read-only" : "write"} runs only)`;
}

function mounts(list: readonly Mount[]): string {
  return listOrNone(list.map(bindString));
}
