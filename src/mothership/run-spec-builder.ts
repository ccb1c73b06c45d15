/**
 * Turns a stack and a run into the run spec a launcher executes (src/protocol/run-spec.ts). The
 * same builder validates stacks at creation and runs at trigger, so a stack or a trigger that could
 * never produce a valid run is refused when the operator makes it, not when a launcher decrypts it.
 *
 * What the run-initialization policy sees comes from here: the stack's labels (`stack.labels`), the
 * run's commit and branch (`commit`, and `source` to check out), the user-provided metadata, and the
 * VCS agent pool the launcher maps to a base URL (SPACELIFT_PRIVATEVCS_MAPPING_*).
 */
import { parseRunSpec, type RunSpec } from "../protocol/run-spec.ts";
import type { RunType } from "../protocol/states.ts";
import type { Run, Stack } from "./store/index.ts";

/** The parts of a run the spec carries; a run that was only triggered has no more than these. */
export type RunForSpec = Pick<Run, "id" | "type"> & Partial<Pick<Run, "commit_sha" | "branch" | "user_provided_metadata">>;

export function buildRunSpec(stack: Stack, run: RunForSpec): RunSpec {
  const branch = run.branch ?? stack.branch ?? "";
  const commit = run.commit_sha ?? undefined;
  const source = stack.repository
    ? {
        repository_url: stack.repository,
        ...(branch ? { branch } : {}),
        ...(commit !== undefined ? { commit } : {}),
        ...(stack.vcs_pool ? { vcs_agent_pool: stack.vcs_pool } : {}),
      }
    : undefined;
  return parseRunSpec({
    id: run.id,
    type: run.type,
    stack: { id: stack.id, name: stack.name, labels: [...(stack.labels ?? [])], branch, repository: stack.repository ?? "", project_root: "" },
    commit: { hash: commit ?? "", branch, author: "", message: "" },
    runner_image: stack.image,
    environment: stack.environment.map((e) => ({ name: e.name, value: e.value, secret: e.secret })),
    phases: stack.phases,
    ...(source ? { source } : {}),
    ...(run.user_provided_metadata && run.user_provided_metadata.length > 0 ? { user_provided_metadata: [...run.user_provided_metadata] } : {}),
  });
}

/** A run id that satisfies the spec's ULID rule, used only to validate a stack or a trigger. */
const PROBE_ID = "00000000000000000000000000";

/** Throws `run-spec-invalid` naming the field when the stack cannot make a valid run. */
export function validateStack(stack: Stack): void {
  buildRunSpec(stack, { id: PROBE_ID, type: "TRACKED" });
}

/** Throws `run-spec-invalid` naming the field when this trigger of the stack cannot make a valid run. */
export function validateTrigger(stack: Stack, run: Omit<RunForSpec, "id"> & { type: RunType }): void {
  buildRunSpec(stack, { ...run, id: PROBE_ID });
}
