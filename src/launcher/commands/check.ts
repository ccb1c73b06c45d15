/**
 * `spacelift-launcher check`: validates the whole configuration (token, key, certificate window, mounts,
 * durations, policy, ...) and Docker reachability, then prints the effective configuration with secrets
 * redacted. Exits 0 only when everything is valid. Every problem is one line naming the variable.
 */
import { ConfigError, describeConfig, formatProblem, loadLauncherConfig, unknownVariables, type LauncherConfig } from "../../config/launcher-config.ts";
import { parseDockerHost, type DockerHost } from "../../config/values.ts";
import { createDockerClient } from "../../docker/client.ts";
import { errorMessage } from "../../errors.ts";
import { proxyFor } from "../../transport/proxy.ts";
import type { Io } from "../main.ts";

const DOCKER_CHECK_TIMEOUT_MS = 5_000;

export async function checkCommand(_args: string[], env: Record<string, string | undefined>, io: Io): Promise<number> {
  for (const name of unknownVariables(env)) {
    io.stderr(`warning: ${name} is not a variable the launcher knows; check its spelling\n`);
  }
  let config;
  let invalid: ConfigError | undefined;
  try {
    config = loadLauncherConfig(env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    invalid = err;
  }

  // Docker is probed even when other variables are wrong, so one run tells the operator everything.
  const host = config?.docker.host ?? dockerHostOf(env);
  const probe = host ? await probeDocker(host.url, config?.docker.network) : undefined;
  if (invalid) {
    for (const p of invalid.problems) io.stderr(formatProblem(p) + "\n");
    for (const line of probe?.problems ?? []) io.stderr(line + "\n");
    const n = invalid.problems.length + (probe?.problems.length ?? 0);
    io.stderr(`configuration invalid: ${n} problem${n === 1 ? "" : "s"}\n`);
    return 1;
  }
  if (!config || !probe) return 1;
  for (const line of probe.problems) io.stderr(line + "\n");
  const ok = probe.problems.length === 0;
  const dockerLine = probe.line;

  const rows: Array<[string, string]> = [...describeConfig(config), ...connectionRows(config), ["Docker", dockerLine]];
  const width = Math.max(...rows.map(([k]) => k.length));
  io.stdout("effective configuration:\n");
  for (const [k, v] of rows) io.stdout(`  ${k.padEnd(width)}  ${v}\n`);
  io.stdout(ok ? "configuration valid\n" : "configuration NOT valid\n");
  return ok ? 0 : 1;
}

/** Which proxy each of the launcher's connections will use (HTTPS_PROXY, HTTP_PROXY, NO_PROXY). */
function connectionRows(config: LauncherConfig): Array<[string, string]> {
  const via = (target: string): string => {
    const proxy = proxyFor(config.proxy, new URL(target));
    if (proxy) return `${target} through proxy ${proxy.shown} (${proxy.variable})`;
    const chosen = /^(https|mqtts):/.test(target) ? config.proxy.https : config.proxy.http;
    return `${target} direct${chosen ? ` (${config.proxy.noProxy.variable ?? "NO_PROXY"} matches)` : ""}`;
  };
  const rows: Array<[string, string]> = [];
  const broker = config.credentials?.token.broker?.endpoint;
  if (config.comms.protocol === "mqtt" && broker) rows.push(["connection to the broker", via(broker)]);
  if (config.comms.protocol === "poll" && config.comms.url) rows.push(["connection to the mothership", via(config.comms.url)]);
  rows.push(["connection to Docker", `${config.docker.host.url} direct (proxies never apply)`]);
  return rows;
}

function dockerHostOf(env: Record<string, string | undefined>): DockerHost | undefined {
  const raw = env.DOCKER_HOST;
  const r = parseDockerHost(raw === undefined || raw === "" ? "unix:///var/run/docker.sock" : raw);
  return r.ok ? r.value : undefined;
}

/** Docker's version and, when the configuration names one, the worker network; problems as lines. */
async function probeDocker(url: string, network: string | undefined): Promise<{ line: string; problems: string[] }> {
  const docker = createDockerClient({ host: url, connectTimeoutMs: DOCKER_CHECK_TIMEOUT_MS, idleTimeoutMs: DOCKER_CHECK_TIMEOUT_MS });
  const problems: string[] = [];
  try {
    const signal = AbortSignal.timeout(DOCKER_CHECK_TIMEOUT_MS);
    const version = await docker.version(signal);
    if (network !== undefined) {
      const found = await docker.networkInspect(network, signal).catch((e: unknown) => e);
      if (found instanceof Error) problems.push(`SPACELIFT_WORKER_NETWORK: Docker has no network "${network}"; create it or use one of \`docker network ls\``);
    }
    return { line: `reachable: Docker ${version.version}, API ${docker.apiVersion ?? version.apiVersion}, ${version.os}/${version.arch}`, problems };
  } catch (err) {
    return { line: "NOT reachable", problems: [`DOCKER_HOST: ${errorMessage(err)}`] };
  } finally {
    await docker.close();
  }
}
