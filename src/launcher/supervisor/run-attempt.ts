/**
 * One run, from "preparing" to its single result (src/launcher/supervisor/README.md): policy -> image -> workspace
 * and instructions -> create -> attach -> start -> output until exit -> result -> teardown.
 *
 * Stopping is one idempotent path whatever the cause (cancel, logs timeout, wall-clock timeout, a
 * failed sink): the first cause wins and becomes the result's reason; before the container exists,
 * the pending step (pull, policy) is abandoned; once it runs, it is stopped (SIGTERM, grace, SIGKILL).
 * Teardown (container, workspace) runs in every outcome, under its own time-limited signals.
 */
import { SpaceliftError, errorMessage } from "../../errors.ts";
import { formatGoDuration } from "../../config/duration.ts";
import type { LauncherConfig } from "../../config/launcher-config.ts";
import { isDockerError } from "../../docker/errors.ts";
import type { AttachedOutput, DockerClient } from "../../docker/types.ts";
import type { Logger } from "../../log/logger.ts";
import { newMarkerNonce } from "../../protocol/phase-markers.ts";
import { effectiveTimeouts, type RunSpec } from "../../protocol/run-spec.ts";
import type { RunReason } from "../../protocol/states.ts";
import type { RunResult, RunSink } from "../run-executor.ts";
import { ensureImage, removeContainer, stopContainer, type PullPolicy } from "./container-ops.ts";
import { describeContainerSpec, runAsUser, runContainerSpec, runLogSecrets } from "./container-spec.ts";
import { LABEL_RUN, type LabelOwner } from "./labels.ts";
import { LogPipeline } from "./log-pipeline.ts";
import { RunTimeouts } from "./run-timeouts.ts";
import type { WorkerBundle } from "./worker-bundle.ts";
import { createWorkspace, removeWorkspace, writeInstructions } from "./workspace.ts";

export type InitPolicy = (spec: RunSpec) => Promise<{ deny: string[] }>;

export interface AttemptDeps {
  docker: DockerClient;
  config: LauncherConfig;
  logger: Logger;
  owner: LabelOwner;
  bundle: () => Promise<WorkerBundle>;
  initPolicy: InitPolicy | undefined;
  pullPolicy: PullPolicy;
  stopGraceMs: number;
  /** Line writer for SPACELIFT_RUN_LOGS_ON_STANDARD_OUTPUT_ENABLED. */
  stdout: (line: string) => void;
  now: () => Date;
  chunk: { maxBytes?: number; maxDelayMs?: number };
}

/** Deadline for the short Docker calls (create, attach, start, inspect). */
const STEP_TIMEOUT_MS = 60_000;
/** After the container exited, how long its remaining output may take to arrive. */
const DRAIN_MS = 5_000;

type StopReason = Extract<RunReason, "cancelled" | "timeout-logs" | "timeout-run" | "system-error">;

/** A step ended the run with a known reason (policy-denied, image-pull-failed, ...). */
class RunEnded extends SpaceliftError {
  constructor(readonly reason: RunReason, readonly messages: string[], cause?: unknown) {
    super(`run-${reason}`, messages.join("; "), cause === undefined ? undefined : { cause });
  }
}

export class RunAttempt {
  private readonly pipeline: LogPipeline;
  /** Known only to this launcher and the worker: user output cannot forge a phase change. */
  private readonly nonce = newMarkerNonce();
  private readonly log: Logger;
  private readonly stopCtl = new AbortController();
  private stopped: { reason: StopReason; message: string } | undefined;
  private stopping: Promise<void> | undefined;
  private timeouts: RunTimeouts | undefined;
  private containerId: string | undefined;
  private createAttempted = false;
  private running = false;
  private workspace: string | undefined;

  constructor(
    private readonly deps: AttemptDeps,
    private readonly spec: RunSpec,
    private readonly sink: RunSink,
  ) {
    this.log = deps.logger.child({ run: spec.id, stack: spec.stack.id });
    this.pipeline = new LogPipeline({
      run: spec.id,
      stackId: spec.stack.id,
      sink,
      nonce: this.nonce,
      secrets: runLogSecrets(spec, deps.config.runEnv),
      mirror: deps.config.runLogsOnStdout ? deps.stdout : undefined,
      now: deps.now,
      ...(deps.chunk.maxBytes !== undefined ? { maxChunkBytes: deps.chunk.maxBytes } : {}),
      ...(deps.chunk.maxDelayMs !== undefined ? { maxChunkDelayMs: deps.chunk.maxDelayMs } : {}),
    });
  }

