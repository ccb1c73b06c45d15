/**
 * The run lifecycle as one pure transition function:
 *
 *   QUEUED -> SCHEDULED -> PREPARING -> RUNNING -> FINISHED | FAILED | CANCELED
 *
 * Events come from the scheduler (schedule, schedule-expired), from the launcher (accepted,
 * rejected, phase, finished), from operators (cancel), from the worker registry (worker-lost) and
 * from the log intake (log-limit: the run wrote more than the mothership keeps for one run).
 * An event that does not apply in the current state returns `null`: the caller logs and ignores it
 * (a late duplicate from a reconnecting launcher must never resurrect a finished run).
 */
import { finalStateForReason, isTerminalRunState, type RejectReason, type RunReason, type RunState } from "../protocol/states.ts";

export interface RunStatus {
  state: RunState;
  reason: RunReason | null;
  exit_code: number | null;
  worker: string | null;
  /** An operator asked to cancel while a launcher holds the run; the launcher reports the end. */
  cancel_requested: boolean;
}

export type RunEvent =
  | { type: "schedule"; worker: string }
  /** The launcher never confirmed (lost message, launcher went away before it read it). */
  | { type: "schedule-expired" }
  | { type: "accepted" }
  | { type: "rejected"; reason: RejectReason }
  /** "preparing" is the launcher's set-up phase; any other name is a stack phase. */
  | { type: "phase"; phase: string }
  | { type: "finished"; reason: RunReason; exit_code: number | null }
  | { type: "cancel" }
  | { type: "worker-lost" }
  | { type: "log-limit" };

const ACTIVE: readonly RunState[] = ["SCHEDULED", "PREPARING", "RUNNING"];

/** Rejections that another attempt (or another worker) may not repeat. */
function requeues(reason: RejectReason): boolean {
  return reason === "busy" || reason === "drained" || reason === "docker-unavailable";
}

export function transition(s: RunStatus, e: RunEvent): RunStatus | null {
  if (isTerminalRunState(s.state)) return null;
  const active = ACTIVE.includes(s.state);
  switch (e.type) {
    case "schedule":
      return s.state === "QUEUED" ? { ...s, state: "SCHEDULED", worker: e.worker } : null;
    case "schedule-expired":
      return s.state === "SCHEDULED" ? { ...s, state: "QUEUED", worker: null } : null;
    case "accepted":
      return s.state === "SCHEDULED" ? { ...s, state: "PREPARING" } : null;
    case "rejected":
      if (s.state !== "SCHEDULED") return null;
      if (requeues(e.reason)) return { ...s, state: "QUEUED", worker: null };
      return { ...s, state: "FAILED", reason: e.reason === "policy-denied" ? "policy-denied" : "system-error" };
    case "phase":
      if (!active) return null;
      if (e.phase === "preparing") return s.state === "SCHEDULED" ? { ...s, state: "PREPARING" } : null;
      return { ...s, state: "RUNNING" };
    case "finished":
      if (!active) return null;
      return { ...s, state: finalStateForReason(e.reason), reason: e.reason, exit_code: e.exit_code };
    case "cancel":
      if (s.state === "QUEUED") return { ...s, state: "CANCELED", reason: "cancelled" };
      return s.cancel_requested ? null : { ...s, cancel_requested: true };
    case "worker-lost":
      return active ? { ...s, state: "FAILED", reason: "launcher-crashed" } : null;
    // Ended here at once; the launcher is told to cancel and its own report of the end changes nothing.
    case "log-limit":
      return active ? { ...s, state: "FAILED", reason: "log-limit-exceeded" } : null;
  }
}
