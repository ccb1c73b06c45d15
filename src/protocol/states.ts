/**
 * Closed vocabularies shared by the launcher, the worker and the mothership. These strings travel on
 * the wire and sit in the mothership's database: add values carefully, never rename one.
 */

/** What a worker (= one launcher) reports about itself, and what the pool views show. */
export const WORKER_STATUSES = ["IDLE", "BUSY", "DRAINED"] as const;
export type WorkerStatus = (typeof WORKER_STATUSES)[number];

/** A run's lifecycle as the mothership records it (see src/mothership/run-lifecycle.ts for the moves). */
export const RUN_STATES = ["QUEUED", "SCHEDULED", "PREPARING", "RUNNING", "FINISHED", "FAILED", "CANCELED"] as const;
export type RunState = (typeof RUN_STATES)[number];

/** States after which nothing about a run changes any more. */
const TERMINAL_RUN_STATES: readonly RunState[] = ["FINISHED", "FAILED", "CANCELED"];

export function isTerminalRunState(state: RunState): boolean {
  return TERMINAL_RUN_STATES.includes(state);
}

/**
 * Why a run ended. `ok` is the only reason of a FINISHED run; `cancelled` the only one of a
 * CANCELED run; every other reason means FAILED.
 */
export const RUN_REASONS = [
  "ok",
  "failed",
  "timeout-logs",
  "timeout-run",
  "cancelled",
  "policy-denied",
  "image-pull-failed",
  "system-error",
  "launcher-crashed",
  /** The run wrote more log than the mothership keeps for one run (`serve --max-run-log-bytes`); it was stopped. */
  "log-limit-exceeded",
] as const;
export type RunReason = (typeof RUN_REASONS)[number];

/** The end state a reason implies. */
export function finalStateForReason(reason: RunReason): RunState {
  if (reason === "ok") return "FINISHED";
  if (reason === "cancelled") return "CANCELED";
  return "FAILED";
}

/**
 * Run types: what a run may be triggered as and what its run spec says. A PROPOSED run is read-only
 * (plan/preview); TRACKED runs, TASKs and DESTROYs may change infrastructure, so they are "write" runs
 * for the launcher's ro_/wo_ environment and mount rules (see isReadOnlyRun in run-spec.ts).
 */
export const RUN_TYPES = ["PROPOSED", "TRACKED", "TASK", "DESTROY"] as const;
export type RunType = (typeof RUN_TYPES)[number];

/**
 * Why a launcher refused a scheduled run (run rejected). `docker-unavailable`: its Docker Engine does
 * not answer; like busy and drained, the run goes back to the queue for another worker.
 */
export const REJECT_REASONS = ["busy", "drained", "bad-payload", "decrypt-failed", "policy-denied", "docker-unavailable"] as const;
export type RejectReason = (typeof REJECT_REASONS)[number];