  async execute(signal: AbortSignal): Promise<RunResult> {
    const started = performance.now();
    const onAbort = (): void => this.stop("cancelled", abortMessage(signal.reason));
    let exitCode: number | null = null;
    let outcome: { reason: RunReason; messages: string[] };
    try {
      this.sink.phase(this.spec.id, "preparing");
      if (signal.aborted) onAbort();
      else signal.addEventListener("abort", onAbort, { once: true });
      const limits = effectiveTimeouts(this.spec, this.deps.config.timeouts);
      this.timeouts = new RunTimeouts(limits, (reason, ms) =>
        this.stop(reason, reason === "timeout-logs"
          ? `the run printed nothing for ${formatGoDuration(ms)} (logs timeout); stopping it`
          : `the run reached its time limit of ${formatGoDuration(ms)}; stopping it`));
      this.timeouts.startRun();
      exitCode = await this.steps();
      outcome = await this.classifyExit(exitCode);
    } catch (error) {
      outcome = this.classifyError(error);
    } finally {
      signal.removeEventListener("abort", onAbort);
      this.timeouts?.dispose();
    }
    if (this.stopped === undefined) for (const line of outcome.messages) this.note(line);
    await this.teardown();
    try {
      await this.pipeline.finish();
    } catch (error) {
      this.pipeline.dispose();
      if (outcome.reason === "ok" || outcome.reason === "failed") {
        outcome = { reason: "system-error", messages: [`the run log could not be delivered: ${errorMessage(error)}`] };
      }
    }
    const ms = Math.round(performance.now() - started);
    this.log.info("run finished", { reason: outcome.reason, exit_code: exitCode, duration_ms: ms, last_seq: this.pipeline.lastSeq });
    return { run: this.spec.id, exitCode, reason: outcome.reason, lastSeq: this.pipeline.lastSeq, messages: outcome.messages };
  }

  /** Runs the steps; returns the container's exit code. */
  private async steps(): Promise<number | null> {
    const { docker, config } = this.deps;
    if (this.deps.initPolicy !== undefined) {
      const verdict = await untilAborted(this.deps.initPolicy(this.spec), this.stopCtl.signal);
      if (verdict.deny.length > 0) throw new RunEnded("policy-denied", verdict.deny.map((m) => `denied by the run initialization policy: ${m}`));
    }
    const image = this.spec.runner_image ?? config.docker.defaultRunnerImage;
    if (image === undefined) {
      throw new RunEnded("system-error", ["the run names no runner image and SPACELIFT_DEFAULT_RUNNER_IMAGE is not set"]);
    }
    if (this.stopped) return null;
    if (config.debug) this.note(`image ${image} (pull policy ${this.deps.pullPolicy})`);
    let imageInfo;
    try {
      imageInfo = await ensureImage(docker, image, {
        configDir: config.docker.configDir, policy: this.deps.pullPolicy, signal: this.stopCtl.signal, onLine: (line) => this.note(line),
      });
    } catch (error) {
      if (this.stopped || isDockerError(error, "daemon-unreachable")) throw error;
      throw new RunEnded("image-pull-failed", [`cannot pull the runner image ${image}: ${errorMessage(error)}`], error);
    }
    const runAs = runAsUser(imageInfo);
    if (runAs !== undefined && config.debug) this.note(`the image runs as ${runAs.user}: the worker starts as root and runs the commands as that user`);
    const bundle = await this.deps.bundle();
    if (this.stopped) return null;
    this.workspace = await createWorkspace(config.scratchDir, this.spec.id);
    const instructionsFile = await writeInstructions(this.workspace, {
      run: this.spec,
      marker_nonce: this.nonce,
      vcs_mapping: Object.fromEntries(config.privateVcsMappings.map((m) => [m.name, m.baseEndpoint])),
      ...(runAs !== undefined ? { run_as: runAs } : {}),
    });
    const container = runContainerSpec({
      spec: this.spec, image, config, owner: this.deps.owner, bundle, workspaceHostDir: this.workspace, instructionsFile, runAs,
    });
    if (config.debug) {
      this.note(`container spec: ${describeContainerSpec(container)}`);
      for (const phase of this.spec.phases) for (const command of phase.commands) this.note(`[${phase.name}] $ ${command}`);
    }
    this.createAttempted = true;
    const id = await docker.containerCreate(container, AbortSignal.timeout(STEP_TIMEOUT_MS));
    this.containerId = id;
    const attached = await withDeadline((signal) => docker.containerAttach(id, { signal }));
    if (this.stopped) {
      attached.close();
      return null;
    }
    try {
      await docker.containerStart(id, AbortSignal.timeout(STEP_TIMEOUT_MS));
    } catch (error) {
      attached.close();
      throw error;
    }
    this.running = true;
    this.log.info("container started", { container: id, image });
    if (this.stopped) this.stopContainer();
    this.timeouts?.startLogs();
    return await this.follow(id, attached);
  }

