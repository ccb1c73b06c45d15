/**
 * `spacelift-launcher worker`: PID 1 of a run container (see docs/architecture.md). Reads its instructions (and
 * deletes them), hands the workspace to the image's non-root user if it has one (run-as.ts), fetches
 * the source, runs the phases, forwards termination signals to the running
 * command's process group, reaps orphaned zombies, and exits with the run's exit status.
 *
 * Usage: worker --spec PATH [--workspace DIR] [--source-dir DIR] [--reap auto|on|off]
 */
import { readFileSync, statSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { SpaceliftError, errorMessage } from "../errors.ts";
import { encodePhaseMarker } from "../protocol/phase-markers.ts";
import type { RunSpec } from "../protocol/run-spec.ts";
import { type WorkerInstructions, parseWorkerInstructions } from "../protocol/worker-instructions.ts";
import { openLibc } from "./libc.ts";
import { type WorkerOutput, fdOutput } from "./output.ts";
import { runPhases } from "./phases.ts";
import { ProcessGroupRunner, SpawnFailure } from "./process-group.ts";
import { ZombieReaper } from "./reaper.ts";
import { type RunAsAccount, accountEnv, giveWorkspace, readAccountFiles, resolveRunAs } from "./run-as.ts";
import { cloneUrl, displayUrl, gitCommands } from "./source.ts";

/** Exit status of a run that failed in the worker itself (bad instructions, unknown VCS pool, ...). */
const WORKER_FAILED = 1;
const FORWARDED_SIGNALS: NodeJS.Signals[] = ["SIGTERM", "SIGINT", "SIGHUP"];
const REAP_INTERVAL_MS = 1000;
/** What Docker gives a container whose image sets no PATH; a scratch image may have none at all. */
const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

interface WorkerArgs {
  spec: string;
  workspace: string;
  sourceDir: string;
  reap: "auto" | "on" | "off";
}

export async function workerMain(argv: string[], env: Record<string, string | undefined>): Promise<number> {
  const output = fdOutput();
  let args: WorkerArgs;
  let instructions: WorkerInstructions;
  let account: RunAsAccount | undefined;
  try {
    args = parseWorkerArgs(argv[0] === "worker" ? argv.slice(1) : argv);
    instructions = takeInstructions(args.spec);
    // Only now, with the instructions gone, may the image's user own the workspace.
    if (instructions.run_as !== undefined) {
      account = resolveRunAs(instructions.run_as.user, readAccountFiles());
      giveWorkspace(args.workspace, account);
    }
  } catch (error) {
    output.say(errorMessage(error));
    return WORKER_FAILED;
  }

  const { libc } = openLibc();
  // Without this a root command could read the nonce out of /proc/1/mem.
  libc?.setNotDumpable();
  const runner = new ProcessGroupRunner(account);
  const reap = args.reap === "on" || (args.reap === "auto" && process.pid === 1);
  const reaper =
    reap && libc !== null
      ? new ZombieReaper({ waitpidNoHang: libc.waitpidNoHang, selfPid: process.pid, isOwnChild: runner.isOwnChild })
      : null;
  if (reap && libc === null) output.say("cannot load libc: orphaned processes will not be reaped");
  reaper?.start(REAP_INTERVAL_MS);
  const onSignal = (signal: NodeJS.Signals): void => runner.forward(signal);
  for (const signal of FORWARDED_SIGNALS) process.on(signal, onSignal);
  try {
    const asUser = account !== undefined ? accountEnv(account, instructions.run_as?.image_home ?? false) : {};
    return await execute(instructions, args, commandEnv(env, asUser, instructions.run), runner, output);
  } finally {
    for (const signal of FORWARDED_SIGNALS) process.off(signal, onSignal);
    reaper?.stop();
    reaper?.reapOnce();
  }
}

async function execute(
  instructions: WorkerInstructions,
  args: WorkerArgs,
  env: Record<string, string>,
  runner: ProcessGroupRunner,
  output: WorkerOutput,
): Promise<number> {
  const run = instructions.run;
  let base = args.workspace;
  if (run.source !== undefined) {
    let url: string;
    try {
      url = cloneUrl(run.source, instructions.vcs_mapping);
    } catch (error) {
      output.say(errorMessage(error));
      return WORKER_FAILED;
    }
    output.say(`cloning ${displayUrl(url)}${run.source.commit !== undefined ? ` at ${run.source.commit}` : ""}`);
    for (const gitArgs of gitCommands(run.source, url, args.sourceDir)) {
      const status = await runner.run("git", gitArgs, { cwd: args.workspace, env: { ...env, GIT_TERMINAL_PROMPT: "0" } });
      if (status instanceof SpawnFailure) {
        output.say(`cannot run git (the runner image must provide it): ${errorMessage(status.error)}`);
        return status.exitCode;
      }
      if (status !== 0) {
        output.say(`fetching the source failed (git exit status ${status})`);
        return status;
      }
    }
    base = args.sourceDir;
  }
  const projectRoot = join(base, run.stack.project_root);
  if (!isDirectory(projectRoot)) {
    output.say(`the project root ${JSON.stringify(run.stack.project_root)} does not exist in ${run.source ? "the repository" : "the workspace"}`);
    return WORKER_FAILED;
  }
  const nonce = instructions.marker_nonce;
  return runPhases(run.phases, { runner, cwd: projectRoot, env, output, mark: (phase) => output.marker(encodePhaseMarker(nonce, phase)) });
}

function parseWorkerArgs(argv: string[]): WorkerArgs {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        spec: { type: "string" },
        workspace: { type: "string", default: "/mnt/workspace" },
        "source-dir": { type: "string" },
        reap: { type: "string", default: "auto" },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (cause) {
    throw new SpaceliftError("worker-usage", `worker: ${errorMessage(cause)}`, { cause });
  }
  if (values.spec === undefined) throw new SpaceliftError("worker-usage", "worker: --spec PATH is required");
  const reap = values.reap;
  if (reap !== "auto" && reap !== "on" && reap !== "off") {
    throw new SpaceliftError("worker-usage", "worker: --reap must be auto, on or off");
  }
  return { spec: values.spec, workspace: values.workspace, sourceDir: values["source-dir"] ?? join(values.workspace, "source"), reap };
}

/**
 * Reads the instructions and deletes the file before anything else runs: it holds the marker
 * nonce, which user commands must never see. A file that cannot be deleted fails the run rather
 * than leaking it.
 */
function takeInstructions(path: string): WorkerInstructions {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
    unlinkSync(path);
  } catch (cause) {
    throw new SpaceliftError("worker-spec-unreadable", `cannot read and remove the run instructions ${path}: ${errorMessage(cause)}`, { cause });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw new SpaceliftError("run-spec-invalid", `the run instructions ${path} are not JSON`, { cause });
  }
  return parseWorkerInstructions(json);
}

/** The commands' environment: the container's, then HOME and USER of the image's user, then the run's own variables on top. */
function commandEnv(env: Record<string, string | undefined>, asUser: Record<string, string>, run: RunSpec): Record<string, string> {
  const out: Record<string, string> = { PATH: DEFAULT_PATH };
  for (const [name, value] of Object.entries(env)) if (value !== undefined) out[name] = value;
  Object.assign(out, asUser);
  for (const variable of run.environment) out[variable.name] = variable.value;
  return out;
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

if (import.meta.main) {
  const code = await workerMain(process.argv.slice(2), process.env);
  process.exit(code);
}
