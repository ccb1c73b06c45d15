/**
 * The run supervisor: the launcher's RunExecutor on Docker (see docs/architecture.md). It owns the worker bundle
 * (materialized once, when the supervisor is created) and runs one RunAttempt per `execute`; see
 * run-attempt.ts for the steps of a run and orphans.ts for the start-up cleanup.
 */
import { SpaceliftError } from "../../errors.ts";
import type { LauncherConfig } from "../../config/launcher-config.ts";
import type { DockerClient } from "../../docker/types.ts";
import type { Logger } from "../../log/logger.ts";
import type { RunSpec } from "../../protocol/run-spec.ts";
import type { RunExecutor, RunResult, RunSink } from "../run-executor.ts";
import type { PullPolicy } from "./container-ops.ts";
import { launcherIdentity } from "./launcher-identity.ts";
import { cleanupOrphans } from "./orphans.ts";
import { RunAttempt, type InitPolicy } from "./run-attempt.ts";
import { materializeWorkerBundle, type BundleFile, type WorkerBundle } from "./worker-bundle.ts";

/** Docker's usual grace between SIGTERM and SIGKILL, as `docker stop` uses. */
const DEFAULT_STOP_GRACE_MS = 10_000;

export interface RunSupervisorDeps {
  docker: DockerClient;
  config: LauncherConfig;
  logger: Logger;
  workerId: string;
  poolId: string;
  /**
   * Labels every container as this launcher's; the orphan cleanup removes only those. Default: the
   * identity kept in the scratch dir (launcher-identity.ts), made on the first start.
   */
  launcherId?: string;
  /** Clock for the timestamps of stdout-mirrored log lines. */
  now?: () => Date;
  /** Run-initialization policy: deny messages end the run with `policy-denied` before any pull. */
  initPolicy?: InitPolicy;
  /**
   * The compiled launcher executable that goes into the worker bundle. Default: this process's own
   * executable when it is a compiled launcher; from source (`bun src/...`) it must be given.
   */
  selfExecutable?: string;
  /** Default `if-not-present`: a runner image already on the host is used as it is. */
  pullPolicy?: PullPolicy;
  stopGraceMs?: number;
  /** Where SPACELIFT_RUN_LOGS_ON_STANDARD_OUTPUT_ENABLED writes its JSON lines; default process.stdout. */
  stdout?: (line: string) => void;
  chunk?: { maxBytes?: number; maxDelayMs?: number };
  /** Override library discovery for the bundle (tests). */
  findLibraries?: (executable: string) => Promise<BundleFile[]>;
}

export interface RunSupervisor extends RunExecutor {
  /**
   * Before the first run: removes every container of this pool that an earlier process of this
   * launcher left (its identity's label; with their workspaces) and reports each of their runs.
   * Returns how many containers were removed.
   */
  cleanupOrphans(report: (runId: string) => Promise<void>): Promise<number>;
  /** The worker bundle, once it is ready (rejects when it cannot be made; the next call retries). */
  ready(): Promise<WorkerBundle>;
}

export function createRunSupervisor(deps: RunSupervisorDeps): RunSupervisor {
  const logger = deps.logger.child({ component: "run-supervisor", worker: deps.workerId });
  let bundle: Promise<WorkerBundle> | undefined;
  const ready = (): Promise<WorkerBundle> => {
    bundle ??= (async () => {
      const executable = deps.selfExecutable ?? compiledSelf();
      const started = performance.now();
      const made = await materializeWorkerBundle({
        scratchDir: deps.config.scratchDir,
        executable,
        ...(deps.findLibraries ? { findLibraries: deps.findLibraries } : {}),
      });
      logger.info("worker bundle ready", { dir: made.hostDir, ms: Math.round(performance.now() - started) });
      return made;
    })();
    bundle.catch(() => (bundle = undefined));
    return bundle;
  };
  // Made now, not at the first run: a broken scratch dir shows at start, and dispatch stays fast.
  ready().catch((error: unknown) => logger.error("cannot make the worker bundle", { error }));

  const owner = { poolId: deps.poolId, workerId: deps.workerId, launcherId: deps.launcherId ?? launcherIdentity(deps.config.scratchDir) };
  return {
    ready,
    async execute(spec: RunSpec, sink: RunSink, signal: AbortSignal): Promise<RunResult> {
      const attempt = new RunAttempt(
        {
          docker: deps.docker,
          config: deps.config,
          logger,
          owner,
          bundle: ready,
          initPolicy: deps.initPolicy,
          pullPolicy: deps.pullPolicy ?? "if-not-present",
          stopGraceMs: deps.stopGraceMs ?? DEFAULT_STOP_GRACE_MS,
          stdout: deps.stdout ?? ((line) => void process.stdout.write(`${line}\n`)),
          now: deps.now ?? (() => new Date()),
          chunk: deps.chunk ?? {},
        },
        spec,
        sink,
      );
      return await attempt.execute(signal);
    },
    cleanupOrphans: (report) =>
      cleanupOrphans({ docker: deps.docker, poolId: deps.poolId, launcherId: owner.launcherId, scratchDir: deps.config.scratchDir, logger, report }),
  };
}

/**
 * This process's executable when it is a compiled launcher. A Bun-compiled program's entry lives
 * in Bun's embedded file system (`/$bunfs/...`, `B:/~BUN/...` on Windows); from source it is a real path.
 */
function compiledSelf(): string {
  if (Bun.main.startsWith("/$bunfs/")) return process.execPath;
  throw new SpaceliftError(
    "worker-bundle-failed",
    "the launcher runs from source, so it cannot bundle itself; build it (`bun build/build.ts`) and pass the compiled executable",
  );
}
