/**
 * `spacelift-launcher run-local SPEC.json`: executes one run spec on the local Docker Engine with no
 * mothership — for operators debugging a runner image or a launcher setup. The
 * phases and the masked log go to stdout as they happen, the result last; the exit code is the run's.
 * Configured by the same SPACELIFT_* variables as the launcher, without the pool credentials.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { SpaceliftError, errorMessage } from "../../errors.ts";
import { loadLauncherConfig } from "../../config/launcher-config.ts";
import { createDockerClient } from "../../docker/client.ts";
import { createLogger } from "../../log/logger.ts";
import { parseRunSpec } from "../../protocol/run-spec.ts";
import type { Io } from "../main.ts";
import type { LogChunk, RunSink } from "../run-executor.ts";
import { createRunSupervisor } from "../supervisor/run-supervisor.ts";

const RUN_LOCAL_USAGE =
  "spacelift-launcher run-local SPEC.json [--worker-binary PATH]\n\n" +
  "Runs the run spec (JSON, the mothership's run format) in a container on the local Docker.\n" +
  "--worker-binary: the compiled launcher to bundle as the worker (default: this executable).";

export async function runLocalCommand(args: string[], env: Record<string, string | undefined>, io: Io): Promise<number> {
  let values: { "worker-binary"?: string | undefined };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({ args, options: { "worker-binary": { type: "string" } }, allowPositionals: true, strict: true }));
  } catch (cause) {
    throw new SpaceliftError("usage", `${errorMessage(cause)}\nusage: ${RUN_LOCAL_USAGE}`, { cause });
  }
  const [specPath, ...extra] = positionals;
  if (specPath === undefined || extra.length > 0) throw new SpaceliftError("usage", `give exactly one run spec file\nusage: ${RUN_LOCAL_USAGE}`);

  const config = loadLauncherConfig(env, { requireCredentials: false });
  const spec = parseRunSpec(readJson(specPath));
  const docker = createDockerClient({ host: config.docker.host.url });
  const logger = createLogger({ level: config.debug ? "debug" : "warn", write: (line) => io.stderr(`${line}\n`) });
  const selfExecutable = values["worker-binary"] ?? fromSourceDefault();
  const supervisor = createRunSupervisor({
    docker, config, logger, workerId: `local-${crypto.randomUUID()}`, poolId: "local",
    ...(selfExecutable !== undefined ? { selfExecutable } : {}),
    stdout: (line) => io.stdout(`${line}\n`),
  });

  const ctl = new AbortController();
  const onSignal = (): void => ctl.abort("cancelled");
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    const result = await supervisor.execute(spec, printingSink(io), ctl.signal);
    io.stdout(`\n== run ${result.run} finished: ${result.reason}, exit code ${result.exitCode ?? "none"}\n`);
    return result.exitCode ?? (result.reason === "ok" ? 0 : 1);
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    await docker.close();
  }
}

function printingSink(io: Io): RunSink {
  const decoder = new TextDecoder();
  let atLineStart = true;
  return {
    phase(_run: string, name: string): void {
      io.stdout(`${atLineStart ? "" : "\n"}== phase ${name}\n`);
      atLineStart = true;
    },
    async log(chunk: LogChunk): Promise<void> {
      const text = decoder.decode(chunk.data, { stream: true });
      if (text.length > 0) atLineStart = text.endsWith("\n");
      io.stdout(text);
    },
  };
}

function readJson(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (cause) {
    throw new SpaceliftError("run-spec-unreadable", `cannot read the run spec ${path}: ${errorMessage(cause)}`, { cause });
  }
  try {
    return JSON.parse(text);
  } catch (cause) {
    throw new SpaceliftError("run-spec-invalid", `the run spec ${path} is not JSON`, { cause });
  }
}

/**
 * From source (`bun src/launcher/main.ts run-local ...`) the launcher cannot bundle itself; the
 * build output for this architecture is used when it exists. A compiled launcher bundles itself.
 */
function fromSourceDefault(): string | undefined {
  if (Bun.main.startsWith("/$bunfs/")) return undefined;
  const candidate = join(import.meta.dir, "../../../dist", `spacelift-launcher-${process.arch === "arm64" ? "aarch64" : "x86_64"}`);
  return existsSync(candidate) ? candidate : undefined;
}
