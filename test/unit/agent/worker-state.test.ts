// The worker state machine from a table: state, event -> next state and effects.
import { describe, expect, test } from "bun:test";
import { INITIAL_STATE, reportedStatus, transition, type WorkerEffect, type WorkerEvent, type WorkerState } from "../../../src/launcher/agent/worker-state.ts";

const idle = INITIAL_STATE;
const drained: WorkerState = { kind: "idle", drained: true, signals: 0 };
const busy: WorkerState = { kind: "busy", run: "R1", drained: false, signals: 0, cancelling: false, leaving: null };
const busyLeaving: WorkerState = { ...busy, signals: 1, leaving: "signal" };
const busyCancelling: WorkerState = { ...busyLeaving, signals: 2, cancelling: true };
const exited: WorkerState = { kind: "exited", cause: "signal", immediate: false };

const ok = (run: string): WorkerEvent => ({ type: "schedule", run, payload: "ok" });

const table: Array<[string, WorkerState, WorkerEvent, WorkerState, WorkerEffect[]]> = [
  ["idle accepts a good run", idle, ok("R1"), busy, [{ type: "accept", run: "R1" }]],
  ["idle rejects a payload that did not decrypt", idle, { type: "schedule", run: "R1", payload: "decrypt-failed" }, idle, [{ type: "reject", run: "R1", reason: "decrypt-failed" }]],
  ["idle rejects a bad payload", idle, { type: "schedule", run: "R1", payload: "bad-payload" }, idle, [{ type: "reject", run: "R1", reason: "bad-payload" }]],
  ["busy rejects another run as busy", busy, ok("R2"), busy, [{ type: "reject", run: "R2", reason: "busy" }]],
  ["busy ignores a duplicate of its own schedule", busy, ok("R1"), busy, []],
  ["drained rejects as drained, before looking at the payload", drained, { type: "schedule", run: "R1", payload: "decrypt-failed" }, drained, [{ type: "reject", run: "R1", reason: "drained" }]],
  ["drain while idle", idle, { type: "drain" }, drained, []],
  ["undrain", drained, { type: "undrain" }, idle, []],
  ["drain while busy keeps the run", busy, { type: "drain" }, { ...busy, drained: true }, []],
  ["a drained busy worker is drained after its run", { ...busy, drained: true }, { type: "run-finished", run: "R1" }, drained, []],
  ["run finished -> idle", busy, { type: "run-finished", run: "R1" }, idle, []],
  ["the end of another run changes nothing", busy, { type: "run-finished", run: "R9" }, busy, []],
  ["cancel aborts the run once", busy, { type: "cancel", run: "R1" }, { ...busy, cancelling: true }, [{ type: "abort", run: "R1", reason: "cancelled" }]],
  ["a second cancel does nothing more", { ...busy, cancelling: true }, { type: "cancel", run: "R1" }, { ...busy, cancelling: true }, []],
  ["cancel of a run we do not hold", busy, { type: "cancel", run: "R9" }, busy, []],
  ["cancel while idle", idle, { type: "cancel", run: "R1" }, idle, []],
  ["first signal while idle exits at once, orderly", idle, { type: "stop-signal" }, exited, [{ type: "exit", immediate: false }]],
  ["first signal while busy: finish the run, then leave", busy, { type: "stop-signal" }, busyLeaving, []],
  ["second signal cancels the run", busyLeaving, { type: "stop-signal" }, busyCancelling, [{ type: "abort", run: "R1", reason: "launcher-stopping" }]],
  ["third signal exits immediately", busyCancelling, { type: "stop-signal" }, { kind: "exited", cause: "signal", immediate: true }, [{ type: "exit", immediate: true }]],
  ["a leaving worker rejects new runs", busyLeaving, ok("R2"), busyLeaving, [{ type: "reject", run: "R2", reason: "busy" }]],
  ["the run of a leaving worker ends: exit", busyLeaving, { type: "run-finished", run: "R1" }, exited, [{ type: "exit", immediate: false }]],
  ["spot notice while idle exits", idle, { type: "spot-notice" }, { kind: "exited", cause: "spot", immediate: false }, [{ type: "exit", immediate: false }]],
  ["spot notice while busy: leave after the run", busy, { type: "spot-notice" }, { ...busy, leaving: "spot" }, []],
  ["cycle while idle exits", idle, { type: "cycle" }, { kind: "exited", cause: "cycle", immediate: false }, [{ type: "exit", immediate: false }]],
  ["cycle while busy: leave after the run", busy, { type: "cycle" }, { ...busy, leaving: "cycle" }, []],
  ["a signal after a spot notice cancels the run on the second one only", { ...busy, leaving: "spot" }, { type: "stop-signal" }, { ...busy, leaving: "spot", signals: 1 }, []],
  ["an exited worker rejects schedules as drained", exited, ok("R3"), exited, [{ type: "reject", run: "R3", reason: "drained" }]],
  ["an exited worker ignores everything else", exited, { type: "undrain" }, exited, []],
];

describe("worker state transitions", () => {
  for (const [name, from, event, to, effects] of table) {
    test(name, () => {
      expect(transition(from, event)).toEqual({ state: to, effects });
    });
  }

  test("reported status", () => {
    expect([idle, drained, busy, busyLeaving, exited].map(reportedStatus)).toEqual(["IDLE", "DRAINED", "BUSY", "BUSY", "DRAINED"]);
  });
});
