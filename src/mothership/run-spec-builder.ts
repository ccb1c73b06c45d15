/**
 * Turns a stack and a run into the run spec a launcher executes (src/protocol/run-spec.ts). The
 * same builder validates stacks at creation, so a stack that could never produce a valid run is
 * refused when the operator makes it, not when a launcher decrypts its first run.
 */
import { parseRunSpec, type RunSpec } from "../protocol/run-spec.ts";
import type { RunType } from "../protocol/states.ts";
import type { Stack } from "./store/index.ts";

export function buildRunSpec(stack: Stack, run: { id: string; type: RunType }): RunSpec {
  const branch = stack.branch ?? "";
  return parseRunSpec({
    id: run.id,
    type: run.type,
    stack: { id: stack.id, name: stack.name, labels: [], branch, repository: stack.repository ?? "", project_root: "" },
    commit: { hash: "", branch, author: "", message: "" },
    runner_image: stack.image,
    environment: stack.environment.map((e) => ({ name: e.name, value: e.value, secret: e.secret })),
    phases: stack.phases,
    ...(stack.repository ? { source: { repository_url: stack.repository, ...(stack.branch ? { branch: stack.branch } : {}) } } : {}),
  });
}

/** A run id that satisfies the spec's ULID rule, used only to validate a stack. */
const PROBE_ID = "00000000000000000000000000";

/** Throws `run-spec-invalid` naming the field when the stack cannot make a valid run. */
export function validateStack(stack: Stack): void {
  buildRunSpec(stack, { id: PROBE_ID, type: "TRACKED" });
}
