/**
 * `spacelift-launcher check`: validates the whole configuration (token, key, certificate window, mounts,
 * durations, policy, ...) and Docker reachability, then prints the effective configuration with secrets
 * redacted. Exits 0 only when everything is valid. Every problem is one line naming the variable.
 */
import { ConfigError, describeConfig, formatProblem, loadLauncherConfig, unknownVariables } from "../../config/launcher-config.ts";
import { createDockerClient } from "../../docker/client.ts";
import { errorMessage } from "../../errors.ts";
import type { Io } from "../main.ts";

const DOCKER_CHECK_TIMEOUT_MS = 5_000;

export async function checkCommand(_args: string[], env: Record<string, string | undefined>, io: Io): Promise<number> {
  for (const name of unknownVariables(env)) {
    io.stderr(`warning: ${name} is not a variable the launcher knows; check its spelling\n`);
  }
  let config;
  try {
    config = loadLauncherConfig(env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    for (const p of err.problems) io.stderr(formatProblem(p) + "\n");
    io.stderr(`configuration invalid: ${err.problems.length} problem${err.problems.length === 1 ? "" : "s"}\n`);
    return 1;
  }

  const docker = createDockerClient({ host: config.docker.host.url, connectTimeoutMs: DOCKER_CHECK_TIMEOUT_MS, idleTimeoutMs: DOCKER_CHECK_TIMEOUT_MS });
  let dockerLine: string;
  let ok = true;
  try {
    const signal = AbortSignal.timeout(DOCKER_CHECK_TIMEOUT_MS);
    const version = await docker.version(signal);
    const network = await docker.networkInspect(config.docker.network, signal).catch((e: unknown) => e);
    if (network instanceof Error) {
      ok = false;
      io.stderr(`SPACELIFT_WORKER_NETWORK: Docker has no network "${config.docker.network}"; create it or use one of \`docker network ls\`\n`);
    }
    dockerLine = `reachable: Docker ${version.version}, API ${docker.apiVersion ?? version.apiVersion}, ${version.os}/${version.arch}`;
  } catch (err) {
    ok = false;
    io.stderr(`DOCKER_HOST: ${errorMessage(err)}\n`);
    dockerLine = "NOT reachable";
  } finally {
    await docker.close();
  }

  const rows: Array<[string, string]> = [...describeConfig(config), ["Docker", dockerLine]];
  const width = Math.max(...rows.map(([k]) => k.length));
  io.stdout("effective configuration:\n");
  for (const [k, v] of rows) io.stdout(`  ${k.padEnd(width)}  ${v}\n`);
  io.stdout(ok ? "configuration valid\n" : "configuration NOT valid\n");
  return ok ? 0 : 1;
}
