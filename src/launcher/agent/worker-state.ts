/**
 * The worker's state machine: one launcher = one worker = at most one run. A discriminated union and
 * a pure transition function; the agent loop feeds it events and carries out the effects it returns.
 *
 *   idle ──schedule──▶ busy ──run finished──▶ idle
 *     │                  │
 *     └─stop/cycle──▶ exited ◀──run finished (leaving)──┘
 *
 * Two things are orthogonal to the run: an operator's drain (nothing new accepted until undrain) and
 * leaving (a stop signal, a spot notice or a pool cycle: nothing new accepted, exit once idle). Stop
 * signals escalate: the first leaves after the current run, the second cancels that run, the third
 * exits at once.
 */
import type { RejectReason, WorkerStatus } from "../../protocol/states.ts";
import type { AbortReason } from "../run-executor.ts";

/** Why the launcher is going away. */
export type LeaveCause = "signal" | "spot" | "cycle";

export type WorkerState =
  | { kind: "idle"; drained: boolean; signals: number }
  | { kind: "busy"; run: string; drained: boolean; signals: number; cancelling: boolean; leaving: LeaveCause | null }
  | { kind: "exited"; cause: LeaveCause; immediate: boolean };

export type WorkerEvent =
  /** A schedule arrived; `payload` says whether it decrypted and validated. */
  | { type: "schedule"; run: string; payload: "ok" | "bad-payload" | "decrypt-failed" }
  | { type: "run-finished"; run: string }
  | { type: "cancel"; run: string }
  | { type: "drain" }
  | { type: "undrain" }
  | { type: "cycle" }
  | { type: "stop-signal" }
  | { type: "spot-notice" };

export type WorkerEffect =
  | { type: "accept"; run: string }
  | { type: "reject"; run: string; reason: RejectReason }
  | { type: "abort"; run: string; reason: AbortReason }
  /** Leave: say gone and exit 0 (orderly), or exit at once (third signal). */
  | { type: "exit"; immediate: boolean };

export interface Transition {
  state: WorkerState;
  effects: WorkerEffect[];
}

export const INITIAL_STATE: WorkerState = Object.freeze({ kind: "idle", drained: false, signals: 0 });

const same = (state: WorkerState): Transition => ({ state, effects: [] });

export function transition(state: WorkerState, event: WorkerEvent): Transition {
  if (state.kind === "exited") {
    // Runs may still be offered while the goodbye is on its way: refuse them so they are requeued.
    return event.type === "schedule" ? { state, effects: [{ type: "reject", run: event.run, reason: "drained" }] } : same(state);
  }
  switch (event.type) {
    case "schedule":
      return onSchedule(state, event);
    case "run-finished": {
      if (state.kind !== "busy" || state.run !== event.run) return same(state);
      if (state.leaving) return { state: { kind: "exited", cause: state.leaving, immediate: false }, effects: [{ type: "exit", immediate: false }] };
      return same({ kind: "idle", drained: state.drained, signals: state.signals });
    }
    case "cancel":
      if (state.kind !== "busy" || state.run !== event.run || state.cancelling) return same(state);
      return { state: { ...state, cancelling: true }, effects: [{ type: "abort", run: state.run, reason: "cancelled" }] };
    case "drain":
      return same({ ...state, drained: true });
    case "undrain":
      return same({ ...state, drained: false });
    case "cycle":
      return leave(state, "cycle");
    case "spot-notice":
      return leave(state, "spot");
    case "stop-signal":
      return onSignal(state);
  }
}

function onSchedule(state: Exclude<WorkerState, { kind: "exited" }>, event: Extract<WorkerEvent, { type: "schedule" }>): Transition {
  const reject = (reason: RejectReason): Transition => ({ state, effects: [{ type: "reject", run: event.run, reason }] });
  // A duplicate delivery of the schedule we are executing needs no answer: we accepted it already.
  if (state.kind === "busy") return state.run === event.run ? same(state) : reject("busy");
  if (state.drained || state.signals > 0) return reject("drained");
  if (event.payload !== "ok") return reject(event.payload);
  return {
    state: { kind: "busy", run: event.run, drained: false, signals: state.signals, cancelling: false, leaving: null },
    effects: [{ type: "accept", run: event.run }],
  };
}

function leave(state: Exclude<WorkerState, { kind: "exited" }>, cause: LeaveCause): Transition {
  if (state.kind === "idle") return { state: { kind: "exited", cause, immediate: false }, effects: [{ type: "exit", immediate: false }] };
  return same({ ...state, leaving: state.leaving ?? cause });
}

function onSignal(state: Exclude<WorkerState, { kind: "exited" }>): Transition {
  const signals = state.signals + 1;
  if (signals >= 3) return { state: { kind: "exited", cause: "signal", immediate: true }, effects: [{ type: "exit", immediate: true }] };
  if (state.kind === "idle") return leave({ ...state, signals }, "signal");
  if (signals === 1) return same({ ...state, signals, leaving: state.leaving ?? "signal" });
  const effects: WorkerEffect[] = state.cancelling ? [] : [{ type: "abort", run: state.run, reason: "launcher-stopping" }];
  return { state: { ...state, signals, cancelling: true, leaving: state.leaving ?? "signal" }, effects };
}

/** What the worker reports in hello and heartbeat. */
export function reportedStatus(state: WorkerState): WorkerStatus {
  if (state.kind === "busy") return "BUSY";
  if (state.kind === "exited" || state.drained || state.signals > 0) return "DRAINED";
  return "IDLE";
}

export function currentRun(state: WorkerState): string | null {
  return state.kind === "busy" ? state.run : null;
}