  /** Reads the output until the container exits (and its output ends); returns the exit code. */
  private async follow(id: string, attached: AttachedOutput): Promise<number> {
    let closing = false;
    const pump = (async () => {
      try {
        for await (const frame of attached.frames) {
          this.timeouts?.touch();
          await this.pipeline.output(frame);
        }
      } catch (error) {
        if (!closing) this.stop("system-error", `reading the run's output failed: ${errorMessage(error)}`);
      }
    })();
    const { exitCode } = await this.deps.docker.containerWait(id);
    let drained = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([pump.then(() => (drained = true)), new Promise((resolve) => (timer = setTimeout(resolve, DRAIN_MS)))]);
    clearTimeout(timer);
    if (!drained) this.log.warn("the container exited but its output did not end; closing the attachment", { container: id });
    closing = true;
    attached.close();
    await pump;
    if (this.stopping) await this.stopping;
    return exitCode;
  }

  private async classifyExit(exitCode: number | null): Promise<{ reason: RunReason; messages: string[] }> {
    if (this.stopped) return { reason: this.stopped.reason, messages: [this.stopped.message] };
    if (exitCode === 0) return { reason: "ok", messages: [] };
    const id = this.containerId;
    if (id !== undefined) {
      const info = await this.deps.docker.containerInspect(id, AbortSignal.timeout(STEP_TIMEOUT_MS)).catch(() => undefined);
      if (info?.state.oomKilled) {
        return { reason: "failed", messages: [`the run container ran out of memory and was killed (exit code ${exitCode})`] };
      }
    }
    return { reason: "failed", messages: [`the run failed with exit code ${exitCode}`] };
  }

  private classifyError(error: unknown): { reason: RunReason; messages: string[] } {
    if (this.stopped) return { reason: this.stopped.reason, messages: [this.stopped.message] };
    if (error instanceof RunEnded) return { reason: error.reason, messages: error.messages };
    this.log.error("run failed in the launcher", { error });
    return { reason: "system-error", messages: [errorMessage(error)] };
  }

  /** The single stop path: the first cause wins. */
  private stop(reason: StopReason, message: string): void {
    if (this.stopped) return;
    this.stopped = { reason, message };
    this.log.info("stopping run", { reason });
    this.note(message);
    this.stopCtl.abort(reason);
    if (this.running) this.stopContainer();
  }

  private stopContainer(): void {
    const id = this.containerId;
    if (id === undefined || this.stopping) return;
    this.stopping = stopContainer(this.deps.docker, id, this.deps.stopGraceMs).catch((error: unknown) => {
      this.log.warn("stopping the run container failed", { container: id, error });
    });
  }

  private async teardown(): Promise<void> {
    const problems: string[] = [];
    try {
      if (this.containerId !== undefined) await removeContainer(this.deps.docker, this.containerId);
      else if (this.createAttempted) {
        // A create that failed on our side (timeout) may still have made a container.
        const left = await this.deps.docker.containerList({ labels: { [LABEL_RUN]: this.spec.id }, signal: AbortSignal.timeout(STEP_TIMEOUT_MS) });
        for (const c of left) await removeContainer(this.deps.docker, c.id);
      }
    } catch (error) {
      problems.push(`cannot remove the run container: ${errorMessage(error)}`);
    }
    if (this.workspace !== undefined) {
      const problem = await removeWorkspace(this.workspace);
      if (problem !== undefined) problems.push(problem);
    }
    for (const problem of problems) {
      this.log.warn(problem);
      this.note(problem);
    }
  }

  /** Writes a launcher line into the run log; a sink failure stops the run. */
  private note(line: string): void {
    void this.pipeline.note(line).catch((error: unknown) => this.stop("system-error", `the run log could not be delivered: ${errorMessage(error)}`));
  }
}

/** Resolves like `promise`, or rejects once `signal` aborts. */
async function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) throw new SpaceliftError("run-stopped", "the run was stopped");
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(new SpaceliftError("run-stopped", "the run was stopped"));
    signal.addEventListener("abort", onAbort, { once: true });
  });
  try {
    return await Promise.race([promise, aborted]);
  } finally {
    if (onAbort) signal.removeEventListener("abort", onAbort);
  }
}

/** Runs `step` with a signal that aborts after STEP_TIMEOUT_MS and is never aborted afterwards. */
async function withDeadline<T>(step: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(new DOMException("step timed out", "TimeoutError")), STEP_TIMEOUT_MS);
  try {
    return await step(ctl.signal);
  } finally {
    clearTimeout(timer);
  }
}

function abortMessage(reason: unknown): string {
  return reason === "launcher-stopping" ? "the launcher is stopping: the run was cancelled" : "the run was cancelled";
}
