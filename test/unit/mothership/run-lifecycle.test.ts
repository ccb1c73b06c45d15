import { describe, expect, test } from "bun:test";
import { transition, type RunEvent, type RunStatus } from "../../../src/mothership/run-lifecycle.ts";
import type { RunReason, RunState } from "../../../src/protocol/states.ts";

const at = (state: RunState, extra: Partial<RunStatus> = {}): RunStatus => ({
  state,
  reason: null,
  exit_code: null,
  worker: state === "QUEUED" ? null : "W",
  cancel_requested: false,
  ...extra,
});

// [from, event, expected state (null = event ignored), expected reason]
const TABLE: Array<[RunState, RunEvent, RunState | null, RunReason | null]> = [
  ["QUEUED", { type: "schedule", worker: "W" }, "SCHEDULED", null],
  ["QUEUED", { type: "accepted" }, null, null],
  ["QUEUED", { type: "finished", reason: "ok", exit_code: 0 }, null, null],
  ["QUEUED", { type: "cancel" }, "CANCELED", "cancelled"],
  ["QUEUED", { type: "worker-lost" }, null, null],
  ["SCHEDULED", { type: "schedule", worker: "X" }, null, null],
  ["SCHEDULED", { type: "accepted" }, "PREPARING", null],
  ["SCHEDULED", { type: "phase", phase: "preparing" }, "PREPARING", null],
  ["SCHEDULED", { type: "rejected", reason: "busy" }, "QUEUED", null],
  ["SCHEDULED", { type: "rejected", reason: "drained" }, "QUEUED", null],
  ["SCHEDULED", { type: "rejected", reason: "policy-denied" }, "FAILED", "policy-denied"],
  ["SCHEDULED", { type: "rejected", reason: "decrypt-failed" }, "FAILED", "system-error"],
  ["SCHEDULED", { type: "schedule-expired" }, "QUEUED", null],
  ["SCHEDULED", { type: "worker-lost" }, "FAILED", "launcher-crashed"],
  ["SCHEDULED", { type: "finished", reason: "image-pull-failed", exit_code: null }, "FAILED", "image-pull-failed"],
  ["PREPARING", { type: "accepted" }, null, null],
  ["PREPARING", { type: "phase", phase: "preparing" }, null, null],
  ["PREPARING", { type: "phase", phase: "plan" }, "RUNNING", null],
  ["PREPARING", { type: "rejected", reason: "busy" }, null, null],
  ["PREPARING", { type: "schedule-expired" }, null, null],
  ["PREPARING", { type: "finished", reason: "policy-denied", exit_code: null }, "FAILED", "policy-denied"],
  ["RUNNING", { type: "phase", phase: "apply" }, "RUNNING", null],
  ["RUNNING", { type: "finished", reason: "ok", exit_code: 0 }, "FINISHED", "ok"],
  ["RUNNING", { type: "finished", reason: "failed", exit_code: 2 }, "FAILED", "failed"],
  ["RUNNING", { type: "finished", reason: "timeout-logs", exit_code: 137 }, "FAILED", "timeout-logs"],
  ["RUNNING", { type: "finished", reason: "timeout-run", exit_code: 137 }, "FAILED", "timeout-run"],
  ["RUNNING", { type: "finished", reason: "cancelled", exit_code: 143 }, "CANCELED", "cancelled"],
  ["RUNNING", { type: "worker-lost" }, "FAILED", "launcher-crashed"],
  ["RUNNING", { type: "cancel" }, "RUNNING", null],
  ["FINISHED", { type: "worker-lost" }, null, null],
  ["FINISHED", { type: "finished", reason: "failed", exit_code: 1 }, null, null],
  ["FAILED", { type: "phase", phase: "plan" }, null, null],
  ["FAILED", { type: "cancel" }, null, null],
  ["CANCELED", { type: "schedule", worker: "W" }, null, null],
  ["CANCELED", { type: "finished", reason: "ok", exit_code: 0 }, null, null],
];

describe("run lifecycle", () => {
  for (const [from, event, to, reason] of TABLE) {
    test(`${from} + ${JSON.stringify(event)} -> ${to ?? "ignored"}`, () => {
      const next = transition(at(from), event);
      if (to === null) {
        expect(next).toBeNull();
        return;
      }
      expect(next?.state).toBe(to);
      expect(next?.reason ?? null).toBe(reason);
    });
  }

  test("schedule records the worker; requeue and expiry clear it", () => {
    expect(transition(at("QUEUED"), { type: "schedule", worker: "W9" })?.worker).toBe("W9");
    expect(transition(at("SCHEDULED"), { type: "rejected", reason: "busy" })?.worker).toBeNull();
    expect(transition(at("SCHEDULED"), { type: "schedule-expired" })?.worker).toBeNull();
  });

  test("cancel of a held run is requested once; the launcher's report ends it", () => {
    const requested = transition(at("RUNNING"), { type: "cancel" });
    expect(requested).toMatchObject({ state: "RUNNING", cancel_requested: true });
    expect(transition(requested!, { type: "cancel" })).toBeNull();
    expect(transition(requested!, { type: "finished", reason: "cancelled", exit_code: 143 })).toMatchObject({ state: "CANCELED", exit_code: 143 });
  });
});
