/**
 * Every variable the launcher configuration knows, with its default and meaning: the single list
 * behind CONFIG_VARIABLES, `--help` output and the README table (a test keeps the README in step).
 * Pattern variables are written with their placeholder (`<key>`, `<n>`).
 */
export interface VariableDoc {
  readonly name: string;
  /** What applies when the variable is unset, as shown to operators. */
  readonly default: string;
  readonly meaning: string;
}

const VARIABLE_DOCS: readonly VariableDoc[] = [
  { name: "SPACELIFT_TOKEN", default: "required", meaning: "pool token printed by `mothership pool create` (base64 JSON: pool id, broker, comms URL, pool certificate, CA)" },
  { name: "SPACELIFT_POOL_PRIVATE_KEY", default: "required", meaning: "the pool private key: base64 of the whole PEM file (`base64 -w 0 spacelift.key`); PKCS#8, PKCS#1 RSA or SEC1 EC, unencrypted; raw PEM text is accepted too" },
  { name: "SPACELIFT_TOKEN_FILE", default: "none", meaning: "path of a file holding the token instead of `SPACELIFT_TOKEN` (a systemd credential, a Kubernetes secret volume); surrounding whitespace is ignored; set exactly one of the two" },
  { name: "SPACELIFT_POOL_PRIVATE_KEY_FILE", default: "none", meaning: "path of a file holding the pool key (the PEM file itself, or its base64) instead of `SPACELIFT_POOL_PRIVATE_KEY`; set exactly one of the two" },
  { name: "SPACELIFT_WORKER_COMMS_PROTOCOL", default: "`mqtt` when the token has a broker, else `poll`", meaning: "`mqtt` (the token's broker, mutual TLS) or `poll` (HTTP long-poll to the comms URL)" },
  { name: "SPACELIFT_WORKER_COMMS_URL", default: "the token's `comms_url`", meaning: "base http(s) URL of the mothership for `poll` (signed requests; https trusts the token's CA)" },
  { name: "SPACELIFT_WORKER_COMMS_INSECURE_HTTP", default: "`false`", meaning: "let `poll` use a plain `http://` comms URL (e.g. behind a proxy on the same host); messages stay signed both ways, so nobody on the path can forge or replay them, but run logs and metadata travel readable; `true/false/1/0/yes/no`" },
  { name: "SPACELIFT_ADDITIONAL_CA_CERTIFICATES_FILE", default: "none", meaning: "PEM bundle of CA certificates trusted on top of the token's CA (a TLS-inspecting proxy, a load balancer in front of the mothership, a private VCS); also given to every run (see Private CAs below)" },
  { name: "SPACELIFT_ADDITIONAL_CA_CERTIFICATES", default: "none", meaning: "the same as base64 of `{\"caCertificates\": [\"<base64 of a PEM certificate>\", ...]}` (the worker pool documents' form); both variables may be set, their certificates add up" },
  { name: "HTTPS_PROXY", default: "none", meaning: "proxy (`http://[user:password@]host:port`) for the launcher's TLS connections to the mothership: the https comms URL (long-poll) and the MQTT broker, both through an HTTP CONNECT tunnel; `https_proxy` works too (upper case wins); see Proxies below" },
  { name: "HTTP_PROXY", default: "none", meaning: "proxy for a plain `http://` comms URL; `http_proxy` works too" },
  { name: "NO_PROXY", default: "none", meaning: "comma list of hosts reached without a proxy: `*`, `example.com` (and its subdomains), `.example.com` (only subdomains), IPs, CIDR ranges, each with an optional `:port`; `no_proxy` works too" },
  { name: "DOCKER_HOST", default: "`unix:///var/run/docker.sock`", meaning: "Docker Engine endpoint: `unix:///path` or `tcp://host:port`" },
  { name: "SPACELIFT_LAUNCHER_SCRATCH_DIR", default: "`/opt/spacelift`", meaning: "absolute directory for run workspaces and the worker bundle; the Docker daemon must see the same path" },
  { name: "SPACELIFT_DOCKER_CONFIG_DIR", default: "none", meaning: "directory holding a Docker `config.json` (auths, credHelpers, credsStore) used for image pulls, e.g. `/root/.docker`" },
  { name: "SPACELIFT_MASK_ENVS", default: "none", meaning: "comma list of launcher env vars passed to every run and masked in all logs; each must be set" },
  { name: "SPACELIFT_WHITELIST_ENVS", default: "none", meaning: "comma list of launcher env vars passed to runs; `ro_NAME` only to read-only runs, `wo_NAME` only to write runs; each must be set" },
  { name: "SPACELIFT_WORKER_NETWORK", default: "`bridge`", meaning: "Docker network for run containers" },
  { name: "SPACELIFT_WORKER_EXTRA_MOUNTS", default: "none", meaning: "`/host:/container[:ro|:rw],...` mounted into every run container (absolute paths, normalized: `/mnt//x/` is `/mnt/x`; `/`, `/mnt/workspace` and `/opt/spacelift-worker` are the launcher's)" },
  { name: "SPACELIFT_WORKER_RO_EXTRA_MOUNTS", default: "none", meaning: "same, read-only (proposed) runs only" },
  { name: "SPACELIFT_WORKER_WO_EXTRA_MOUNTS", default: "none", meaning: "same, write runs only (tracked runs, tasks, destroys)" },
  { name: "SPACELIFT_WORKER_RUNTIME", default: "Docker's default", meaning: "Docker runtime for run containers, e.g. `runsc`" },
  { name: "SPACELIFT_LAUNCHER_LOGS_TIMEOUT", default: "`7m`", meaning: "Go duration: stop a run that prints nothing for this long" },
  { name: "SPACELIFT_LAUNCHER_RUN_TIMEOUT", default: "`70m`", meaning: "Go duration: maximum run time" },
  { name: "SPACELIFT_LAUNCHER_RUN_INITIALIZATION_POLICY", default: "none", meaning: "path of a Rego run-initialization policy, parsed and checked at start (an invalid policy stops the launcher with file:line:col) and evaluated before each run; any `deny` message fails the run (docs/run-initialization-policy.md)" },
  { name: "SPACELIFT_LAUNCHER_RUN_INITIALIZATION_POLICY_EXEC_ENABLED", default: "`false`", meaning: "let the initialization policy call `exec([cmd, args...])`, which runs a command on the launcher's host (no shell) and returns `{status, exit_code, stdout, stderr}`; `true/false/1/0/yes/no`" },
  { name: "SPACELIFT_DEFAULT_RUNNER_IMAGE", default: "none (a run must name its image)", meaning: "Docker image for runs that name none" },
  { name: "SPACELIFT_RUN_LOGS_ON_STANDARD_OUTPUT_ENABLED", default: "`false`", meaning: "also write run logs to stdout as JSON lines (`run_ulid`, `stack_id`, `ts`, `msg`); `true/false/1/0/yes/no`" },
  { name: "SPACELIFT_INSTANCE_METADATA_ENDPOINT", default: "`http://169.254.169.254`", meaning: "base URL of the EC2 instance metadata service (IMDSv2), polled every 5 s for a spot interruption notice, which drains the launcher like SIGTERM; `off` disables the watcher" },
  { name: "SPACELIFT_LAUNCHER_METRICS_ADDR", default: "none (no listener)", meaning: "`HOST:PORT` (e.g. `127.0.0.1:9100`) where the launcher serves `/metrics` in the Prometheus text format and `/healthz` (200 when registered with the mothership and Docker answers, else 503 with the reasons); plain HTTP, no authentication, so bind it to loopback or a private interface; see docs/metrics.md" },
  { name: "SPACELIFT_DEBUG", default: "`false`", meaning: "print the exact commands and container spec into the run log; `true/false/1/0/yes/no`" },
  { name: "SPACELIFT_METADATA_<key>", default: "none", meaning: "tag `<key>` (as written) sent at registration, e.g. `SPACELIFT_METADATA_instance_id`; key and value must be non-empty" },
  { name: "SPACELIFT_PRIVATEVCS_MAPPING_NAME_<n>", default: "none", meaning: "name of VCS agent pool `<n>`; n counts 0, 1, 2, … without gaps, each with its base endpoint" },
  { name: "SPACELIFT_PRIVATEVCS_MAPPING_BASE_ENDPOINT_<n>", default: "none", meaning: "http(s) base URL of the VCS system for mapping `<n>`" },
];

/** @testSeam */
export const CONFIG_VARIABLES: readonly string[] = Object.freeze(VARIABLE_DOCS.map((d) => d.name));

const FIXED = new Set(CONFIG_VARIABLES.filter((name) => !name.includes("<")));
// Any SPACELIFT_PRIVATEVCS_MAPPING_* is the schema's to judge (it reports a malformed one as an error).
const PATTERNS = ["SPACELIFT_PRIVATEVCS_MAPPING_", ...CONFIG_VARIABLES.filter((name) => name.includes("<")).map((name) => name.slice(0, name.indexOf("<")))];

/**
 * `SPACELIFT_*` variables in `env` that the configuration does not know — usually a typo
 * (`SPACELIFT_WORKER_NETWROK`) that would otherwise be ignored without a word. main decides whether
 * to warn; they are not errors, since other Spacelift tooling shares the prefix.
 */
export function unknownVariables(env: Readonly<Record<string, string | undefined>>): string[] {
  return Object.keys(env)
    .filter((k) => k.startsWith("SPACELIFT_") && env[k] !== undefined)
    .filter((k) => !FIXED.has(k) && !PATTERNS.some((prefix) => k.startsWith(prefix)))
    .sort();
}
